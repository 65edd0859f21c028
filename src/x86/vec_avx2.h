/*
 * The AVX2+FMA vector layer under the kernel template (src/kernels/vec.h states what each name
 * must do; vec_avx512.h for the two shapes). col_t is a pair of ymm (rows 0-7, 8-15); masks
 * are all-ones lanes, since AVX2 has no mask registers.
 */
#ifndef SPATTN_VEC_AVX2_H
#define SPATTN_VEC_AVX2_H

#if !defined(__AVX2__) || !defined(__FMA__)
#error "vec_avx2.h needs -mavx2 -mfma"
#endif

#include <immintrin.h>
#include <sleef.h>
#include <stdint.h>

#include "x86/vec_x86.h"
#include "x86/x86_math.h"

/* ---- col_t: 16 lanes as two ymm --------------------------------------------------------- */
typedef struct col_t {
    __m256 lo, hi;
} col_t;
typedef struct cmask_t {
    __m256 lo, hi;
} cmask_t;

/* 16 ymm: 6 keys x 2 halves of S, 6 dims x 2 halves of O (4 when masks take registers); a
   pair of query tiles: 2 keys x 2 tiles x 2 halves (3 keys spilled: slower, docs/kernels.md). */
#define QK_NB 6
#define QK_NB2 2
#define QK_DS 1
#define QK_DU 4
#define PV_EB 6
#define PV_EBM 4
#define PV_ROWS 0
/* Query tiles of at most this many rows (decode: the query heads of one KV head) take the
   row-major P V of AVX-512: the transposed form spends FMAs on 16 lanes whatever the rows.
   2 rows x 4 vectors of O, 4 of V, P and a mask: 14 of 16 ymm (some tiles: 4 x 2, pv_rows). */
#define PV_ROWS_BELOW 8
#define PV_RB 2
#define PV_NV 4
#define KV_STAGE_FLOATS 4096 /* stack for 16-bit K widened ahead of the column QK */
#define PV_STAGE_FLOATS 8192 /* stack for 16-bit V widened ahead of the column P V */
#define PV_UNMASK_FINITE 1   /* finite PARTIAL tiles: unmasked P V (softmax_online.h) */
#define QK_F32_FIXED_DIMS 1  /* float32 column QK with dim_qk 64 / 128 as constants (qk_cols.h) */

SPATTN_ALWAYS_INLINE col_t col_mk(__m256 lo, __m256 hi)
{
    col_t c = {lo, hi};
    return c;
}
SPATTN_ALWAYS_INLINE col_t col_zero(void)
{
    return col_mk(_mm256_setzero_ps(), _mm256_setzero_ps());
}
SPATTN_ALWAYS_INLINE col_t col_set1(float x)
{
    return col_mk(_mm256_set1_ps(x), _mm256_set1_ps(x));
}
SPATTN_ALWAYS_INLINE col_t col_load(const float *p)
{
    return col_mk(_mm256_load_ps(p), _mm256_load_ps(p + 8));
}
SPATTN_ALWAYS_INLINE void col_store(float *p, col_t a)
{
    _mm256_store_ps(p, a.lo);
    _mm256_store_ps(p + 8, a.hi);
}
SPATTN_ALWAYS_INLINE col_t col_add(col_t a, col_t b)
{
    return col_mk(_mm256_add_ps(a.lo, b.lo), _mm256_add_ps(a.hi, b.hi));
}
SPATTN_ALWAYS_INLINE col_t col_sub(col_t a, col_t b)
{
    return col_mk(_mm256_sub_ps(a.lo, b.lo), _mm256_sub_ps(a.hi, b.hi));
}
SPATTN_ALWAYS_INLINE col_t col_mul(col_t a, col_t b)
{
    return col_mk(_mm256_mul_ps(a.lo, b.lo), _mm256_mul_ps(a.hi, b.hi));
}
SPATTN_ALWAYS_INLINE col_t col_max(col_t a, col_t b)
{
    return col_mk(_mm256_max_ps(a.lo, b.lo), _mm256_max_ps(a.hi, b.hi));
}
SPATTN_ALWAYS_INLINE col_t col_abs(col_t a)
{
    const __m256 m = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    return col_mk(_mm256_and_ps(a.lo, m), _mm256_and_ps(a.hi, m));
}
SPATTN_ALWAYS_INLINE col_t col_bcast(const float *p)
{
    __m256 b = _mm256_broadcast_ss(p);
    return col_mk(b, b);
}
SPATTN_ALWAYS_INLINE col_t col_fma(col_t a, col_t b, col_t acc)
{
    return col_mk(_mm256_fmadd_ps(a.lo, b.lo, acc.lo), _mm256_fmadd_ps(a.hi, b.hi, acc.hi));
}
/* 16-bit elements widened into every lane: bf16 as the high half of a float, f16 through
   F16C. */
