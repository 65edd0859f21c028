/*
 * The AVX-512 vector layer under the kernel template (src/kernels/vec.h states
 * what each name must do). Two shapes:
 *  - col_t: 16 floats, one per query row of a tile (tile path) or per key of a gather chunk;
 *  - vec_t: the widest vector, running along dim or along the keys of a softmax row.
 * On AVX-512 both are one zmm.
 */
#ifndef SPATTN_VEC_AVX512_H
#define SPATTN_VEC_AVX512_H

#if !defined(__AVX512F__) || !defined(__AVX512BW__) || !defined(__AVX512DQ__) ||                   \
    !defined(__AVX512VL__) || !defined(__FMA__)
#error "vec_avx512.h needs -mavx512f -mavx512bw -mavx512dq -mavx512vl -mfma"
#endif

#include <immintrin.h>
#include <sleef.h>
#include <stdint.h>

#include "x86/vec_x86.h"
#include "x86/x86_math.h"

/* ---- col_t: 16 lanes ------------------------------------------------------------------- */
typedef __m512 col_t;
typedef __mmask16 cmask_t;

/* Register blocking of the two products (see src/kernels/vec.h): keys per S block, their split
   of dim into independent chains, dims per step between pointer updates; the PV product is
   row-major, PV_RB rows of O (x PV_NV vectors along dim) per register block. */
#define QK_NB 8
#define QK_NB2 4 /* keys per S block when two query tiles share each K broadcast */
#define QK_DS 2
#define QK_DU 8
#define PV_ROWS 1
#define PV_NV 4
#define PV_RB 6
#define PV_ROWS_BELOW 16
/* 16-bit V of tiles of more rows than this (three row blocks) is widened once per tile before
   the row-major P V (pv_rows.h) instead of once per row block; with two blocks (decode of 8
   query heads on a KV head) the stage measured slower. */
#define PV_ROWS_STAGE_ABOVE 12
#define COL_HALVES 0 /* one zmm is one column: nothing to skip */
/* Stack for 16-bit K rows widened ahead of the column QK (kv_load.h): dims up to 256. */
#define KV_STAGE_FLOATS 4096

SPATTN_ALWAYS_INLINE col_t col_zero(void)
{
    return _mm512_setzero_ps();
}
SPATTN_ALWAYS_INLINE col_t col_set1(float x)
{
    return _mm512_set1_ps(x);
}
SPATTN_ALWAYS_INLINE col_t col_load(const float *p)
{
    return _mm512_load_ps(p);
}
SPATTN_ALWAYS_INLINE void col_store(float *p, col_t a)
{
    _mm512_store_ps(p, a);
}
SPATTN_ALWAYS_INLINE col_t col_add(col_t a, col_t b)
{
    return _mm512_add_ps(a, b);
}
SPATTN_ALWAYS_INLINE col_t col_bcast(const float *p)
{
    return _mm512_set1_ps(*p);
}
/* 16-bit elements widened into every lane: bf16 as the high half of a float, f16 through
   vcvtph2ps. */
