/*
 * The masked softmax of score rows (softmax_tile): y = exp(scale*x - max) / sum over the
 * allowed keys of each row, 0 elsewhere.
 */
#ifndef SPATTN_KERNELS_MASKED_SOFTMAX_H
#define SPATTN_KERNELS_MASKED_SOFTMAX_H

#include "kernels/common.h"

static void tpl_softmax(const float *x, float *y, size_t ld, const spattn_mask *m, size_t qt,
                        float scale)
{
    const size_t rows = spattn__qt_rows(m, qt), i0 = qt * SPATTN_TQ;
    const size_t t0 = m->qt_ptr[qt], t1 = m->qt_ptr[qt + 1];
    const uint64_t lane_bits = VL == 64 ? ~(uint64_t)0 : (((uint64_t)1 << VL) - 1);
    const vec_t vscale = vec_set1(scale), ninf = vec_set1(K_NINF);
    for (size_t r = 0; r < rows; r++) {
        const float *xi = x + (i0 + r) * ld;
        float *yi = y + (i0 + r) * ld;
        vec_t vm = ninf;
        for (size_t t = t0; t < t1; t++) {
            const float *xt = xi + (size_t)m->tiles[t].kt * SPATTN_TK;
            uint64_t bits = spattn__tile_row_bits(m, &m->tiles[t], qt, r);
            for (size_t c = 0; bits != 0; c += VL, bits >>= VL) {
                uint64_t b = bits & lane_bits;
                if (b == 0)
                    continue;
                vmask_t mk = vmask_bits(b);
                vm = vec_max(vm, vec_select(mk, vec_mul(vec_loadu_m(xt + c, mk), vscale), ninf));
            }
        }
        float mx = vec_hmax(vm);
        const vec_t vshift = vec_set1(mx == K_NINF ? 0.0f : -mx), vl2e = vec_set1(K_LOG2E);
        /* Exponentials written over every in-range key of each stored tile (0 where not
           allowed), each after its x was read, so y may equal x. */
        vec_t sum = vec_zero();
        for (size_t t = t0; t < t1; t++) {
            const size_t j0 = (size_t)m->tiles[t].kt * SPATTN_TK,
                         n = spattn__kt_cols(m, m->tiles[t].kt);
            uint64_t bits = spattn__tile_row_bits(m, &m->tiles[t], qt, r);
            for (size_t c = 0; c < n; c += VL) {
                uint64_t b = (bits >> c) & lane_bits;
                vmask_t in = vmask_first(n - c < VL ? n - c : VL);
                vec_t e = vec_zero();
                if (b != 0) {
                    vmask_t mk = vmask_bits(b);
                    vec_t s = vec_fma(vscale, vec_loadu_m(xi + j0 + c, mk), vshift);
                    e = vec_select(mk, vec_exp2(vec_mul(s, vl2e)), vec_zero());
                    sum = vec_add(sum, e);
                }
                vec_storeu_m(yi + j0 + c, in, e);
            }
        }
        float l = vec_hsum(sum);
        const vec_t vinv = vec_set1(l != 0.0f ? 1.0f / l : 0.0f);
        size_t j = 0;
        for (size_t t = t0; t <= t1; t++) {
            const size_t j0 = t < t1 ? (size_t)m->tiles[t].kt * SPATTN_TK : m->len_k;
            for (; j < j0; j++)
                yi[j] = 0.0f;
            if (t == t1)
                break;
            const size_t n = spattn__kt_cols(m, m->tiles[t].kt);
            for (size_t c = 0; c < n; c += VL) {
                vmask_t in = vmask_first(n - c < VL ? n - c : VL);
                vec_storeu_m(yi + j0 + c, in, vec_mul(vec_loadu_m(yi + j0 + c, in), vinv));
            }
            j = j0 + n;
        }
    }
}

#endif