SPATTN_ALWAYS_INLINE col_t col_bcast_bf16(const uint16_t *p)
{
    const __m256 b = _mm256_castsi256_ps(_mm256_set1_epi32((int)((uint32_t)*p << 16)));
    return col_mk(b, b);
}
SPATTN_ALWAYS_INLINE col_t col_bcast_f16(const uint16_t *p)
{
    const __m256 b = _mm256_cvtph_ps(_mm_set1_epi16((short)*p));
    return col_mk(b, b);
}
/* Rows 0-7 only, the high half of acc passes through (see col_fma_bc_lo). */
SPATTN_ALWAYS_INLINE col_t col_fma_lo(col_t a, col_t b, col_t acc)
{
    return col_mk(_mm256_fmadd_ps(a.lo, b.lo, acc.lo), acc.hi);
}
/* Rows 0-7 only (the high half of acc passes through): for query tiles of at most 8 rows,
   whose high half is padding. */
#define COL_HALVES 1
SPATTN_ALWAYS_INLINE col_t col_fma_bc_lo(col_t a, const float *p, col_t acc)
{
    return col_mk(_mm256_fmadd_ps(a.lo, _mm256_broadcast_ss(p), acc.lo), acc.hi);
}
SPATTN_ALWAYS_INLINE col_t col_fma_bc(col_t a, const float *p, col_t acc)
{
    __m256 b = _mm256_broadcast_ss(p);
    return col_mk(_mm256_fmadd_ps(a.lo, b, acc.lo), _mm256_fmadd_ps(a.hi, b, acc.hi));
}
/* Lanes outside m add a * 0 = 0 exactly: the broadcast is masked, not the product, so a NaN
   at *p cannot reach them (a is finite there: 0 from exp2(-inf)). */
SPATTN_ALWAYS_INLINE col_t col_fma_bc_m(col_t a, const float *p, col_t acc, cmask_t m)
{
    __m256 b = _mm256_broadcast_ss(p);
    return col_mk(_mm256_fmadd_ps(a.lo, _mm256_and_ps(b, m.lo), acc.lo),
                  _mm256_fmadd_ps(a.hi, _mm256_and_ps(b, m.hi), acc.hi));
}
/* Rows 0..rows-1 (ts floats apart) of w <= 16 consecutive columns, transposed and scaled:
   out[16 d + r] = p[r ts + d] * c for d < w (lanes from `rows` on hold 0 * c; nothing past
   the rows' w elements is read, nothing past out[16 w] written). Four 8x8 transposes (rows
   0-7 and 8-15 by columns 0-7 and 8-15), each through pairs, quadruples, then 128-bit
   halves. vmaskmovps only for a partial 8: it was most of the Q pack's time on Zen 1. */
