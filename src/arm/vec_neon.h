/*
 * The AArch64 Advanced SIMD vector layer under the kernel template (src/kernels/vec.h states
 * the vocabulary, its two shapes and the NaN rules):
 *  - col_t: 16 lanes, one per query row, as four q registers (rows 0-3, 4-7, 8-11, 12-15);
 *  - vec_t: one q register, 4 lanes along dim or keys.
 * Masks are all-ones lanes (uint32x4_t), as on AVX2. Advanced SIMD has neither masked loads
 * nor gathers: masked loads and stores go lane by lane unless the mask is full.
 */
#ifndef SPATTN_VEC_NEON_H
#define SPATTN_VEC_NEON_H

#if !defined(__aarch64__) || !defined(__ARM_NEON)
#error "vec_neon.h needs an AArch64 target with Advanced SIMD"
#endif

#include <arm_neon.h>
#include <sleef.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define SPATTN_ALWAYS_INLINE static inline __attribute__((always_inline))

/* Register blocking for 32 q registers (the constants are described in src/kernels/vec.h). A
   broadcast is a scalar the FMAs take by element, so one load feeds a whole column (4 FMAs; 1 on
   AVX-512), and both products may read that operand from memory. QK: 4 keys x 4 registers of S, one
   column of Qt and the key scalars; 5 or more keys, or more than 2 dims per step, make the compiler
   spill. A tile pair: 2 keys x 2 tiles x 4 registers and two columns of Qt (3 keys would need 33);
   it costs about the instructions of the single form and reads each K element once for the two
   tiles. P V transposed (as AVX2): 5 dims x 4 registers of O^T, the P column and the V scalars; 6
   dims spill one accumulator. Tiles of at most 8 rows take the row-major form (4 rows x 4
   vectors of O), which computes only the rows that exist. */
#define QK_NB 4
#define QK_NB2 2
#define QK_DS 1
#define QK_DU 2
#define PV_ROWS 0
#define PV_EB 5
#define PV_EBM 4
#define PV_ROWS_BELOW 8
#define PV_NV 4
#define PV_RB 4
/* Tiles of at most 8 rows skip registers 2 and 3 of each column in QK and exp2. */
#define COL_HALVES 1

/* ---- col_t: 16 lanes as four q registers ------------------------------------------------- */
typedef struct col_t {
    float32x4_t a, b, c, d;
} col_t;
typedef struct cmask_t {
    uint32x4_t a, b, c, d;
} cmask_t;

SPATTN_ALWAYS_INLINE col_t col_mk(float32x4_t a, float32x4_t b, float32x4_t c, float32x4_t d)
{
    col_t r = {a, b, c, d};
    return r;
}
SPATTN_ALWAYS_INLINE col_t col_zero(void)
{
    const float32x4_t z = vdupq_n_f32(0.0f);
    return col_mk(z, z, z, z);
}
SPATTN_ALWAYS_INLINE col_t col_set1(float x)
{
    const float32x4_t v = vdupq_n_f32(x);
    return col_mk(v, v, v, v);
}
SPATTN_ALWAYS_INLINE col_t col_load(const float *p)
{
    return col_mk(vld1q_f32(p), vld1q_f32(p + 4), vld1q_f32(p + 8), vld1q_f32(p + 12));
}
SPATTN_ALWAYS_INLINE void col_store(float *p, col_t x)
{
    vst1q_f32(p, x.a);
    vst1q_f32(p + 4, x.b);
    vst1q_f32(p + 8, x.c);
    vst1q_f32(p + 12, x.d);
}
SPATTN_ALWAYS_INLINE col_t col_add(col_t x, col_t y)
{
    return col_mk(vaddq_f32(x.a, y.a), vaddq_f32(x.b, y.b), vaddq_f32(x.c, y.c),
                  vaddq_f32(x.d, y.d));
}
SPATTN_ALWAYS_INLINE col_t col_sub(col_t x, col_t y)
{
    return col_mk(vsubq_f32(x.a, y.a), vsubq_f32(x.b, y.b), vsubq_f32(x.c, y.c),
                  vsubq_f32(x.d, y.d));
}
SPATTN_ALWAYS_INLINE col_t col_mul(col_t x, col_t y)
{
    return col_mk(vmulq_f32(x.a, y.a), vmulq_f32(x.b, y.b), vmulq_f32(x.c, y.c),
                  vmulq_f32(x.d, y.d));
}
/* FMAX returns NaN when either operand is NaN: a NaN score is never dropped (vmaxps keeps
   only one in b). */
