/* Small Advanced SIMD helpers shared by the NEON kernels: SLEEF math, edge loads and stores
   that never touch memory past the last element, and mask bits turned into lane masks. */
#ifndef SPATTN_NEON_MATH_H
#define SPATTN_NEON_MATH_H

#if !defined(__aarch64__) || !defined(__ARM_NEON)
#error "neon_math.h needs an AArch64 target with Advanced SIMD"
#endif

#include <arm_neon.h>
#include <math.h>
#include <sleef.h>
#include <stddef.h>
#include <stdint.h>

#define SPATTN_NEON_INLINE static inline __attribute__((always_inline))

SPATTN_NEON_INLINE float32x4_t spattn_neon_exp(float32x4_t x)
{
    /* 1.0 ULP and exp(-inf) == 0, which the masked lanes rely on. */
    return Sleef_expf4_u10advsimd(x);
}

/* cap * tanh(s / cap); inv_cap = 1 / cap. */
SPATTN_NEON_INLINE float32x4_t spattn_neon_softcap(float32x4_t s, float32x4_t cap,
                                                   float32x4_t inv_cap)
{
    return vmulq_f32(cap, Sleef_tanhf4_u10advsimd(vmulq_f32(s, inv_cap)));
}

SPATTN_NEON_INLINE float32x4_t spattn_neon_neg_inf(void)
{
    return vdupq_n_f32(-INFINITY);
}

/* The first n (0..4) floats at p, zeros in the other lanes; reads exactly n floats. */
SPATTN_NEON_INLINE float32x4_t spattn_neon_load_n(const float *p, size_t n)
{
    float32x4_t v = vdupq_n_f32(0.0f);
    switch (n) {
    case 0:
        return v;
    case 1:
        return vld1q_lane_f32(p, v, 0);
    case 2:
        return vcombine_f32(vld1_f32(p), vdup_n_f32(0.0f));
    case 3:
        return vld1q_lane_f32(p + 2, vcombine_f32(vld1_f32(p), vdup_n_f32(0.0f)), 2);
    default:
        return vld1q_f32(p);
    }
}

/* Stores the first n (0..4) lanes of v at p; writes exactly n floats. */
SPATTN_NEON_INLINE void spattn_neon_store_n(float *p, float32x4_t v, size_t n)
{
    switch (n) {
    case 0:
        return;
    case 1:
        vst1q_lane_f32(p, v, 0);
        return;
    case 2:
        vst1_f32(p, vget_low_f32(v));
        return;
    case 3:
        vst1_f32(p, vget_low_f32(v));
        vst1q_lane_f32(p + 2, v, 2);
        return;
    default:
        vst1q_f32(p, v);
    }
}

/* All-ones in lane t where bit t of nib (0..15) is set. */
SPATTN_NEON_INLINE uint32x4_t spattn_neon_nibble_mask(uint64_t nib)
{
    static const uint32_t lane_bit[4] = {1, 2, 4, 8};
    return vtstq_u32(vdupq_n_u32((uint32_t)nib), vld1q_u32(lane_bit));
}

/* {sum(a), sum(b), sum(c), sum(d)}: four dot-product accumulators reduced in one vector. */
SPATTN_NEON_INLINE float32x4_t spattn_neon_hsum4(float32x4_t a, float32x4_t b, float32x4_t c,
                                                 float32x4_t d)
{
    return vpaddq_f32(vpaddq_f32(a, b), vpaddq_f32(c, d));
}

/* The base the exponent is taken against: the running max, or 0 while it is still -inf
   (nothing allowed yet), so that exp(-inf - base) is 0 instead of exp(NaN). */
SPATTN_NEON_INLINE float32x4_t spattn_neon_exp_base(float32x4_t m)
{
    return vbslq_f32(vceqq_f32(m, spattn_neon_neg_inf()), vdupq_n_f32(0.0f), m);
}

#endif
