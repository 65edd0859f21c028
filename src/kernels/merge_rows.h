/*
 * The row driver of merge_rows (kernel.h), shared by the kernel template (merge.h) and the
 * scalar tier: each row's weights are computed here in scalar double, the same code on every
 * path, and only the weighted sum along dim is left to the caller's `group` function. That
 * sum is acc = w_0 * o_0 (rounded), then acc = fma(w_s, o_s, acc) for s = 1, 2, ... in
 * order, one rounding per step, which a vector lane and fmaf compute alike: results are
 * bitwise the same on every ISA.
 *
 * A part whose lse is -inf saw no key of the row: it gets no weight and its o row is not read
 * (a shard's rows there are 0 anyway). Subtracting the row's largest lse keeps every exp in
 * [0, 1], so no finite lse overflows; a NaN lse makes the row NaN.
 */
#ifndef SPATTN_KERNELS_MERGE_ROWS_H
#define SPATTN_KERNELS_MERGE_ROWS_H

#include <math.h>
#include <stddef.h>
#include <string.h>

/* Parts whose weights one group call takes: enough to keep the accumulators in registers. */
#define SPATTN_MERGE_GROUP 8

/* Adds sum_k w[k] * src[k][d] to the row o (d < dim), k in order; started = 0 means o holds
   nothing yet (and may be src[0] itself, read before it is written). */
typedef void (*spattn__merge_group_fn)(float *o, size_t dim, const float *w,
                                       const float *const *src, size_t g, int started);

static inline void spattn__merge_rows_with(spattn__merge_group_fn group, size_t n_parts,
                                           size_t rows, size_t dim, const float *const *o_parts,
                                           const float *const *lse_parts, float *o, float *lse)
{
    for (size_t i = 0; i < rows; i++) {
        double m = -INFINITY;
        int any = 0;
        for (size_t s = 0; s < n_parts; s++) {
            double l = lse_parts[s][i];
            if (l == -INFINITY)
                continue;
            any = 1;
            if (l > m)
                m = l;
        }
        float *oi = o + i * dim;
        if (!any) {
            memset(oi, 0, dim * sizeof *oi);
            lse[i] = -INFINITY;
            continue;
        }
        double sum = 0.0;
        for (size_t s = 0; s < n_parts; s++) {
            double l = lse_parts[s][i];
            if (l != -INFINITY)
                sum += exp(l - m);
        }
        float w[SPATTN_MERGE_GROUP];
        const float *src[SPATTN_MERGE_GROUP];
        int started = 0;
        for (size_t s = 0; s < n_parts;) {
            size_t g = 0;
            for (; s < n_parts && g < SPATTN_MERGE_GROUP; s++) {
                double l = lse_parts[s][i];
                if (l == -INFINITY)
                    continue;
                w[g] = (float)(exp(l - m) / sum);
                src[g] = o_parts[s] + i * dim;
                g++;
            }
            if (g) {
                group(oi, dim, w, src, g, started);
                started = 1;
            }
        }
        /* Written last: lse may be lse_parts[0], read above. */
        lse[i] = (float)(m + log(sum));
    }
}

#endif
