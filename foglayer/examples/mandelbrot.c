/* The bundled demo: renders the Mandelbrot set as text (compute), writes it to a file in
 * a preopened directory (WASI files), and reports what it did (stdout, args, env). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
    int width = argc > 1 ? atoi(argv[1]) : 78, height = argc > 2 ? atoi(argv[2]) : 32;
    int iters = argc > 3 ? atoi(argv[3]) : 20000;
    const char *out = getenv("OUT") ? getenv("OUT") : "/out/mandelbrot.txt";
    const char *shades = " .:-=+*#%@";
    char *img = malloc((size_t)(width + 1) * height + 1);
    long inside = 0;
    for (int y = 0; y < height; y++) {
        for (int x = 0; x < width; x++) {
            double cr = -2.2 + 3.0 * x / width, ci = -1.2 + 2.4 * y / height;
            double zr = 0, zi = 0;
            int n = 0;
            while (n < iters && zr * zr + zi * zi < 4.0) {
                double t = zr * zr - zi * zi + cr;
                zi = 2 * zr * zi + ci;
                zr = t;
                n++;
            }
            inside += n == iters;
            img[y * (width + 1) + x] = n == iters ? '@' : shades[n % 9];
        }
        img[y * (width + 1) + width] = '\n';
    }
    img[(width + 1) * height] = 0;
    FILE *f = fopen(out, "w");
    if (!f) {
        perror(out);
        return 1;
    }
    fputs(img, f);
    fclose(f);
    fputs(img, stdout);
    printf("%dx%d, %d iterations: %ld points inside, written to %s\n", width, height, iters,
           inside, out);
    free(img);
    return 0;
}