SPATTN_ALWAYS_INLINE col_t col_bcast_bf16(const uint16_t *p)
{
    return _mm512_castsi512_ps(_mm512_set1_epi32((int)((uint32_t)*p << 16)));
}
SPATTN_ALWAYS_INLINE col_t col_bcast_f16(const uint16_t *p)
{
    return _mm512_cvtph_ps(_mm256_set1_epi16((short)*p));
}
SPATTN_ALWAYS_INLINE col_t col_fma_lo(col_t a, col_t b, col_t acc)
{
    return _mm512_fmadd_ps(a, b, acc);
}
SPATTN_ALWAYS_INLINE col_t col_fma_bc_lo(col_t a, const float *p, col_t acc)
{
    return _mm512_fmadd_ps(a, _mm512_set1_ps(*p), acc);
}
SPATTN_ALWAYS_INLINE col_t col_fma(col_t a, col_t b, col_t c)
{
    return _mm512_fmadd_ps(a, b, c);
}
SPATTN_ALWAYS_INLINE col_t col_sub(col_t a, col_t b)
{
    return _mm512_sub_ps(a, b);
}
SPATTN_ALWAYS_INLINE col_t col_mul(col_t a, col_t b)
{
    return _mm512_mul_ps(a, b);
}
/* NaN in b wins (vmaxps returns its second operand when either is NaN). */
SPATTN_ALWAYS_INLINE col_t col_max(col_t a, col_t b)
{
    return _mm512_max_ps(a, b);
}
SPATTN_ALWAYS_INLINE col_t col_abs(col_t a)
{
    return _mm512_abs_ps(a);
}
/* acc + a * (*p) */
SPATTN_ALWAYS_INLINE col_t col_fma_bc(col_t a, const float *p, col_t acc)
{
    return _mm512_fmadd_ps(a, _mm512_set1_ps(*p), acc);
}
/* The same, lanes outside m keep acc untouched (so a NaN at *p cannot reach them). */
SPATTN_ALWAYS_INLINE col_t col_fma_bc_m(col_t a, const float *p, col_t acc, cmask_t m)
{
    return _mm512_mask3_fmadd_ps(a, _mm512_set1_ps(*p), acc, m);
}
SPATTN_ALWAYS_INLINE cmask_t cmask_bits(uint32_t bits)
{
    return (cmask_t)bits;
}
/* m ? a : b */
SPATTN_ALWAYS_INLINE col_t col_select(cmask_t m, col_t a, col_t b)
{
    return _mm512_mask_blend_ps(m, b, a);
}
SPATTN_ALWAYS_INLINE cmask_t col_is_neginf(col_t a)
{
    return _mm512_cmp_ps_mask(a, _mm512_set1_ps(-__builtin_inff()), _CMP_EQ_OQ);
}
SPATTN_ALWAYS_INLINE col_t col_exp2(col_t x)
{
    return spattn__exp2_zmm(x);
}
SPATTN_ALWAYS_INLINE col_t col_exp2_lo(col_t x)
{
    return spattn__exp2_zmm(x);
}
SPATTN_ALWAYS_INLINE col_t col_tanh(col_t x)
{
    return Sleef_tanhf16_u35avx512f(x);
}
SPATTN_ALWAYS_INLINE float col_hmax(col_t a)
{
    return _mm512_reduce_max_ps(a);
}
SPATTN_ALWAYS_INLINE float col_hsum(col_t a)
{
    return _mm512_reduce_add_ps(a);
}

/* The 16 x 16 matrix of 32-bit lanes in r[0..15] (row i in r[i]) transposed into t[0..15],
   bits moved unchanged (no arithmetic): pairs of rows interleaved, then quadruples, then the
   128-bit quarters exchanged in two steps. */