SPATTN_ALWAYS_INLINE col_t col_max(col_t x, col_t y)
{
    return col_mk(vmaxq_f32(x.a, y.a), vmaxq_f32(x.b, y.b), vmaxq_f32(x.c, y.c),
                  vmaxq_f32(x.d, y.d));
}
SPATTN_ALWAYS_INLINE col_t col_abs(col_t x)
{
    return col_mk(vabsq_f32(x.a), vabsq_f32(x.b), vabsq_f32(x.c), vabsq_f32(x.d));
}
/* The broadcast is a scalar load (ldr s accepts an immediate offset, ld1r does not); the
   FMAs take it by element, so no dup is issued. */
SPATTN_ALWAYS_INLINE col_t col_bcast(const float *p)
{
    const float32x4_t v = vdupq_n_f32(*p);
    return col_mk(v, v, v, v);
}
SPATTN_ALWAYS_INLINE col_t col_fma(col_t x, col_t y, col_t acc)
{
    return col_mk(vfmaq_f32(acc.a, x.a, y.a), vfmaq_f32(acc.b, x.b, y.b),
                  vfmaq_f32(acc.c, x.c, y.c), vfmaq_f32(acc.d, x.d, y.d));
}
/* 16-bit elements widened into every lane: bf16 as the high half of a float, f16 through
   fcvtl. */
SPATTN_ALWAYS_INLINE col_t col_bcast_bf16(const uint16_t *p)
{
    const float32x4_t v = vreinterpretq_f32_u32(vdupq_n_u32((uint32_t)*p << 16));
    return col_mk(v, v, v, v);
}
SPATTN_ALWAYS_INLINE col_t col_bcast_f16(const uint16_t *p)
{
    const float32x4_t v = vcvt_f32_f16(vreinterpret_f16_u16(vdup_n_u16(*p)));
    return col_mk(v, v, v, v);
}
/* Registers a and b only (c and d of acc pass through; see col_fma_bc_lo). */
SPATTN_ALWAYS_INLINE col_t col_fma_lo(col_t x, col_t y, col_t acc)
{
    return col_mk(vfmaq_f32(acc.a, x.a, y.a), vfmaq_f32(acc.b, x.b, y.b), acc.c, acc.d);
}
/* acc + x * (*p) */
SPATTN_ALWAYS_INLINE col_t col_fma_bc(col_t x, const float *p, col_t acc)
{
    const float s = *p;
    return col_mk(vfmaq_n_f32(acc.a, x.a, s), vfmaq_n_f32(acc.b, x.b, s),
                  vfmaq_n_f32(acc.c, x.c, s), vfmaq_n_f32(acc.d, x.d, s));
}
/* Rows 0-7 only (registers c and d of acc pass through): for query tiles of at most 8 rows,
   whose rows 8-15 are padding. */
SPATTN_ALWAYS_INLINE col_t col_fma_bc_lo(col_t x, const float *p, col_t acc)
{
    const float s = *p;
    return col_mk(vfmaq_n_f32(acc.a, x.a, s), vfmaq_n_f32(acc.b, x.b, s), acc.c, acc.d);
}
/* Lanes outside m add x * 0 = 0 exactly: the broadcast is masked, not the product, so a NaN
   at *p cannot reach them (x is finite there: 0 from exp2(-inf)). */
