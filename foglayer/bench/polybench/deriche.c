/* deriche (PolyBench/C 4.2.1): Deriche recursive edge-detection filter on a
 * W x H image (horizontal causal/anticausal pass, then vertical).
 *
 * Data type: PolyBench's deriche.h defaults to float (DATA_TYPE_IS_FLOAT), and
 * so does this file; -DDATA_TYPE_IS_DOUBLE selects double. */
#include "polybench.h"

#define W PB_SIZE(64, 192, 720, 4096, 7680)
#define H PB_SIZE(64, 128, 480, 2160, 4320)

#if defined(DATA_TYPE_IS_DOUBLE)
typedef double data_t;
#define SCALAR_VAL(x) x
#define EXP_FUN(x) exp(x)
#define POW_FUN(x, y) pow(x, y)
#define PB_CK_DATA pb_ck_doubles
#else
typedef float data_t;
#define SCALAR_VAL(x) x##f
#define EXP_FUN(x) expf(x)
#define POW_FUN(x, y) powf(x, y)
#define PB_CK_DATA pb_ck_floats
#endif

static void init_array(data_t *alpha, data_t (*imgIn)[H])
{
    *alpha = 0.25; /* parameter of the filter */
    for (int i = 0; i < W; i++)
        for (int j = 0; j < H; j++)
            imgIn[i][j] = (data_t)((313 * i + 991 * j) % 65536) / 65535.0f;
}

static PB_NOINLINE void kernel_deriche(data_t alpha, data_t (*imgIn)[H], data_t (*imgOut)[H],
                                       data_t (*y1)[H], data_t (*y2)[H])
{
    data_t xm1, tm1, ym1, ym2;
    data_t xp1, xp2;
    data_t tp1, tp2;
    data_t yp1, yp2;
    data_t k;
    data_t a1, a2, a3, a4, a5, a6, a7, a8;
    data_t b1, b2, c1, c2;

    k = (SCALAR_VAL(1.0) - EXP_FUN(-alpha)) * (SCALAR_VAL(1.0) - EXP_FUN(-alpha)) /
        (SCALAR_VAL(1.0) + SCALAR_VAL(2.0) * alpha * EXP_FUN(-alpha) -
         EXP_FUN(SCALAR_VAL(2.0) * alpha));
    a1 = a5 = k;
    a2 = a6 = k * EXP_FUN(-alpha) * (alpha - SCALAR_VAL(1.0));
    a3 = a7 = k * EXP_FUN(-alpha) * (alpha + SCALAR_VAL(1.0));
    a4 = a8 = -k * EXP_FUN(SCALAR_VAL(-2.0) * alpha);
    b1 = POW_FUN(SCALAR_VAL(2.0), -alpha);
    b2 = -EXP_FUN(SCALAR_VAL(-2.0) * alpha);
    c1 = c2 = 1;

    for (int i = 0; i < W; i++) {
        ym1 = SCALAR_VAL(0.0);
        ym2 = SCALAR_VAL(0.0);
        xm1 = SCALAR_VAL(0.0);
        for (int j = 0; j < H; j++) {
            y1[i][j] = a1 * imgIn[i][j] + a2 * xm1 + b1 * ym1 + b2 * ym2;
            xm1 = imgIn[i][j];
            ym2 = ym1;
            ym1 = y1[i][j];
        }
    }

    for (int i = 0; i < W; i++) {
        yp1 = SCALAR_VAL(0.0);
        yp2 = SCALAR_VAL(0.0);
        xp1 = SCALAR_VAL(0.0);
        xp2 = SCALAR_VAL(0.0);
        for (int j = H - 1; j >= 0; j--) {
            y2[i][j] = a3 * xp1 + a4 * xp2 + b1 * yp1 + b2 * yp2;
            xp2 = xp1;
            xp1 = imgIn[i][j];
            yp2 = yp1;
            yp1 = y2[i][j];
        }
    }

    for (int i = 0; i < W; i++)
        for (int j = 0; j < H; j++)
            imgOut[i][j] = c1 * (y1[i][j] + y2[i][j]);

    for (int j = 0; j < H; j++) {
        tm1 = SCALAR_VAL(0.0);
        ym1 = SCALAR_VAL(0.0);
        ym2 = SCALAR_VAL(0.0);
        for (int i = 0; i < W; i++) {
            y1[i][j] = a5 * imgOut[i][j] + a6 * tm1 + b1 * ym1 + b2 * ym2;
            tm1 = imgOut[i][j];
            ym2 = ym1;
            ym1 = y1[i][j];
        }
    }

    for (int j = 0; j < H; j++) {
        tp1 = SCALAR_VAL(0.0);
        tp2 = SCALAR_VAL(0.0);
        yp1 = SCALAR_VAL(0.0);
        yp2 = SCALAR_VAL(0.0);
        for (int i = W - 1; i >= 0; i--) {
            y2[i][j] = a7 * tp1 + a8 * tp2 + b1 * yp1 + b2 * yp2;
            tp2 = tp1;
            tp1 = imgOut[i][j];
            yp2 = yp1;
            yp1 = y2[i][j];
        }
    }

    for (int i = 0; i < W; i++)
        for (int j = 0; j < H; j++)
            imgOut[i][j] = c2 * (y1[i][j] + y2[i][j]);
}

int main(void)
{
    data_t alpha;
    double t;
    PB_ALLOC_2D(data_t, imgIn, W, H);
    PB_ALLOC_2D(data_t, imgOut, W, H);
    PB_ALLOC_2D(data_t, y1, W, H);
    PB_ALLOC_2D(data_t, y2, W, H);
    init_array(&alpha, imgIn);
    PB_TIME(t, kernel_deriche(alpha, imgIn, imgOut, y1, y2));
    pb_checksum ck;
    pb_ck_init(&ck);
    PB_CK_DATA(&ck, &imgOut[0][0], (size_t)W * H);
    pb_report("deriche", t, &ck);
    free(imgIn);
    free(imgOut);
    free(y1);
    free(y2);
    return 0;
}