SPATTN_ALWAYS_INLINE void col_transpose16(const __m512 *r, __m512 *t)
{
    __m512 a[16], b[16];
    for (int i = 0; i < 16; i += 2) { /* per quarter: r_i[0] r_i+1[0] r_i[1] r_i+1[1] | [2] [3] */
        a[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
        a[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
    }
    for (int i = 0; i < 16; i += 4) { /* b[i + e], quarter k: rows i..i+3 of column 4k + e */
        b[i] = _mm512_shuffle_ps(a[i], a[i + 2], _MM_SHUFFLE(1, 0, 1, 0));
        b[i + 1] = _mm512_shuffle_ps(a[i], a[i + 2], _MM_SHUFFLE(3, 2, 3, 2));
        b[i + 2] = _mm512_shuffle_ps(a[i + 1], a[i + 3], _MM_SHUFFLE(1, 0, 1, 0));
        b[i + 3] = _mm512_shuffle_ps(a[i + 1], a[i + 3], _MM_SHUFFLE(3, 2, 3, 2));
    }
    for (int e = 0; e < 4; e++) { /* column 4k + e, quarter g = b[4g + e] quarter k */
        const __m512 b0 = _mm512_shuffle_f32x4(b[e], b[4 + e], _MM_SHUFFLE(1, 0, 1, 0));
        const __m512 b1 = _mm512_shuffle_f32x4(b[e], b[4 + e], _MM_SHUFFLE(3, 2, 3, 2));
        const __m512 b2 = _mm512_shuffle_f32x4(b[8 + e], b[12 + e], _MM_SHUFFLE(1, 0, 1, 0));
        const __m512 b3 = _mm512_shuffle_f32x4(b[8 + e], b[12 + e], _MM_SHUFFLE(3, 2, 3, 2));
        t[e] = _mm512_shuffle_f32x4(b0, b2, _MM_SHUFFLE(2, 0, 2, 0));
        t[4 + e] = _mm512_shuffle_f32x4(b0, b2, _MM_SHUFFLE(3, 1, 3, 1));
        t[8 + e] = _mm512_shuffle_f32x4(b1, b3, _MM_SHUFFLE(2, 0, 2, 0));
        t[12 + e] = _mm512_shuffle_f32x4(b1, b3, _MM_SHUFFLE(3, 1, 3, 1));
    }
}

/* Rows 0..rows-1 (ts floats apart) of w <= 16 consecutive columns, transposed and scaled:
   out[16 d + r] = p[r ts + d] * c for d < w (lanes from `rows` on hold 0 * c; nothing past
   the rows' w elements is read, nothing past out[16 w] written). */
SPATTN_ALWAYS_INLINE void col_transpose_rows(const float *p, ptrdiff_t ts, size_t rows, size_t w,
                                             col_t c, float *out)
{
    const __mmask16 m = (__mmask16)((1u << w) - 1u);
    __m512 r[16], t[16];
    for (int i = 0; i < 16; i++)
        r[i] = (size_t)i < rows ? _mm512_maskz_loadu_ps(m, p + i * ts) : _mm512_setzero_ps();
    col_transpose16(r, t);
    /* Whole tiles apart: with c a constant 1, gcc turns the loop over a variable w into a
       spill of t and a rep movsq, which costs more than the transpose. */
    if (w == 16) {
        for (int d = 0; d < 16; d++)
            _mm512_store_ps(out + 16 * d, _mm512_mul_ps(t[d], c));
        return;
    }
    for (size_t d = 0; d < w; d++)
        _mm512_store_ps(out + 16 * d, _mm512_mul_ps(t[d], c));
}

/* Column masks of a PARTIAL tile: cm[j] bit r = bit j of rows[r], for the 64 keys. */
static inline void col_masks_from_rows(const uint64_t rows[16], uint32_t cm[64])
{
    __m512i r0 = _mm512_loadu_si512((const void *)rows);
    __m512i r1 = _mm512_loadu_si512((const void *)(rows + 8));
    __m512i lo = _mm512_inserti64x4(_mm512_castsi256_si512(_mm512_cvtepi64_epi32(r0)),
                                    _mm512_cvtepi64_epi32(r1), 1);
    __m512i hi =
        _mm512_inserti64x4(_mm512_castsi256_si512(_mm512_cvtepi64_epi32(_mm512_srli_epi64(r0, 32))),
                           _mm512_cvtepi64_epi32(_mm512_srli_epi64(r1, 32)), 1);
    for (int j = 0; j < 32; j++) {
        __m512i bit = _mm512_set1_epi32((int)(1u << j));
        cm[j] = _mm512_test_epi32_mask(lo, bit);
        cm[j + 32] = _mm512_test_epi32_mask(hi, bit);
    }
}

/* ---- vec_t: 16 lanes along dim or keys -------------------------------------------------- */
typedef __m512 vec_t;
typedef __mmask16 vmask_t;
#define VL 16

/* ---- 16-bit inputs, widened on load ----------------------------------------------------- */
/* bf16 is the high half of a float: widening is a shift. */
SPATTN_ALWAYS_INLINE vec_t vec_loadu_bf16(const uint16_t *p)
{
    return _mm512_castsi512_ps(_mm512_slli_epi32(
        _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(const void *)p)), 16));
}
SPATTN_ALWAYS_INLINE vec_t vec_loadu_bf16_m(const uint16_t *p, vmask_t m)
{
    return _mm512_castsi512_ps(
        _mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, p)), 16));
}
SPATTN_ALWAYS_INLINE vec_t vec_loadu_f16(const uint16_t *p)
{
    return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)p));
}
SPATTN_ALWAYS_INLINE vec_t vec_loadu_f16_m(const uint16_t *p, vmask_t m)
{
    return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, p));
}

