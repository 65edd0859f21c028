/*
 * The NEON vocabulary's 16-bit element operations (src/kernels/vec.h): bf16 and f16 widened
 * on load, narrowed on store. Part of arm/vec_neon.h, which includes it once vec_t and
 * vmask_t exist; not included on its own.
 */
#ifndef SPATTN_VEC_NEON_HALF_H
#define SPATTN_VEC_NEON_HALF_H

#ifndef SPATTN_VEC_NEON_H
#error "vec_neon_half.h is part of arm/vec_neon.h"
#endif

/* ---- 16-bit inputs, widened on load ----------------------------------------------------- */
/* bf16 is the high half of a float: widening is a shift (ushll). */
SPATTN_ALWAYS_INLINE vec_t vec_loadu_bf16(const uint16_t *p)
{
    return vreinterpretq_f32_u32(vshll_n_u16(vld1_u16(p), 16));
}
SPATTN_ALWAYS_INLINE vec_t vec_loadu_f16(const uint16_t *p)
{
    return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(p)));
}
/* The lanes of m, lane by lane unless m is full; the others 0 and not read. */
SPATTN_ALWAYS_INLINE uint16x4_t vec_lanes16_m(const uint16_t *p, vmask_t m)
{
    if (__builtin_expect(vminvq_u32(m) != 0, 1))
        return vld1_u16(p);
    uint16x4_t r = vdup_n_u16(0);
    if (vgetq_lane_u32(m, 0))
        r = vld1_lane_u16(p, r, 0);
    if (vgetq_lane_u32(m, 1))
        r = vld1_lane_u16(p + 1, r, 1);
    if (vgetq_lane_u32(m, 2))
        r = vld1_lane_u16(p + 2, r, 2);
    if (vgetq_lane_u32(m, 3))
        r = vld1_lane_u16(p + 3, r, 3);
    return r;
}
SPATTN_ALWAYS_INLINE vec_t vec_loadu_bf16_m(const uint16_t *p, vmask_t m)
{
    return vreinterpretq_f32_u32(vshll_n_u16(vec_lanes16_m(p, m), 16));
}
SPATTN_ALWAYS_INLINE vec_t vec_loadu_f16_m(const uint16_t *p, vmask_t m)
{
    return vcvt_f32_f16(vreinterpret_f16_u16(vec_lanes16_m(p, m)));
}

/* ---- 16-bit outputs, narrowed on store -------------------------------------------------- */
/* Both round to nearest even and give the bits of spattn__store_row (convert.h) for every
   input: bf16 by integer rounding (a NaN keeps its sign and top payload bits and is made
   quiet), f16 by fcvtn under the default FPCR (nearest even, no flush to zero for half
   results, NaN payloads kept). Masked forms write lane by lane unless m is full. */
SPATTN_ALWAYS_INLINE uint16x4_t vec_bf16_bits(vec_t x)
{
    const uint32x4_t u = vreinterpretq_u32_f32(x);
    uint32x4_t r =
        vaddq_u32(u, vaddq_u32(vdupq_n_u32(0x7fff), vandq_u32(vshrq_n_u32(u, 16), vdupq_n_u32(1))));
    r = vbslq_u32(vceqq_f32(x, x), r, vorrq_u32(u, vdupq_n_u32(0x00400000)));
    return vshrn_n_u32(r, 16);
}
SPATTN_ALWAYS_INLINE void vec_lanes16_store_m(uint16_t *p, vmask_t m, uint16x4_t h)
{
    if (__builtin_expect(vminvq_u32(m) != 0, 1)) {
        vst1_u16(p, h);
        return;
    }
    if (vgetq_lane_u32(m, 0))
        vst1_lane_u16(p, h, 0);
    if (vgetq_lane_u32(m, 1))
        vst1_lane_u16(p + 1, h, 1);
    if (vgetq_lane_u32(m, 2))
        vst1_lane_u16(p + 2, h, 2);
    if (vgetq_lane_u32(m, 3))
        vst1_lane_u16(p + 3, h, 3);
}
SPATTN_ALWAYS_INLINE void vec_storeu_bf16(uint16_t *p, vec_t x)
{
    vst1_u16(p, vec_bf16_bits(x));
}
SPATTN_ALWAYS_INLINE void vec_storeu_bf16_m(uint16_t *p, vmask_t m, vec_t x)
{
    vec_lanes16_store_m(p, m, vec_bf16_bits(x));
}
SPATTN_ALWAYS_INLINE void vec_storeu_f16(uint16_t *p, vec_t x)
{
    vst1_u16(p, vreinterpret_u16_f16(vcvt_f16_f32(x)));
}
SPATTN_ALWAYS_INLINE void vec_storeu_f16_m(uint16_t *p, vmask_t m, vec_t x)
{
    vec_lanes16_store_m(p, m, vreinterpret_u16_f16(vcvt_f16_f32(x)));
}

#endif