SPATTN_ALWAYS_INLINE col_t col_fma_bc_m(col_t x, const float *p, col_t acc, cmask_t m)
{
    const uint32x4_t b = vreinterpretq_u32_f32(vdupq_n_f32(*p));
    return col_mk(vfmaq_f32(acc.a, x.a, vreinterpretq_f32_u32(vandq_u32(b, m.a))),
                  vfmaq_f32(acc.b, x.b, vreinterpretq_f32_u32(vandq_u32(b, m.b))),
                  vfmaq_f32(acc.c, x.c, vreinterpretq_f32_u32(vandq_u32(b, m.c))),
                  vfmaq_f32(acc.d, x.d, vreinterpretq_f32_u32(vandq_u32(b, m.d))));
}
/* Lane r all-ones when bit r of bits is set. */
SPATTN_ALWAYS_INLINE cmask_t cmask_bits(uint32_t bits)
{
    static const uint32_t lane_bit[16] = {1,   2,   4,    8,    16,   32,   64,    128,
                                          256, 512, 1024, 2048, 4096, 8192, 16384, 32768};
    const uint32x4_t b = vdupq_n_u32(bits);
    cmask_t m = {vtstq_u32(b, vld1q_u32(lane_bit)), vtstq_u32(b, vld1q_u32(lane_bit + 4)),
                 vtstq_u32(b, vld1q_u32(lane_bit + 8)), vtstq_u32(b, vld1q_u32(lane_bit + 12))};
    return m;
}
/* m ? x : y */
SPATTN_ALWAYS_INLINE col_t col_select(cmask_t m, col_t x, col_t y)
{
    return col_mk(vbslq_f32(m.a, x.a, y.a), vbslq_f32(m.b, x.b, y.b), vbslq_f32(m.c, x.c, y.c),
                  vbslq_f32(m.d, x.d, y.d));
}
SPATTN_ALWAYS_INLINE cmask_t col_is_neginf(col_t x)
{
    const float32x4_t ninf = vdupq_n_f32(-__builtin_inff());
    cmask_t m = {vceqq_f32(x.a, ninf), vceqq_f32(x.b, ninf), vceqq_f32(x.c, ninf),
                 vceqq_f32(x.d, ninf)};
    return m;
}
/* SLEEF's exp2f (1.0 ULP; exp2(-inf) = 0, NaN stays NaN). The x86 layers flush results
   below 2^-125 to 0 because x86 takes a microcode assist on subnormals; Arm cores handle
   them in hardware, so the result is used as it is. */
SPATTN_ALWAYS_INLINE float32x4_t spattn__exp2_q(float32x4_t x)
{
    return Sleef_exp2f4_u10advsimd(x);
}
SPATTN_ALWAYS_INLINE col_t col_exp2(col_t x)
{
    return col_mk(spattn__exp2_q(x.a), spattn__exp2_q(x.b), spattn__exp2_q(x.c),
                  spattn__exp2_q(x.d));
}
/* Rows 0-7 only; rows 8-15 come out 0 (see col_fma_bc_lo). */
SPATTN_ALWAYS_INLINE col_t col_exp2_lo(col_t x)
{
    const float32x4_t z = vdupq_n_f32(0.0f);
    return col_mk(spattn__exp2_q(x.a), spattn__exp2_q(x.b), z, z);
}
SPATTN_ALWAYS_INLINE col_t col_tanh(col_t x)
{
    return col_mk(Sleef_tanhf4_u10advsimd(x.a), Sleef_tanhf4_u10advsimd(x.b),
                  Sleef_tanhf4_u10advsimd(x.c), Sleef_tanhf4_u10advsimd(x.d));
}
SPATTN_ALWAYS_INLINE float col_hmax(col_t x)
{
    return vmaxvq_f32(vmaxq_f32(vmaxq_f32(x.a, x.b), vmaxq_f32(x.c, x.d)));
}
SPATTN_ALWAYS_INLINE float col_hsum(col_t x)
{
    return vaddvq_f32(vaddq_f32(vaddq_f32(x.a, x.b), vaddq_f32(x.c, x.d)));
}

/* Words 0..we-1 (we <= 4) of rows row0..row0+3 of a matrix of 32-bit words whose rows start
   row_bytes apart at base, transposed: lane i of col[k] = word k of row row0 + i. Rows from
   `rows` on give 0 and are not read, nor are words from we on (a partial block is loaded
   through a zeroed copy). trn1/trn2 on 32-bit, then on 64-bit lanes. Moves bits only, so the
   float and the bf16-pair column transposes share it. */
