/* The element types of spattn_dtype one value at a time, for the public conversions
   (convert.c), the reference, spattn_probs, the scalar tier and the row stores of the SIMD
   kernels (which widen K and V in registers themselves; see src/kernels/kv_load.h). */
#ifndef SPATTN_CONVERT_H
#define SPATTN_CONVERT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "spattn.h"

static inline uint32_t spattn__f32_bits(float x)
{
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    return u;
}

static inline float spattn__f32_from_bits(uint32_t u)
{
    float x;
    memcpy(&x, &u, sizeof x);
    return x;
}

/* Bytes of one element (0 for a value outside the enum). */
static inline size_t spattn__dtype_size(spattn_dtype t)
{
    switch (t) {
    case SPATTN_DTYPE_F32:
        return 4;
    case SPATTN_DTYPE_BF16:
    case SPATTN_DTYPE_F16:
        return 2;
    }
    return 0;
}

static inline float spattn__bf16_to_f32_1(uint16_t h)
{
    return spattn__f32_from_bits((uint32_t)h << 16);
}

/* Ties to even by adding 0x7fff plus the kept LSB; the carry may reach the exponent, which
   is right (up to Inf for the largest floats). NaN would not survive the add: it is kept
   quiet by hand. */
static inline uint16_t spattn__f32_to_bf16_1(float x)
{
    uint32_t u = spattn__f32_bits(x);
    if ((u & 0x7fffffffu) > 0x7f800000u)
        return (uint16_t)((u >> 16) | 0x0040u);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

static inline float spattn__f16_to_f32_1(uint16_t h)
{
    const uint32_t sign = (uint32_t)(h & 0x8000u) << 16, e = (h >> 10) & 0x1fu, m = h & 0x3ffu;
    if (e == 0x1f)
        return spattn__f32_from_bits(sign | 0x7f800000u | (m << 13));
    if (e == 0) {
        /* Zero or subnormal: m * 2^-24, exact in float. */
        const float v = (float)m * 0x1p-24f;
        return sign ? -v : v;
    }
    return spattn__f32_from_bits(sign | ((e + 112u) << 23) | (m << 13));
}

/* Normal results round at bit 13 of the float (ties to even, the carry may bump the
   exponent); from 65520 (half way between the largest f16, 65504, and 2^16, tie to the even
   side) on the result is Inf; below 2^-14 the float's 24-bit significand is shifted into the
   subnormal range with the same rounding. */
static inline uint16_t spattn__f32_to_f16_1(float x)
{
    const uint32_t u = spattn__f32_bits(x), a = u & 0x7fffffffu;
    const uint16_t sign = (uint16_t)((u >> 16) & 0x8000u);
    if (a > 0x7f800000u)
        return (uint16_t)(sign | 0x7e00u | ((a >> 13) & 0x3ffu));
    if (a >= 0x477ff000u)
        return (uint16_t)(sign | 0x7c00u);
    if (a >= 0x38800000u) {
        const uint32_t r = a + 0x0fffu + ((a >> 13) & 1u) - 0x38000000u;
        return (uint16_t)(sign | (r >> 13));
    }
    if (a <= 0x33000000u) /* at most 2^-25, half the smallest subnormal: ties to 0 */
        return sign;
    const uint32_t e = a >> 23, m = (a & 0x7fffffu) | 0x800000u, s = 126u - e; /* 14..24 */
    const uint32_t rem = m & ((1u << s) - 1u), half = 1u << (s - 1u);
    uint32_t q = m >> s;
    if (rem > half || (rem == half && (q & 1u)))
        q++;
    return (uint16_t)(sign | q);
}

/* Element i of a tensor of type t, as a float (exact). */
static inline float spattn__load_f32(const void *p, ptrdiff_t i, spattn_dtype t)
{
    switch (t) {
    case SPATTN_DTYPE_BF16:
        return spattn__bf16_to_f32_1(((const uint16_t *)p)[i]);
    case SPATTN_DTYPE_F16:
        return spattn__f16_to_f32_1(((const uint16_t *)p)[i]);
    default:
        return ((const float *)p)[i];
    }
}

/* n floats from x into a row of type t (rounded to nearest even). */
static inline void spattn__store_row(void *dst, spattn_dtype t, const float *x, size_t n)
{
    if (t == SPATTN_DTYPE_BF16) {
        uint16_t *y = dst;
        for (size_t i = 0; i < n; i++)
            y[i] = spattn__f32_to_bf16_1(x[i]);
    } else if (t == SPATTN_DTYPE_F16) {
        uint16_t *y = dst;
        for (size_t i = 0; i < n; i++)
            y[i] = spattn__f32_to_f16_1(x[i]);
    } else {
        memcpy(dst, x, n * sizeof(float));
    }
}

/* n elements of a row of type t into floats (exact). */
static inline void spattn__load_row(const void *src, spattn_dtype t, float *y, size_t n)
{
    if (t == SPATTN_DTYPE_BF16) {
        const uint16_t *x = src;
        for (size_t i = 0; i < n; i++)
            y[i] = spattn__bf16_to_f32_1(x[i]);
    } else if (t == SPATTN_DTYPE_F16) {
        const uint16_t *x = src;
        for (size_t i = 0; i < n; i++)
            y[i] = spattn__f16_to_f32_1(x[i]);
    } else {
        memcpy(y, src, n * sizeof(float));
    }
}

#endif
