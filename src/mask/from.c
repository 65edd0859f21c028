/*
 * Masks from user data: dense bytes, CSR, a block layout, a callback. Each validates all
 * arguments first, then feeds the builder one query tile at a time (build.h), so sparse
 * inputs cost O(nnz + tiles).
 */
#include <stdlib.h>
#include <string.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "alloc.h"
#include "mask/build.h"

#define TQ SPATTN_TQ
#define TK SPATTN_TK

/* Nonzero bytes of p[0 .. n-1] (n <= 64) as bits. On x86-64 16 bytes at a time with SSE2
   (part of the baseline, so no flags of its own): a compare and a byte mask; elsewhere 8 at a
   time in a general register. */
static uint64_t bytes_to_bits(const uint8_t *p, size_t n)
{
    uint64_t w = 0;
    size_t c = 0;
#if defined(__SSE2__)
    for (; c + 16 <= n; c += 16) {
        const __m128i x = _mm_loadu_si128((const __m128i *)(const void *)(p + c));
        const unsigned zero = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(x, _mm_setzero_si128()));
        w |= (uint64_t)(~zero & 0xffffu) << c;
    }
#elif defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    const uint64_t lo7 = 0x7f7f7f7f7f7f7f7full, hi1 = 0x8080808080808080ull;
    for (; c + 8 <= n; c += 8) {
        uint64_t x;
        memcpy(&x, p + c, 8);
        uint64_t t = (((x & lo7) + lo7) | x) & hi1; /* high bit of each nonzero byte */
        /* gathers the 8 flags (bits 7, 15, ..., 63) into the top byte, byte k to bit 56 + k */
        w |= (((t >> 7) * 0x0102040810204080ull) >> 56) << c;
    }
#endif
    for (; c < n; c++)
        w |= (uint64_t)(p[c] != 0) << c;
    return w;
}

spattn_status spattn_mask_from_dense(size_t len_q, size_t len_k, const uint8_t *allowed, size_t ld,
                                     spattn_mask **out)
{
    spattn_status s = spattn__mb_check_args(out, !allowed, len_q, len_k);
    if (s)
        return s;
    if (ld < len_k || (len_q - 1) > (SIZE_MAX - len_k) / ld)
        return SPATTN_E_SHAPE;
    spattn__mb b;
    if (spattn__mb_init(&b, len_q, len_k))
        return b.err;
    /* A query tile's row words, key tile after key tile (kt * TQ + r): each row read once, in
       order, and each key tile handed over whole. */
    uint64_t *w = spattn__malloc(b.nkt * TQ * sizeof *w);
    if (w == NULL) {
        spattn__mb_free(&b);
        return SPATTN_E_NOMEM;
    }
    for (size_t qt = 0; qt < b.nqt && !b.err; qt++) {
        spattn__mb_begin(&b, qt);
        const size_t rows = spattn__qt_rows(b.m, qt);
        for (size_t r = 0; r < rows; r++) {
            const uint8_t *row = allowed + (qt * TQ + r) * ld;
            for (size_t kt = 0; kt < b.nkt; kt++) {
                const size_t c0 = kt * TK, n = len_k - c0 < TK ? len_k - c0 : TK;
                w[kt * TQ + r] = bytes_to_bits(row + c0, n);
            }
        }
        for (size_t r = rows; r < TQ; r++) /* the last tile's rows past len_q */
            for (size_t kt = 0; kt < b.nkt; kt++)
                w[kt * TQ + r] = 0;
        for (size_t kt = 0; kt < b.nkt; kt++)
            spattn__mb_or_words(&b, kt, w + kt * TQ);
        spattn__mb_end(&b);
    }
    spattn__free(w);
    return spattn__mb_finish(&b, out);
}

/* Row by row, so that a row's columns are read only after its row_ptr pair proved sane. */
static spattn_status check_csr(size_t len_q, size_t len_k, const int64_t *row_ptr,
                               const int32_t *col_idx)
{
    if (row_ptr[0] != 0)
        return SPATTN_E_MASK;
    for (size_t i = 0; i < len_q; i++) {
        int64_t a = row_ptr[i], e = row_ptr[i + 1];
        /* strictly increasing columns in [0, len_k) fit at most len_k to a row */
        if (e < a || e - a > (int64_t)len_k)
            return SPATTN_E_MASK;
    }
    if (!col_idx && row_ptr[len_q] > 0)
        return SPATTN_E_NULL;
    for (size_t i = 0; i < len_q; i++) {
        for (int64_t t = row_ptr[i]; t < row_ptr[i + 1]; t++) {
            int32_t c = col_idx[t];
            if (c < 0 || (size_t)c >= len_k || (t > row_ptr[i] && c <= col_idx[t - 1]))
                return SPATTN_E_MASK;
        }
    }
    return SPATTN_OK;
}