/* ---- 16-bit outputs, narrowed on store -------------------------------------------------- */
/* Both round to nearest even and give the bits of spattn__store_row (convert.h) for every
   input. bf16 by integer rounding rather than vcvtneps2bf16, which flushes subnormal inputs to
   zero; a NaN keeps its sign and top payload bits and is made quiet. f16 by vcvtps2ph with the
   rounding in its immediate (FTZ does not apply to it; DAZ could only touch float subnormals,
   which round to a zero anyway). */
SPATTN_ALWAYS_INLINE __m256i vec_bf16_bits(vec_t x)
{
    const __m512i u = _mm512_castps_si512(x), one = _mm512_set1_epi32(1);
    __m512i r =
        _mm512_add_epi32(u, _mm512_add_epi32(_mm512_set1_epi32(0x7fff),
                                             _mm512_and_si512(_mm512_srli_epi32(u, 16), one)));
    r = _mm512_mask_or_epi32(r, _mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q), u,
                             _mm512_set1_epi32(0x00400000));
    return _mm512_cvtepi32_epi16(_mm512_srli_epi32(r, 16));
}
SPATTN_ALWAYS_INLINE void vec_storeu_bf16(uint16_t *p, vec_t x)
{
    _mm256_storeu_si256((__m256i *)(void *)p, vec_bf16_bits(x));
}
SPATTN_ALWAYS_INLINE void vec_storeu_bf16_m(uint16_t *p, vmask_t m, vec_t x)
{
    _mm256_mask_storeu_epi16(p, m, vec_bf16_bits(x));
}
SPATTN_ALWAYS_INLINE void vec_storeu_f16(uint16_t *p, vec_t x)
{
    _mm256_storeu_si256((__m256i *)(void *)p, _mm512_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT));
}
SPATTN_ALWAYS_INLINE void vec_storeu_f16_m(uint16_t *p, vmask_t m, vec_t x)
{
    _mm256_mask_storeu_epi16(p, m, _mm512_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT));
}

SPATTN_ALWAYS_INLINE vec_t vec_zero(void)
{
    return _mm512_setzero_ps();
}
SPATTN_ALWAYS_INLINE vec_t vec_set1(float x)
{
    return _mm512_set1_ps(x);
}
SPATTN_ALWAYS_INLINE vec_t vec_loadu(const float *p)
{
    return _mm512_loadu_ps(p);
}
SPATTN_ALWAYS_INLINE void vec_storeu(float *p, vec_t a)
{
    _mm512_storeu_ps(p, a);
}
SPATTN_ALWAYS_INLINE vmask_t vmask_bits(uint64_t bits)
{
    return (vmask_t)bits;
}
SPATTN_ALWAYS_INLINE vmask_t vmask_first(size_t n)
{
    return (vmask_t)((1u << n) - 1u);
}
/* Lanes outside m are not read (no fault, no sanitizer report) and come out 0. */
SPATTN_ALWAYS_INLINE vec_t vec_loadu_m(const float *p, vmask_t m)
{
    return _mm512_maskz_loadu_ps(m, p);
}
SPATTN_ALWAYS_INLINE void vec_storeu_m(float *p, vmask_t m, vec_t a)
{
    _mm512_mask_storeu_ps(p, m, a);
}
SPATTN_ALWAYS_INLINE vec_t vec_add(vec_t a, vec_t b)
{
    return _mm512_add_ps(a, b);
}
SPATTN_ALWAYS_INLINE vec_t vec_mul(vec_t a, vec_t b)
{
    return _mm512_mul_ps(a, b);
}
SPATTN_ALWAYS_INLINE vec_t vec_max(vec_t a, vec_t b)
{
    return _mm512_max_ps(a, b);
}
SPATTN_ALWAYS_INLINE vec_t vec_fma(vec_t a, vec_t b, vec_t c)
{
    return _mm512_fmadd_ps(a, b, c);
}
/* a * b + c in the lanes of m, c elsewhere (a NaN in a or b cannot reach those). */
SPATTN_ALWAYS_INLINE vec_t vec_fma_m(vec_t a, vec_t b, vec_t c, vmask_t m)
{
    return _mm512_mask3_fmadd_ps(a, b, c, m);
}
/* m[r] = every lane when bit r of bits is set, else none (r < 16). */
SPATTN_ALWAYS_INLINE void vmask_expand16(vmask_t m[16], uint32_t bits)
{
    _mm256_storeu_si256((__m256i *)(void *)m, _mm256_movm_epi16((__mmask16)bits));
}
/* Straight from memory into a mask register (a load port), not through a general register
   (a port-5 move, which compilers emit for a plain load). */
