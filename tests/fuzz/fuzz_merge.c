/*
 * spattn_merge on random parts: lse values finite over a wide range, -inf (that part saw no
 * key of the row; its o row holds NaN, which must not be read) or equal across parts, o rows of
 * unit scale. Checked against the formula in double, for in-place accumulation into part 0
 * (the same bits), for every kernel table this host runs (the same bits as spattn_merge), and
 * for an output overlapping a part other than 0 (SPATTN_E_ARG, nothing written).
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "fuzz_input.h"
#include "kernels/dispatch.h"
#include "kernels/kernel.h"
#include "spattn.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_PARTS 20

static float lse_value(fz_in *in)
{
    uint8_t how = fz_u8(in);
    if (how < 40)
        return -INFINITY;
    if (how < 60)
        return 0.0f;
    if (how < 70) /* far apart: one part takes all the weight */
        return (float)((int)fz_range(in, 0, 400) - 200) * 1e3f;
    return (float)((int)fz_range(in, 0, 2000) - 1000) / 37.0f;
}

static float o_value(fz_in *in)
{
    return (float)((int)fz_u8(in) - 128) / 32.0f;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_in in = {data, size};
    const size_t n = fz_range(&in, 1, MAX_PARTS), rows = fz_range(&in, 1, 12);
    const size_t dim = fz_range(&in, 1, 80), rd = rows * dim;
    float *o[MAX_PARTS], *l[MAX_PARTS];
    for (size_t s = 0; s < n; s++) {
        o[s] = malloc(rd * sizeof(float));
        l[s] = malloc(rows * sizeof(float));
        for (size_t i = 0; i < rows; i++) {
            l[s][i] = lse_value(&in);
            for (size_t d = 0; d < dim; d++)
                o[s][i * dim + d] = l[s][i] == -INFINITY ? NAN : o_value(&in);
        }
    }
    const float *const *op = (const float *const *)o, *const *lp = (const float *const *)l;
    float *out = malloc(rd * sizeof(float)), *out_l = malloc(rows * sizeof(float));
    FZ_CHECK(spattn_merge(n, rows, dim, op, lp, out, out_l) == SPATTN_OK, "merge failed");

    /* The formula in double. */
    for (size_t i = 0; i < rows; i++) {
        double m = -INFINITY;
        for (size_t s = 0; s < n; s++)
            m = l[s][i] > m ? l[s][i] : m;
        if (m == -INFINITY) {
            FZ_CHECK(out_l[i] == -INFINITY, "row %zu: lse %g, no part saw it", i, out_l[i]);
            for (size_t d = 0; d < dim; d++)
                FZ_CHECK(out[i * dim + d] == 0.0f, "row %zu: o %g, no part saw it", i,
                         out[i * dim + d]);
            continue;
        }
        double sum = 0.0;
        for (size_t s = 0; s < n; s++)
            sum += l[s][i] == -INFINITY ? 0.0 : exp(l[s][i] - m);
        const double want_l = m + log(sum);
        FZ_CHECK(fabs(out_l[i] - want_l) <= 1e-6 * (1.0 + fabs(want_l)),
                 "row %zu: lse %.9g, want %.9g", i, out_l[i], want_l);
        for (size_t d = 0; d < dim; d++) {
            double want = 0.0, mag = 0.0;
            for (size_t s = 0; s < n; s++) {
                if (l[s][i] == -INFINITY)
                    continue;
                double w = exp(l[s][i] - m) / sum;
                want += w * o[s][i * dim + d];
                mag += w * fabs(o[s][i * dim + d]);
            }
            const float got = out[i * dim + d];
            FZ_CHECK(fabs(got - want) <= 4e-7 * (double)(n + 1) * (1.0 + mag),
                     "row %zu dim %zu: %.9g, want %.9g (%zu parts)", i, d, got, want, n);
        }
    }

    /* Every kernel table: the same bits. */
#define SPATTN_KERNEL(isa, table, cpu_bits, auto_bits)                                             \
    {                                                                                              \
        const spattn_kernel_table *kt = spattn__kernels_for(isa);                                  \
        if (kt != NULL) {                                                                          \
            float *to = malloc(rd * sizeof(float)), *tl = malloc(rows * sizeof(float));            \
            kt->merge_rows(n, rows, dim, op, lp, to, tl);                                          \
            FZ_CHECK(memcmp(to, out, rd * sizeof(float)) == 0 &&                                   \
                         memcmp(tl, out_l, rows * sizeof(float)) == 0,                             \
                     "%s differs from spattn_merge", kt->name);                                    \
            free(to);                                                                              \
            free(tl);                                                                              \
        }                                                                                          \
    }
#include "kernels/kernels.inc"
#undef SPATTN_KERNEL

    /* An output overlapping another part: refused, nothing written. */
    if (n >= 2) {
        float *keep = malloc(rd * sizeof(float));
        memcpy(keep, o[n - 1], rd * sizeof(float));
        FZ_CHECK(spattn_merge(n, rows, dim, op, lp, o[n - 1], out_l) == SPATTN_E_ARG,
                 "output on part %zu accepted", n - 1);
        FZ_CHECK(memcmp(keep, o[n - 1], rd * sizeof(float)) == 0, "refused merge wrote its output");
        free(keep);
    }

    /* In place into part 0: the same bits. */
    FZ_CHECK(spattn_merge(n, rows, dim, op, lp, o[0], l[0]) == SPATTN_OK, "in place failed");
    FZ_CHECK(memcmp(o[0], out, rd * sizeof(float)) == 0 &&
                 memcmp(l[0], out_l, rows * sizeof(float)) == 0,
             "in place differs");

    for (size_t s = 0; s < n; s++) {
        free(o[s]);
        free(l[s]);
    }
    free(out);
    free(out_l);
    return 0;
}