SPATTN_ALWAYS_INLINE void col_transpose_rows(const float *p, ptrdiff_t ts, size_t rows, size_t w,
                                             col_t c, float *out)
{
    for (size_t h = 0; h < w; h += 8) {
        const size_t wh = w - h < 8 ? w - h : 8;
        const __m256i m = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)wh),
                                             _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
        for (int g = 0; g < 2; g++) {
            __m256 r[8], a[8];
            for (int i = 0; i < 8; i++) {
                const float *pr = p + (ptrdiff_t)(8 * g + i) * ts + h;
                r[i] = (size_t)(8 * g + i) >= rows ? _mm256_setzero_ps()
                       : wh == 8                   ? _mm256_loadu_ps(pr)
                                                   : _mm256_maskload_ps(pr, m);
            }
            for (int i = 0; i < 8; i += 2) {
                a[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
                a[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
            }
            for (int i = 0; i < 8; i += 4) { /* r[i + e], half k: rows i..i+3 of column 4k + e */
                r[i] = _mm256_shuffle_ps(a[i], a[i + 2], _MM_SHUFFLE(1, 0, 1, 0));
                r[i + 1] = _mm256_shuffle_ps(a[i], a[i + 2], _MM_SHUFFLE(3, 2, 3, 2));
                r[i + 2] = _mm256_shuffle_ps(a[i + 1], a[i + 3], _MM_SHUFFLE(1, 0, 1, 0));
                r[i + 3] = _mm256_shuffle_ps(a[i + 1], a[i + 3], _MM_SHUFFLE(3, 2, 3, 2));
            }
            const __m256 cg = g ? c.hi : c.lo;
            for (int e = 0; e < 4; e++) {
                float *o = out + 16 * h + 8 * (size_t)g;
                if ((size_t)e < wh)
                    _mm256_store_ps(
                        o + 16 * e,
                        _mm256_mul_ps(_mm256_permute2f128_ps(r[e], r[4 + e], 0x20), cg));
                if ((size_t)(4 + e) < wh)
                    _mm256_store_ps(
                        o + 16 * (4 + e),
                        _mm256_mul_ps(_mm256_permute2f128_ps(r[e], r[4 + e], 0x31), cg));
            }
        }
    }
}

SPATTN_ALWAYS_INLINE cmask_t cmask_bits(uint32_t bits)
{
    const __m256i b = _mm256_set1_epi32((int)bits);
    const __m256i l0 = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
    const __m256i l1 = _mm256_setr_epi32(256, 512, 1024, 2048, 4096, 8192, 16384, 32768);
    cmask_t m = {_mm256_castsi256_ps(_mm256_cmpeq_epi32(_mm256_and_si256(b, l0), l0)),
                 _mm256_castsi256_ps(_mm256_cmpeq_epi32(_mm256_and_si256(b, l1), l1))};
    return m;
}
SPATTN_ALWAYS_INLINE col_t col_select(cmask_t m, col_t a, col_t b)
{
    return col_mk(_mm256_blendv_ps(b.lo, a.lo, m.lo), _mm256_blendv_ps(b.hi, a.hi, m.hi));
}
SPATTN_ALWAYS_INLINE cmask_t col_is_neginf(col_t a)
{
    const __m256 ninf = _mm256_set1_ps(-__builtin_inff());
    cmask_t m = {_mm256_cmp_ps(a.lo, ninf, _CMP_EQ_OQ), _mm256_cmp_ps(a.hi, ninf, _CMP_EQ_OQ)};
    return m;
}
SPATTN_ALWAYS_INLINE col_t col_exp2(col_t x)
{
    return col_mk(spattn__exp2_ymm(x.lo), spattn__exp2_ymm(x.hi));
}
/* Rows 0-7 only; the high half comes out 0 (see col_fma_bc_lo). */
SPATTN_ALWAYS_INLINE col_t col_exp2_lo(col_t x)
{
    return col_mk(spattn__exp2_ymm(x.lo), _mm256_setzero_ps());
}
SPATTN_ALWAYS_INLINE col_t col_tanh(col_t x)
{
    return col_mk(Sleef_tanhf8_u35avx2(x.lo), Sleef_tanhf8_u35avx2(x.hi));
}
SPATTN_ALWAYS_INLINE float hsum_ymm(__m256 a)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}
SPATTN_ALWAYS_INLINE float hmax_ymm(__m256 a)
{
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}
SPATTN_ALWAYS_INLINE float col_hmax(col_t a)
{
    return hmax_ymm(_mm256_max_ps(a.lo, a.hi));
}
SPATTN_ALWAYS_INLINE float col_hsum(col_t a)
{
    return hsum_ymm(_mm256_add_ps(a.lo, a.hi));
}

/* Column masks of a PARTIAL tile: cm[j] bit r = bit j of rows[r]. Shifting bit j of every
   row's 32-bit half into the sign bit lets movemask collect 8 rows at once. */