SPATTN_ALWAYS_INLINE vmask_t vmask_load(const vmask_t *p)
{
    vmask_t m;
    __asm__("kmovw %1, %0" : "=k"(m) : "m"(*p));
    return m;
}
SPATTN_ALWAYS_INLINE vec_t vec_select(vmask_t m, vec_t a, vec_t b)
{
    return _mm512_mask_blend_ps(m, b, a);
}
SPATTN_ALWAYS_INLINE vec_t vec_exp2(vec_t x)
{
    return spattn__exp2_zmm(x);
}
SPATTN_ALWAYS_INLINE float vec_hsum(vec_t a)
{
    return _mm512_reduce_add_ps(a);
}
SPATTN_ALWAYS_INLINE float vec_hmax(vec_t a)
{
    return _mm512_reduce_max_ps(a);
}
SPATTN_ALWAYS_INLINE float vec_lane0(vec_t a)
{
    return _mm512_cvtss_f32(a);
}
/* Lane i = the sum of a[i]'s lanes, for 16 vectors at once: each level adds pairs of vectors
   after moving their halves (then quarters, pairs, single lanes) side by side: 15 adds and 30
   shuffles or blends in all, where reducing each vector alone takes 4 of each apiece. The
   levels leave lane i holding vector perm[i]; perm is its own inverse, so reading the inputs
   through it puts every sum in its own lane. */
SPATTN_ALWAYS_INLINE vec_t vec_hsums(const vec_t a[16])
{
    static const int perm[16] = {0, 2, 1, 3, 8, 10, 9, 11, 4, 6, 5, 7, 12, 14, 13, 15};
    __m512 h[8], q[4];
    for (int i = 0; i < 8; i++) /* lanes 0-7: a[perm[i]], 8-15: a[perm[i + 8]] */
        h[i] = _mm512_add_ps(
            _mm512_mask_blend_ps(0xFF00, a[perm[i]], a[perm[i + 8]]),
            _mm512_shuffle_f32x4(a[perm[i]], a[perm[i + 8]], _MM_SHUFFLE(1, 0, 3, 2)));
    for (int i = 0; i < 4; i++) /* quarters: h[i] low, h[i] high, h[i + 4] low, h[i + 4] high */
        q[i] = _mm512_add_ps(_mm512_shuffle_f32x4(h[i], h[i + 4], _MM_SHUFFLE(2, 0, 2, 0)),
                             _mm512_shuffle_f32x4(h[i], h[i + 4], _MM_SHUFFLE(3, 1, 3, 1)));
    __m512 x = _mm512_add_ps(_mm512_shuffle_ps(q[0], q[2], _MM_SHUFFLE(1, 0, 1, 0)),
                             _mm512_shuffle_ps(q[0], q[2], _MM_SHUFFLE(3, 2, 3, 2)));
    __m512 y = _mm512_add_ps(_mm512_shuffle_ps(q[1], q[3], _MM_SHUFFLE(1, 0, 1, 0)),
                             _mm512_shuffle_ps(q[1], q[3], _MM_SHUFFLE(3, 2, 3, 2)));
    return _mm512_add_ps(_mm512_shuffle_ps(x, y, _MM_SHUFFLE(2, 0, 2, 0)),
                         _mm512_shuffle_ps(x, y, _MM_SHUFFLE(3, 1, 3, 1)));
}
/* The 16 / VL results of vec_hsums as one column. */
SPATTN_ALWAYS_INLINE col_t col_from_vecs(const vec_t *v)
{
    return v[0];
}
/* The same for 4 vectors (lanes 0-3; rows of a handful of keys): halves, then quarters side
   by side as above, then each quarter summed in place and its lane 0 moved down. */