SPATTN_ALWAYS_INLINE void words_transpose4x4(const void *base, ptrdiff_t row_bytes, size_t row0,
                                             size_t rows, size_t we, uint32x4_t col[4])
{
    uint32x4_t r[4];
    for (size_t i = 0; i < 4; i++) {
        if (row0 + i >= rows) {
            r[i] = vdupq_n_u32(0);
            continue;
        }
        const uint8_t *src = (const uint8_t *)base + (ptrdiff_t)(row0 + i) * row_bytes;
        if (we == 4) {
            r[i] = vreinterpretq_u32_u8(vld1q_u8(src));
        } else {
            uint32_t buf[4] = {0, 0, 0, 0};
            memcpy(buf, src, 4 * we);
            r[i] = vld1q_u32(buf);
        }
    }
    const uint32x4_t t01 = vtrn1q_u32(r[0], r[1]), u01 = vtrn2q_u32(r[0], r[1]);
    const uint32x4_t t23 = vtrn1q_u32(r[2], r[3]), u23 = vtrn2q_u32(r[2], r[3]);
    col[0] =
        vreinterpretq_u32_u64(vtrn1q_u64(vreinterpretq_u64_u32(t01), vreinterpretq_u64_u32(t23)));
    col[1] =
        vreinterpretq_u32_u64(vtrn1q_u64(vreinterpretq_u64_u32(u01), vreinterpretq_u64_u32(u23)));
    col[2] =
        vreinterpretq_u32_u64(vtrn2q_u64(vreinterpretq_u64_u32(t01), vreinterpretq_u64_u32(t23)));
    col[3] =
        vreinterpretq_u32_u64(vtrn2q_u64(vreinterpretq_u64_u32(u01), vreinterpretq_u64_u32(u23)));
}

/* Rows 0..rows-1 (ts floats apart) of w <= 16 consecutive columns, transposed and scaled:
   out[16 d + r] = p[r ts + d] * c for d < w (lanes from `rows` on hold 0 * c; nothing past
   the rows' w elements is read, nothing past out[16 w] written), in 4x4 blocks. */
SPATTN_ALWAYS_INLINE void col_transpose_rows(const float *p, ptrdiff_t ts, size_t rows, size_t w,
                                             col_t c, float *out)
{
    const float32x4_t cq[4] = {c.a, c.b, c.c, c.d};
    for (size_t e = 0; e < w; e += 4) {
        const size_t we = w - e < 4 ? w - e : 4;
        for (size_t g = 0; g < 4; g++) {
            uint32x4_t col[4];
            words_transpose4x4(p + e, ts * (ptrdiff_t)sizeof(float), 4 * g, rows, we, col);
            for (size_t k = 0; k < we; k++)
                vst1q_f32(out + 16 * (e + k) + 4 * g,
                          vmulq_f32(vreinterpretq_f32_u32(col[k]), cq[g]));
        }
    }
}

/* Column masks of a PARTIAL tile: cm[j] bit r = bit j of rows[r]. The rows' 32-bit halves
   sit four to a register; per bit j a test turns each register into lane masks, which keep
   their lane's weight 1 << r, and one add across the lanes collects the 16 rows. */
static inline void col_masks_from_rows(const uint64_t rows[16], uint32_t cm[64])
{
    uint32_t h[2][16];
    for (int r = 0; r < 16; r++) {
        h[0][r] = (uint32_t)rows[r];
        h[1][r] = (uint32_t)(rows[r] >> 32);
    }
    const uint32x4_t w0 = {1u << 0, 1u << 1, 1u << 2, 1u << 3};
    const uint32x4_t w1 = vshlq_n_u32(w0, 4), w2 = vshlq_n_u32(w0, 8), w3 = vshlq_n_u32(w0, 12);
    for (int half = 0; half < 2; half++) {
        const uint32x4_t v0 = vld1q_u32(h[half]), v1 = vld1q_u32(h[half] + 4);
        const uint32x4_t v2 = vld1q_u32(h[half] + 8), v3 = vld1q_u32(h[half] + 12);
        for (int j = 0; j < 32; j++) {
            const uint32x4_t bit = vdupq_n_u32(1u << j);
            uint32x4_t s = vandq_u32(vtstq_u32(v0, bit), w0);
            s = vorrq_u32(s, vandq_u32(vtstq_u32(v1, bit), w1));
            s = vorrq_u32(s, vandq_u32(vtstq_u32(v2, bit), w2));
            s = vorrq_u32(s, vandq_u32(vtstq_u32(v3, bit), w3));
            cm[half * 32 + j] = vaddvq_u32(s);
        }
    }
}

