/*
 * Masked row softmax of one query tile, row by row over the row's stored key tiles, in three
 * passes: max of the allowed scores; exp(scale * x - max) stored with the sum accumulated
 * (masked lanes and the key ranges of unstored tiles written as 0); scaling by 1 / sum.
 * Masked x is loaded (to fill whole vectors) but selected away before it meets any arithmetic
 * whose result is kept, so a NaN there cannot reach the row. x is read only below len_k, and
 * each x element is read before the y element at the same place is written (x may equal y).
 */
#include <string.h>

#include "arm/neon_kernels.h"

#include "arm/neon_math.h"

typedef struct row_view {
    const spattn_mask *mask;
    size_t qt, row, t0, t1;
} row_view;

static void zero_range(float *y, size_t from, size_t to)
{
    if (to > from)
        memset(y + from, 0, (to - from) * sizeof(float));
}

/* Keys in the group of 4 starting at 4*g of a tile with ncols keys. */
static size_t group_count(size_t ncols, size_t g)
{
    return ncols - 4 * g < 4 ? ncols - 4 * g : 4;
}

/* Pass 1: the max of scale * x over the allowed keys; -inf and *any = 0 when there are none. */
static float row_max(const row_view *rv, const float *xr, float scale, int *any)
{
    const float32x4_t sc = vdupq_n_f32(scale), ninf = spattn_neon_neg_inf();
    float32x4_t mx = ninf;
    *any = 0;
    for (size_t ti = rv->t0; ti < rv->t1; ti++) {
        const spattn_ktile *t = &rv->mask->tiles[ti];
        uint64_t bits = spattn__tile_row_bits(rv->mask, t, rv->qt, rv->row);
        size_t ncols = spattn__kt_cols(rv->mask, t->kt), key0 = (size_t)t->kt * SPATTN_TK;
        *any |= bits != 0;
        for (size_t g = 0; 4 * g < ncols; g++) {
            unsigned nib = (unsigned)(bits >> (4 * g)) & 15;
            if (nib == 0)
                continue;
            float32x4_t xv = spattn_neon_load_n(xr + key0 + 4 * g, group_count(ncols, g));
            mx = vmaxq_f32(mx, vbslq_f32(spattn_neon_nibble_mask(nib), vmulq_f32(xv, sc), ninf));
        }
    }
    return vmaxvq_f32(mx);
}

/* Pass 2: y = exp(scale * x - m) where allowed, 0 elsewhere below len_k; returns the sum. */
static float row_exp(const row_view *rv, const float *xr, float *yr, float scale, float m)
{
    const float32x4_t sc = vdupq_n_f32(scale), zero = vdupq_n_f32(0.0f);
    /* scale * x - m in one rounding (fma), so the exponent's error is relative to the
       difference and not to the size of the scores. */
    const float32x4_t neg_m = vdupq_n_f32(-m);
    float32x4_t sum = zero;
    size_t done = 0; /* y is written below this key */
    for (size_t ti = rv->t0; ti < rv->t1; ti++) {
        const spattn_ktile *t = &rv->mask->tiles[ti];
        uint64_t bits = spattn__tile_row_bits(rv->mask, t, rv->qt, rv->row);
        if (bits == 0)
            continue;
        size_t ncols = spattn__kt_cols(rv->mask, t->kt), key0 = (size_t)t->kt * SPATTN_TK;
        zero_range(yr, done, key0);
        for (size_t g = 0; 4 * g < ncols; g++) {
            unsigned nib = (unsigned)(bits >> (4 * g)) & 15;
            size_t j0 = key0 + 4 * g, cnt = group_count(ncols, g);
            float32x4_t e = zero;
            if (nib) {
                float32x4_t xv = spattn_neon_load_n(xr + j0, cnt);
                e = spattn_neon_exp(vfmaq_f32(neg_m, xv, sc));
                e = vbslq_f32(spattn_neon_nibble_mask(nib), e, zero);
                sum = vaddq_f32(sum, e);
            }
            spattn_neon_store_n(yr + j0, e, cnt);
        }
        done = key0 + ncols;
    }
    zero_range(yr, done, rv->mask->len_k);
    return vaddvq_f32(sum);
}

/* Pass 3: y *= inv over the groups that hold an allowed key (the rest are already 0). */
static void row_scale(const row_view *rv, float *yr, float inv)
{
    for (size_t ti = rv->t0; ti < rv->t1; ti++) {
        const spattn_ktile *t = &rv->mask->tiles[ti];
        uint64_t bits = spattn__tile_row_bits(rv->mask, t, rv->qt, rv->row);
        size_t ncols = spattn__kt_cols(rv->mask, t->kt), key0 = (size_t)t->kt * SPATTN_TK;
        for (size_t g = 0; 4 * g < ncols; g++) {
            if (((bits >> (4 * g)) & 15) == 0)
                continue;
            size_t j0 = key0 + 4 * g, cnt = group_count(ncols, g);
            spattn_neon_store_n(yr + j0, vmulq_n_f32(spattn_neon_load_n(yr + j0, cnt), inv), cnt);
        }
    }
}

void spattn__neon_softmax_tile(const float *x, float *y, size_t ld, const spattn_mask *mask,
                               size_t qt, float scale)
{
    const size_t r0 = qt * SPATTN_TQ, nrows = spattn__qt_rows(mask, qt);
    row_view rv = {mask, qt, 0, mask->qt_ptr[qt], mask->qt_ptr[qt + 1]};
    for (size_t r = 0; r < nrows; r++) {
        const float *xr = x + (r0 + r) * ld;
        float *yr = y + (r0 + r) * ld;
        rv.row = r;
        int any;
        float m = row_max(&rv, xr, scale, &any);
        if (!any) {
            zero_range(yr, 0, mask->len_k);
            continue;
        }
        float sum = row_exp(&rv, xr, yr, scale, m);
        row_scale(&rv, yr, 1.0f / sum);
    }
}