SPATTN_ALWAYS_INLINE q4_t vec_hsums4(const vec_t a[4])
{
    __m512 h0 = _mm512_add_ps(_mm512_mask_blend_ps(0xFF00, a[0], a[1]),
                              _mm512_shuffle_f32x4(a[0], a[1], _MM_SHUFFLE(1, 0, 3, 2)));
    __m512 h1 = _mm512_add_ps(_mm512_mask_blend_ps(0xFF00, a[2], a[3]),
                              _mm512_shuffle_f32x4(a[2], a[3], _MM_SHUFFLE(1, 0, 3, 2)));
    __m512 q = _mm512_add_ps(_mm512_shuffle_f32x4(h0, h1, _MM_SHUFFLE(2, 0, 2, 0)),
                             _mm512_shuffle_f32x4(h0, h1, _MM_SHUFFLE(3, 1, 3, 1)));
    q = _mm512_add_ps(q, _mm512_permute_ps(q, _MM_SHUFFLE(1, 0, 3, 2)));
    q = _mm512_add_ps(q, _mm512_permute_ps(q, _MM_SHUFFLE(2, 3, 0, 1)));
    const __m512i lane0 = _mm512_setr_epi32(0, 4, 8, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
    return _mm512_castps512_ps128(_mm512_permutexvar_ps(lane0, q));
}
/* Lanes 0-3 from x, 4-7 from y, the rest 0. */
SPATTN_ALWAYS_INLINE col_t col_from_quarters(q4_t x, q4_t y)
{
    return _mm512_insertf32x4(_mm512_zextps128_ps512(x), y, 1);
}
/* Columns of 4 rows, 4 keys to a col_t (the compact scores of softmax_online.h). */
SPATTN_ALWAYS_INLINE void col_store_q4(float *p, col_t a)
{
    _mm_store_ps(p, _mm512_castps512_ps128(a));
}
SPATTN_ALWAYS_INLINE col_t col_spread_q4(col_t a)
{
    return _mm512_shuffle_f32x4(a, a, 0);
}
SPATTN_ALWAYS_INLINE col_t col_sum_q4(col_t a)
{
    a = _mm512_add_ps(a, _mm512_shuffle_f32x4(a, a, _MM_SHUFFLE(1, 0, 3, 2)));
    return _mm512_add_ps(a, _mm512_shuffle_f32x4(a, a, _MM_SHUFFLE(2, 3, 0, 1)));
}
/* The same for columns of 5-8 rows, 2 keys to a col_t. */
SPATTN_ALWAYS_INLINE void col_store_h8(float *p, col_t a)
{
    _mm256_store_ps(p, _mm512_castps512_ps256(a));
}
SPATTN_ALWAYS_INLINE col_t col_spread_h8(col_t a)
{
    return _mm512_shuffle_f32x4(a, a, _MM_SHUFFLE(1, 0, 1, 0));
}
SPATTN_ALWAYS_INLINE col_t col_sum_h8(col_t a)
{
    return _mm512_add_ps(a, _mm512_shuffle_f32x4(a, a, _MM_SHUFFLE(1, 0, 3, 2)));
}
/* Peak probe (tpl_fma_probe): 24 independent chains cover 4-cycle latency on two FMA ports with
 * room. */
#define PROBE_CHAINS 24

#endif