spattn_status spattn_mask_from_csr(size_t len_q, size_t len_k, const int64_t *row_ptr,
                                   const int32_t *col_idx, spattn_mask **out)
{
    spattn_status s = spattn__mb_check_args(out, !row_ptr, len_q, len_k);
    if (s || (s = check_csr(len_q, len_k, row_ptr, col_idx)))
        return s;
    spattn__mb b;
    if (spattn__mb_init(&b, len_q, len_k))
        return b.err;
    for (size_t qt = 0; qt < b.nqt && !b.err; qt++) {
        size_t i0 = qt * TQ, rows = spattn__qt_rows(b.m, qt);
        if (row_ptr[i0] == row_ptr[i0 + rows])
            continue;
        spattn__mb_begin(&b, qt);
        for (size_t r = 0; r < rows; r++) {
            size_t kt = SIZE_MAX;
            uint64_t w = 0;
            for (int64_t t = row_ptr[i0 + r]; t < row_ptr[i0 + r + 1]; t++) {
                size_t c = (size_t)col_idx[t];
                if (c / TK != kt) {
                    if (w)
                        spattn__mb_or_word(&b, 1u << r, kt, w);
                    kt = c / TK;
                    w = 0;
                }
                w |= (uint64_t)1 << (c % TK);
            }
            if (w)
                spattn__mb_or_word(&b, 1u << r, kt, w);
        }
        spattn__mb_end(&b);
    }
    return spattn__mb_finish(&b, out);
}

/* One layout row of from_blocks as (key tile, word) pairs, computed once per layout row. */
typedef struct layout_row {
    spattn__mb_kt_word *p;
    size_t n, cap;
    size_t row; /* which layout row p holds, SIZE_MAX for none */
} layout_row;

static int layout_row_load(layout_row *lr, const uint8_t *layout, size_t row, size_t nbk,
                           size_t block_k, size_t len_k)
{
    lr->n = 0;
    lr->row = row;
    const uint8_t *cells = layout + row * nbk;
    for (size_t c = 0; c < nbk; c++) {
        if (!cells[c])
            continue;
        size_t j0 = c * block_k, j1 = c + 1 == nbk ? len_k : (c + 1) * block_k;
        for (size_t kt = j0 / TK; kt * TK < j1; kt++) {
            size_t c0 = kt * TK;
            uint64_t w = spattn__mb_bit_range(j0 > c0 ? j0 - c0 : 0, j1 - c0 < TK ? j1 - c0 : TK);
            if (lr->n && lr->p[lr->n - 1].kt == kt) {
                lr->p[lr->n - 1].w |= w;
                continue;
            }
            if (lr->n == lr->cap) {
                size_t cap = lr->cap ? 2 * lr->cap : 64;
                spattn__mb_kt_word *q = spattn__realloc(lr->p, cap * sizeof *q);
                if (!q)
                    return -1;
                lr->p = q;
                lr->cap = cap;
            }
            lr->p[lr->n].kt = kt;
            lr->p[lr->n].w = w;
            lr->n++;
        }
    }
    return 0;
}

spattn_status spattn_mask_from_blocks(size_t len_q, size_t len_k, size_t block_q, size_t block_k,
                                      const uint8_t *layout, spattn_mask **out)
{
    spattn_status s = spattn__mb_check_args(out, !layout, len_q, len_k);
    if (s)
        return s;
    if (block_q == 0 || block_k == 0)
        return SPATTN_E_SHAPE;
    size_t nbq = (len_q - 1) / block_q + 1, nbk = (len_k - 1) / block_k + 1;
    if (nbq > SIZE_MAX / nbk)
        return SPATTN_E_SHAPE;
    spattn__mb b;
    if (spattn__mb_init(&b, len_q, len_k))
        return b.err;
    layout_row lr = {NULL, 0, 0, SIZE_MAX};
    for (size_t qt = 0; qt < b.nqt && !b.err; qt++) {
        spattn__mb_begin(&b, qt);
        size_t rows = spattn__qt_rows(b.m, qt);
        for (size_t r = 0; r < rows && !b.err;) {
            /* the rows of this tile in one layout row share every word */
            size_t brow = (qt * TQ + r) / block_q;
            uint32_t group = 0;
            for (; r < rows && (qt * TQ + r) / block_q == brow; r++)
                group |= 1u << r;
            if (lr.row != brow && layout_row_load(&lr, layout, brow, nbk, block_k, len_k)) {
                spattn__mb_free(&b);
                spattn__free(lr.p);
                return SPATTN_E_NOMEM;
            }
            for (size_t k = 0; k < lr.n; k++)
                spattn__mb_or_word(&b, group, lr.p[k].kt, lr.p[k].w);
        }
        spattn__mb_end(&b);
    }
    spattn__free(lr.p);
    return spattn__mb_finish(&b, out);
}

spattn_status spattn_mask_from_fn(size_t len_q, size_t len_k, spattn_allow_fn allow, void *ctx,
                                  spattn_mask **out)
{
    spattn_status s = spattn__mb_check_args(out, !allow, len_q, len_k);
    if (s)
        return s;
    spattn__mb b;
    if (spattn__mb_init(&b, len_q, len_k))
        return b.err;
    for (size_t qt = 0; qt < b.nqt && !b.err; qt++) {
        spattn__mb_begin(&b, qt);
        size_t rows = spattn__qt_rows(b.m, qt);
        for (size_t r = 0; r < rows && !b.err; r++) {
            size_t i = qt * TQ + r;
            for (size_t kt = 0; kt < b.nkt && !b.err; kt++) {
                size_t c0 = kt * TK, n = len_k - c0 < TK ? len_k - c0 : TK;
                uint64_t w = 0;
                for (size_t c = 0; c < n; c++)
                    w |= (uint64_t)(allow(i, c0 + c, ctx) != 0) << c;
                spattn__mb_or_word(&b, 1u << r, kt, w);
            }
        }
        spattn__mb_end(&b);
    }
    return spattn__mb_finish(&b, out);
}
