/* floyd-warshall (PolyBench/C 4.2.1): all-pairs shortest paths on an N-node
 * graph.
 *
 * Data type: PolyBench's floyd-warshall.h defaults to int (DATA_TYPE_IS_INT), and
 * so does this file; -DDATA_TYPE_IS_DOUBLE selects double. */
#include "polybench.h"

#define N PB_SIZE(60, 180, 500, 2800, 5600)

#if defined(DATA_TYPE_IS_DOUBLE)
typedef double data_t;
#define PB_CK_DATA pb_ck_doubles
#else
typedef int data_t;
#define PB_CK_DATA pb_ck_ints
#endif

static void init_array(data_t (*path)[N])
{
    for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++) {
            path[i][j] = i * j % 7 + 1;
            if ((i + j) % 13 == 0 || (i + j) % 7 == 0 || (i + j) % 11 == 0)
                path[i][j] = 999;
        }
}

static PB_NOINLINE void kernel_floyd_warshall(data_t (*path)[N])
{
    for (int k = 0; k < N; k++)
        for (int i = 0; i < N; i++)
            for (int j = 0; j < N; j++)
                path[i][j] = path[i][j] < path[i][k] + path[k][j] ? path[i][j]
                                                                   : path[i][k] + path[k][j];
}

int main(void)
{
    double t;
    PB_ALLOC_2D(data_t, path, N, N);
    init_array(path);
    PB_TIME(t, kernel_floyd_warshall(path));
    pb_checksum ck;
    pb_ck_init(&ck);
    PB_CK_DATA(&ck, &path[0][0], (size_t)N * N);
    pb_report("floyd-warshall", t, &ck);
    free(path);
    return 0;
}