static inline void col_masks_from_rows(const uint64_t rows[16], uint32_t cm[64])
{
    uint32_t h[4][8];
    for (int r = 0; r < 16; r++) {
        h[r >> 3][r & 7] = (uint32_t)rows[r];
        h[2 + (r >> 3)][r & 7] = (uint32_t)(rows[r] >> 32);
    }
    __m256i v[4];
    for (int i = 0; i < 4; i++)
        v[i] = _mm256_loadu_si256((const __m256i *)(const void *)h[i]);
    for (int j = 0; j < 32; j++) {
        __m128i sh = _mm_cvtsi32_si128(31 - j);
        uint32_t m[4];
        for (int i = 0; i < 4; i++)
            m[i] = (uint32_t)_mm256_movemask_ps(_mm256_castsi256_ps(_mm256_sll_epi32(v[i], sh)));
        cm[j] = m[0] | m[1] << 8;
        cm[j + 32] = m[2] | m[3] << 8;
    }
}

/* ---- vec_t: 8 lanes along dim or keys --------------------------------------------------- */
typedef __m256 vec_t;
typedef __m256i vmask_t;
#define VL 8

/* ---- 16-bit inputs, widened on load ----------------------------------------------------- */
/* bf16 is the high half of a float: widening is a shift. Masked forms go through a copy of
   the lanes in m (AVX2 has no 16-bit masked load); lanes outside m are neither read nor
   nonzero. A mask of all lanes (the last vector of a dim that VL divides, as the row-major
   P V passes it) is one plain load: copied lane by lane it made 16-bit decode slower than
   float32. */
SPATTN_ALWAYS_INLINE vec_t vec_loadu_bf16(const uint16_t *p)
{
    return _mm256_castsi256_ps(_mm256_slli_epi32(
        _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(const void *)p)), 16));
}
SPATTN_ALWAYS_INLINE vec_t vec_loadu_f16(const uint16_t *p)
{
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)p));
}
SPATTN_ALWAYS_INLINE __m128i vec_lanes16_m(const uint16_t *p, vmask_t m)
{
    const int bits = _mm256_movemask_ps(_mm256_castsi256_ps(m));
    if (__builtin_expect(bits == 0xFF, 1))
        return _mm_loadu_si128((const __m128i *)(const void *)p);
    uint16_t buf[8] = {0};
    for (int i = 0; i < 8; i++)
        if (bits & (1 << i))
            buf[i] = p[i];
    return _mm_loadu_si128((const __m128i *)(const void *)buf);
}
SPATTN_ALWAYS_INLINE vec_t vec_loadu_bf16_m(const uint16_t *p, vmask_t m)
{
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(vec_lanes16_m(p, m)), 16));
}
SPATTN_ALWAYS_INLINE vec_t vec_loadu_f16_m(const uint16_t *p, vmask_t m)
{
    return _mm256_cvtph_ps(vec_lanes16_m(p, m));
}

/* ---- 16-bit outputs, narrowed on store -------------------------------------------------- */
/* Both round to nearest even and give the bits of spattn__store_row (convert.h) for every
   input: bf16 by integer rounding (a NaN keeps its sign and top payload bits and is made
   quiet), f16 by F16C vcvtps2ph with the rounding in its immediate (FTZ does not apply to it;
   DAZ could only touch float subnormals, which round to a zero anyway). Masked forms write
   the lanes of m one by one. */
SPATTN_ALWAYS_INLINE __m128i vec_bf16_bits(vec_t x)
{
    const __m256i u = _mm256_castps_si256(x), one = _mm256_set1_epi32(1);
    __m256i r =
        _mm256_add_epi32(u, _mm256_add_epi32(_mm256_set1_epi32(0x7fff),
                                             _mm256_and_si256(_mm256_srli_epi32(u, 16), one)));
    r = _mm256_blendv_epi8(r, _mm256_or_si256(u, _mm256_set1_epi32(0x00400000)),
                           _mm256_castps_si256(_mm256_cmp_ps(x, x, _CMP_UNORD_Q)));
    r = _mm256_srli_epi32(r, 16);
    return _mm_packus_epi32(_mm256_castsi256_si128(r), _mm256_extracti128_si256(r, 1));
}
SPATTN_ALWAYS_INLINE void vec_lanes16_store_m(uint16_t *p, vmask_t m, __m128i h)
{
    const int bits = _mm256_movemask_ps(_mm256_castsi256_ps(m));
    if (__builtin_expect(bits == 0xFF, 1)) {
        _mm_storeu_si128((__m128i *)(void *)p, h);
        return;
    }
    uint16_t buf[8];
    _mm_storeu_si128((__m128i *)(void *)buf, h);
    for (int i = 0; i < 8; i++)
        if (bits & (1 << i))
            p[i] = buf[i];
}
SPATTN_ALWAYS_INLINE void vec_storeu_bf16(uint16_t *p, vec_t x)
{
    _mm_storeu_si128((__m128i *)(void *)p, vec_bf16_bits(x));
}
SPATTN_ALWAYS_INLINE void vec_storeu_bf16_m(uint16_t *p, vmask_t m, vec_t x)
{
    vec_lanes16_store_m(p, m, vec_bf16_bits(x));
}
SPATTN_ALWAYS_INLINE void vec_storeu_f16(uint16_t *p, vec_t x)
{
    _mm_storeu_si128((__m128i *)(void *)p, _mm256_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT));
}
SPATTN_ALWAYS_INLINE void vec_storeu_f16_m(uint16_t *p, vmask_t m, vec_t x)
{
    vec_lanes16_store_m(p, m, _mm256_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT));
}

