/*
 * The ALiBi slopes of Press et al., "Train Short, Test Long" (ICLR 2022): for 2^m heads the
 * geometric sequence 2^(-8k / 2^m), k = 1 .. 2^m; for other head counts the slopes of the
 * power of two below, then every other slope (k = 1, 3, 5, ...) of the power of two above.
 */
#include <math.h>

#include "spattn.h"

/* 2^(-8k / 2^m): the whole part of the exponent by ldexp, so that every slope that is a power
   of two comes out exactly, and only the fraction goes through exp2. k < 2^(m+1) keeps the
   whole part at most 16. */
static float slope(size_t k, unsigned m)
{
    if (m <= 3)
        return ldexpf(1.0f, -(int)(k << (3 - m)));
    unsigned s = m - 3;
    size_t den = (size_t)1 << s;
    size_t whole = k >> s, frac = k & (den - 1);
    return (float)ldexp(exp2(-(double)frac / (double)den), -(int)whole);
}

spattn_status spattn_alibi_slopes(size_t heads, float *slopes)
{
    if (!slopes)
        return SPATTN_E_NULL;
    if (heads == 0)
        return SPATTN_E_SHAPE;
    unsigned m = 0;
    while (heads >> m > 1)
        m++;
    size_t p = (size_t)1 << m; /* the largest power of two <= heads */
    for (size_t k = 1; k <= p; k++)
        slopes[k - 1] = slope(k, m);
    for (size_t x = 0; x < heads - p; x++)
        slopes[p + x] = slope(2 * x + 1, m + 1);
    return SPATTN_OK;
}