/* ---- vec_t: 4 lanes along dim or keys ---------------------------------------------------- */
typedef float32x4_t vec_t;
typedef uint32x4_t vmask_t;
#define VL 4

SPATTN_ALWAYS_INLINE vec_t vec_zero(void)
{
    return vdupq_n_f32(0.0f);
}
SPATTN_ALWAYS_INLINE vec_t vec_set1(float x)
{
    return vdupq_n_f32(x);
}
SPATTN_ALWAYS_INLINE vec_t vec_loadu(const float *p)
{
    return vld1q_f32(p);
}
SPATTN_ALWAYS_INLINE void vec_storeu(float *p, vec_t a)
{
    vst1q_f32(p, a);
}
SPATTN_ALWAYS_INLINE vmask_t vmask_bits(uint64_t bits)
{
    const uint32x4_t l = {1, 2, 4, 8};
    return vtstq_u32(vdupq_n_u32((uint32_t)(bits & 0xf)), l);
}
SPATTN_ALWAYS_INLINE vmask_t vmask_first(size_t n)
{
    const uint32x4_t iota = {0, 1, 2, 3};
    return vcltq_u32(iota, vdupq_n_u32((uint32_t)(n < 4 ? n : 4)));
}
/* Lanes outside m are not read (no fault, no sanitizer report) and come out 0. A full mask
   (every dim but a row's last vector) is one plain load; otherwise each set lane is loaded
   alone. */
SPATTN_ALWAYS_INLINE vec_t vec_loadu_m(const float *p, vmask_t m)
{
    if (__builtin_expect(vminvq_u32(m) != 0, 1))
        return vld1q_f32(p);
    vec_t r = vdupq_n_f32(0.0f);
    if (vgetq_lane_u32(m, 0))
        r = vld1q_lane_f32(p, r, 0);
    if (vgetq_lane_u32(m, 1))
        r = vld1q_lane_f32(p + 1, r, 1);
    if (vgetq_lane_u32(m, 2))
        r = vld1q_lane_f32(p + 2, r, 2);
    if (vgetq_lane_u32(m, 3))
        r = vld1q_lane_f32(p + 3, r, 3);
    return r;
}
/* Lanes outside m are not written. */
SPATTN_ALWAYS_INLINE void vec_storeu_m(float *p, vmask_t m, vec_t a)
{
    if (__builtin_expect(vminvq_u32(m) != 0, 1)) {
        vst1q_f32(p, a);
        return;
    }
    if (vgetq_lane_u32(m, 0))
        vst1q_lane_f32(p, a, 0);
    if (vgetq_lane_u32(m, 1))
        vst1q_lane_f32(p + 1, a, 1);
    if (vgetq_lane_u32(m, 2))
        vst1q_lane_f32(p + 2, a, 2);
    if (vgetq_lane_u32(m, 3))
        vst1q_lane_f32(p + 3, a, 3);
}

#include "arm/vec_neon_half.h"

SPATTN_ALWAYS_INLINE vec_t vec_add(vec_t a, vec_t b)
{
    return vaddq_f32(a, b);
}
SPATTN_ALWAYS_INLINE vec_t vec_mul(vec_t a, vec_t b)
{
    return vmulq_f32(a, b);
}
SPATTN_ALWAYS_INLINE vec_t vec_max(vec_t a, vec_t b)
{
    return vmaxq_f32(a, b);
}
/* a * b + c; c is FMLA's destination, so an accumulator in c costs no register copy. */
SPATTN_ALWAYS_INLINE vec_t vec_fma(vec_t a, vec_t b, vec_t c)
{
    return vfmaq_f32(c, a, b);
}
SPATTN_ALWAYS_INLINE vec_t vec_select(vmask_t m, vec_t a, vec_t b)
{
    return vbslq_f32(m, a, b);
}
/* c + a * b where m is set, c elsewhere (the product is computed and dropped: a NaN in a or
   b cannot reach lanes outside m). */
