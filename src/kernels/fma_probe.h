/*
 * The benchmark's FMA peak probe in this ISA's widest vectors.
 */
#ifndef SPATTN_KERNELS_FMA_PROBE_H
#define SPATTN_KERNELS_FMA_PROBE_H

#include "kernels/common.h"

/* PROBE_CHAINS independent FMA chains in vec_t registers (the array is fully unrolled, so it
   lives in registers: the loop is FMAs and a counter, nothing else). Each chain is
   a += x * y, the accumulator as the addend: that is the FMA's destination on every ISA
   (vfmadd231ps, fmla), so no register copies join the FMAs. a grows by 1e-6 per step. */
static float tpl_fma_probe(size_t iters, double *flops)
{
    vec_t a[PROBE_CHAINS];
#pragma GCC unroll 32
    for (int c = 0; c < PROBE_CHAINS; c++)
        a[c] = vec_set1(1.0f + 0.01f * (float)c);
    const vec_t x = vec_set1(1e-3f), y = vec_set1(1e-3f);
    for (size_t it = 0; it < iters; it++) {
#pragma GCC unroll 32
        for (int c = 0; c < PROBE_CHAINS; c++)
            a[c] = vec_fma(x, y, a[c]);
    }
    vec_t s = vec_zero();
#pragma GCC unroll 32
    for (int c = 0; c < PROBE_CHAINS; c++)
        s = vec_add(s, a[c]);
    *flops = 2.0 * VL * PROBE_CHAINS * (double)iters;
    return vec_hsum(s);
}

#endif
