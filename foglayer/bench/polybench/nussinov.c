/* nussinov (PolyBench/C 4.2.1): Nussinov RNA secondary-structure dynamic
 * program (maximum number of base pairs) over a sequence of length N.
 *
 * Data type: PolyBench's nussinov.h defaults to int (DATA_TYPE_IS_INT), and so
 * does this file; -DDATA_TYPE_IS_DOUBLE selects double. */
#include "polybench.h"

#define N PB_SIZE(60, 180, 500, 2500, 5500)

#if defined(DATA_TYPE_IS_DOUBLE)
typedef double data_t;
#define PB_CK_DATA pb_ck_doubles
#else
typedef int data_t;
#define PB_CK_DATA pb_ck_ints
#endif

typedef char base; /* sequence letters AGCT as 0..3 */

#define match(b1, b2) (((b1) + (b2)) == 3 ? 1 : 0)
#define max_score(s1, s2) ((s1 >= s2) ? s1 : s2)

static void init_array(base *seq, data_t (*table)[N])
{
    for (int i = 0; i < N; i++)
        seq[i] = (base)((i + 1) % 4);
    for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++)
            table[i][j] = 0;
}

static PB_NOINLINE void kernel_nussinov(base *seq, data_t (*table)[N])
{
    for (int i = N - 1; i >= 0; i--) {
        for (int j = i + 1; j < N; j++) {
            if (j - 1 >= 0)
                table[i][j] = max_score(table[i][j], table[i][j - 1]);
            if (i + 1 < N)
                table[i][j] = max_score(table[i][j], table[i + 1][j]);

            if (j - 1 >= 0 && i + 1 < N) {
                /* don't allow adjacent elements to bond */
                if (i < j - 1)
                    table[i][j] =
                        max_score(table[i][j], table[i + 1][j - 1] + match(seq[i], seq[j]));
                else
                    table[i][j] = max_score(table[i][j], table[i + 1][j - 1]);
            }

            for (int k = i + 1; k < j; k++)
                table[i][j] = max_score(table[i][j], table[i][k] + table[k + 1][j]);
        }
    }
}

int main(void)
{
    double t;
    PB_ALLOC_1D(base, seq, N);
    PB_ALLOC_2D(data_t, table, N, N);
    init_array(seq, table);
    PB_TIME(t, kernel_nussinov(seq, table));
    /* PolyBench prints the upper triangle (j >= i), row by row. */
    pb_checksum ck;
    pb_ck_init(&ck);
    for (int i = 0; i < N; i++)
        PB_CK_DATA(&ck, &table[i][i], (size_t)(N - i));
    pb_report("nussinov", t, &ck);
    free(seq);
    free(table);
    return 0;
}
