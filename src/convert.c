/* The public element conversions (spattn.h): one value at a time through convert.h, which
   the library's own row stores share, so users and kernels round alike. */
#include "convert.h"

void spattn_f32_to_bf16(const float *x, uint16_t *y, size_t n)
{
    for (size_t i = 0; i < n; i++)
        y[i] = spattn__f32_to_bf16_1(x[i]);
}

void spattn_bf16_to_f32(const uint16_t *x, float *y, size_t n)
{
    for (size_t i = 0; i < n; i++)
        y[i] = spattn__bf16_to_f32_1(x[i]);
}

void spattn_f32_to_f16(const float *x, uint16_t *y, size_t n)
{
    for (size_t i = 0; i < n; i++)
        y[i] = spattn__f32_to_f16_1(x[i]);
}

void spattn_f16_to_f32(const uint16_t *x, float *y, size_t n)
{
    for (size_t i = 0; i < n; i++)
        y[i] = spattn__f16_to_f32_1(x[i]);
}