SPATTN_ALWAYS_INLINE vec_t vec_zero(void)
{
    return _mm256_setzero_ps();
}
SPATTN_ALWAYS_INLINE vec_t vec_set1(float x)
{
    return _mm256_set1_ps(x);
}
SPATTN_ALWAYS_INLINE vec_t vec_loadu(const float *p)
{
    return _mm256_loadu_ps(p);
}
SPATTN_ALWAYS_INLINE void vec_storeu(float *p, vec_t a)
{
    _mm256_storeu_ps(p, a);
}
SPATTN_ALWAYS_INLINE vmask_t vmask_bits(uint64_t bits)
{
    const __m256i l = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
    return _mm256_cmpeq_epi32(_mm256_and_si256(_mm256_set1_epi32((int)(bits & 0xff)), l), l);
}
SPATTN_ALWAYS_INLINE vmask_t vmask_first(size_t n)
{
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}
/* vmaskmov: lanes outside m are not read (no fault) and come out 0. */
SPATTN_ALWAYS_INLINE vec_t vec_loadu_m(const float *p, vmask_t m)
{
    return _mm256_maskload_ps(p, m);
}
SPATTN_ALWAYS_INLINE void vec_storeu_m(float *p, vmask_t m, vec_t a)
{
    _mm256_maskstore_ps(p, m, a);
}
SPATTN_ALWAYS_INLINE vec_t vec_add(vec_t a, vec_t b)
{
    return _mm256_add_ps(a, b);
}
SPATTN_ALWAYS_INLINE vec_t vec_mul(vec_t a, vec_t b)
{
    return _mm256_mul_ps(a, b);
}
SPATTN_ALWAYS_INLINE vec_t vec_max(vec_t a, vec_t b)
{
    return _mm256_max_ps(a, b);
}
SPATTN_ALWAYS_INLINE vec_t vec_fma(vec_t a, vec_t b, vec_t c)
{
    return _mm256_fmadd_ps(a, b, c);
}
SPATTN_ALWAYS_INLINE vec_t vec_select(vmask_t m, vec_t a, vec_t b)
{
    return _mm256_blendv_ps(b, a, _mm256_castsi256_ps(m));
}
/* c + a * b where m is set, c elsewhere (the product is computed and dropped: a NaN in b
   cannot reach lanes outside m). */
SPATTN_ALWAYS_INLINE vec_t vec_fma_m(vec_t a, vec_t b, vec_t c, vmask_t m)
{
    return vec_select(m, _mm256_fmadd_ps(a, b, c), c);
}
/* m[r] = every lane when bit r of bits is set, else none (r < 16). */
SPATTN_ALWAYS_INLINE void vmask_expand16(vmask_t m[16], uint32_t bits)
{
    for (int r = 0; r < 16; r++)
        m[r] = _mm256_set1_epi32(-(int)((bits >> r) & 1u));
}
SPATTN_ALWAYS_INLINE vmask_t vmask_load(const vmask_t *p)
{
    return *p;
}
SPATTN_ALWAYS_INLINE vec_t vec_exp2(vec_t x)
{
    return spattn__exp2_ymm(x);
}
SPATTN_ALWAYS_INLINE float vec_hsum(vec_t a)
{
    return hsum_ymm(a);
}
SPATTN_ALWAYS_INLINE float vec_hmax(vec_t a)
{
    return hmax_ymm(a);
}
SPATTN_ALWAYS_INLINE float vec_lane0(vec_t a)
{
    return _mm256_cvtss_f32(a);
}
/* Lane i = the sum of a[i]'s lanes, for 8 vectors at once: each level adds pairs of vectors
   after moving their halves (then pairs, then single lanes) side by side. The levels leave
   lane i holding vector perm[i]; perm is its own inverse, so reading the inputs through it
   puts every sum in its own lane. */