SPATTN_ALWAYS_INLINE vec_t vec_fma_m(vec_t a, vec_t b, vec_t c, vmask_t m)
{
    return vbslq_f32(m, vfmaq_f32(c, a, b), c);
}
/* m[r] = every lane when bit r of bits is set, else none (r < 16). */
SPATTN_ALWAYS_INLINE void vmask_expand16(vmask_t m[16], uint32_t bits)
{
    for (int r = 0; r < 16; r++)
        m[r] = vdupq_n_u32(0u - ((bits >> r) & 1u));
}
SPATTN_ALWAYS_INLINE vmask_t vmask_load(const vmask_t *p)
{
    return *p;
}
SPATTN_ALWAYS_INLINE vec_t vec_exp2(vec_t x)
{
    return spattn__exp2_q(x);
}
SPATTN_ALWAYS_INLINE float vec_hsum(vec_t a)
{
    return vaddvq_f32(a);
}
SPATTN_ALWAYS_INLINE float vec_hmax(vec_t a)
{
    return vmaxvq_f32(a);
}
SPATTN_ALWAYS_INLINE float vec_lane0(vec_t a)
{
    return vgetq_lane_f32(a, 0);
}
/* Lane i = the sum of a[i]'s lanes: two levels of pairwise adds. */
SPATTN_ALWAYS_INLINE vec_t vec_hsums(const vec_t a[4])
{
    return vpaddq_f32(vpaddq_f32(a[0], a[1]), vpaddq_f32(a[2], a[3]));
}
/* The 16 / VL results of vec_hsums as one column. */
SPATTN_ALWAYS_INLINE col_t col_from_vecs(const vec_t *v)
{
    return col_mk(v[0], v[1], v[2], v[3]);
}
/* The same for 4 vectors as a quarter column (VL is 4: vec_hsums itself). */
typedef float32x4_t q4_t;
SPATTN_ALWAYS_INLINE q4_t q4_zero(void)
{
    return vdupq_n_f32(0.0f);
}
SPATTN_ALWAYS_INLINE q4_t vec_hsums4(const vec_t a[4])
{
    return vec_hsums(a);
}
/* Lanes 0-3 from x, 4-7 from y, the rest 0. */
SPATTN_ALWAYS_INLINE col_t col_from_quarters(q4_t x, q4_t y)
{
    return col_mk(x, y, vdupq_n_f32(0.0f), vdupq_n_f32(0.0f));
}
/* Columns of 4 rows, 4 keys to a col_t (the compact scores of softmax_online.h). */
SPATTN_ALWAYS_INLINE void col_store_q4(float *p, col_t a)
{
    vst1q_f32(p, a.a);
}
SPATTN_ALWAYS_INLINE col_t col_spread_q4(col_t a)
{
    return col_mk(a.a, a.a, a.a, a.a);
}
SPATTN_ALWAYS_INLINE col_t col_sum_q4(col_t a)
{
    const float32x4_t s = vaddq_f32(vaddq_f32(a.a, a.c), vaddq_f32(a.b, a.d));
    return col_mk(s, s, s, s);
}
/* The same for columns of 5-8 rows, 2 keys to a col_t. */
SPATTN_ALWAYS_INLINE void col_store_h8(float *p, col_t a)
{
    vst1q_f32(p, a.a);
    vst1q_f32(p + 4, a.b);
}
SPATTN_ALWAYS_INLINE col_t col_spread_h8(col_t a)
{
    return col_mk(a.a, a.b, a.a, a.b);
}
SPATTN_ALWAYS_INLINE col_t col_sum_h8(col_t a)
{
    const float32x4_t s = vaddq_f32(a.a, a.c), t = vaddq_f32(a.b, a.d);
    return col_mk(s, t, s, t);
}

/* A read of the line at p into L1 (PRFM PLDL1KEEP). */
SPATTN_ALWAYS_INLINE void vec_prefetch_l1(const void *p)
{
    __builtin_prefetch(p, 0, 3);
}

/* A read of the line at p into L2 (PRFM PLDL2KEEP). */
SPATTN_ALWAYS_INLINE void vec_prefetch_l2(const void *p)
{
    __builtin_prefetch(p, 0, 2);
}

/* Peak probe: 16 chains cover a 4-cycle FMA latency on cores with four 128-bit FMA pipes
   (Neoverse V1/V2); two-pipe cores (N1) need only 8. */
#define PROBE_CHAINS 16

#endif