SPATTN_ALWAYS_INLINE vec_t vec_hsums(const vec_t a[8])
{
    static const int perm[8] = {0, 2, 1, 3, 4, 6, 5, 7};
    __m256 h[4];
    for (int i = 0; i < 4; i++) /* lanes 0-3: a[perm[i]], 4-7: a[perm[i + 4]] */
        h[i] = _mm256_add_ps(_mm256_blend_ps(a[perm[i]], a[perm[i + 4]], 0xF0),
                             _mm256_permute2f128_ps(a[perm[i]], a[perm[i + 4]], 0x21));
    __m256 x = _mm256_add_ps(_mm256_shuffle_ps(h[0], h[2], _MM_SHUFFLE(1, 0, 1, 0)),
                             _mm256_shuffle_ps(h[0], h[2], _MM_SHUFFLE(3, 2, 3, 2)));
    __m256 y = _mm256_add_ps(_mm256_shuffle_ps(h[1], h[3], _MM_SHUFFLE(1, 0, 1, 0)),
                             _mm256_shuffle_ps(h[1], h[3], _MM_SHUFFLE(3, 2, 3, 2)));
    return _mm256_add_ps(_mm256_shuffle_ps(x, y, _MM_SHUFFLE(2, 0, 2, 0)),
                         _mm256_shuffle_ps(x, y, _MM_SHUFFLE(3, 1, 3, 1)));
}
/* The 16 / VL results of vec_hsums as one column. */
SPATTN_ALWAYS_INLINE col_t col_from_vecs(const vec_t *v)
{
    return col_mk(v[0], v[1]);
}
/* The same for 4 vectors (lanes 0-3; rows of a handful of keys): one hadd tree. */
SPATTN_ALWAYS_INLINE q4_t vec_hsums4(const vec_t a[4])
{
    __m256 h = _mm256_hadd_ps(_mm256_hadd_ps(a[0], a[1]), _mm256_hadd_ps(a[2], a[3]));
    return _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
}
/* Lanes 0-3 from x, 4-7 from y, the rest 0. */
SPATTN_ALWAYS_INLINE col_t col_from_quarters(q4_t x, q4_t y)
{
    return col_mk(_mm256_set_m128(y, x), _mm256_setzero_ps());
}
/* Columns of 4 rows, 4 keys to a col_t (the compact scores of softmax_online.h). */
SPATTN_ALWAYS_INLINE void col_store_q4(float *p, col_t a)
{
    _mm_store_ps(p, _mm256_castps256_ps128(a.lo));
}
SPATTN_ALWAYS_INLINE col_t col_spread_q4(col_t a)
{
    const __m256 q = _mm256_permute2f128_ps(a.lo, a.lo, 0x00);
    return col_mk(q, q);
}
SPATTN_ALWAYS_INLINE col_t col_sum_q4(col_t a)
{
    const __m256 h = _mm256_add_ps(a.lo, a.hi); /* q0 + q2 | q1 + q3 */
    const __m256 s = _mm256_add_ps(h, _mm256_permute2f128_ps(h, h, 0x01));
    return col_mk(s, s);
}
/* The same for columns of 5-8 rows, 2 keys to a col_t. */
SPATTN_ALWAYS_INLINE void col_store_h8(float *p, col_t a)
{
    _mm256_store_ps(p, a.lo);
}
SPATTN_ALWAYS_INLINE col_t col_spread_h8(col_t a)
{
    return col_mk(a.lo, a.lo);
}
SPATTN_ALWAYS_INLINE col_t col_sum_h8(col_t a)
{
    const __m256 s = _mm256_add_ps(a.lo, a.hi);
    return col_mk(s, s);
}
/* Peak probe (tpl_fma_probe): 12 chains (4-cycle latency, two FMA ports, 16 registers). */
#define PROBE_CHAINS 12

#endif
