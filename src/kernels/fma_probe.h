/*
 * The benchmark's peak probes: the float FMA's in this ISA's widest vectors, and the frame
 * another tier's probe of its own dot product is written in (kernels/bf16_tier.h).
 */
#ifndef SPATTN_KERNELS_FMA_PROBE_H
#define SPATTN_KERNELS_FMA_PROBE_H

#include "kernels/common.h"

/* static float name(size_t iters, double *flops): `chains` independent chains in T##_t
   registers (T is vec or col), each a = STEP(x, a) per round from a = 1 + 0.01 * chain, x
   the value `x0`; a round of one chain is step_flops flops. The array is fully unrolled, so it
   lives in registers: the loop is the steps and a counter, nothing else. The accumulator is
   the last operand of STEP, which is the destination of the FMA (vfmadd231ps, fmla) and of
   the dot products, so no register copies join the steps. Returns the sum of the lanes, so
   that the chains are not thrown away. */
#define SPATTN_PEAK_PROBE(name, T, chains, x0, STEP, step_flops)                                   \
    static float name(size_t iters, double *flops)                                                 \
    {                                                                                              \
        T##_t a[chains];                                                                           \
        _Pragma("GCC unroll 32") for (int c = 0; c < (chains); c++) a[c] =                         \
            T##_set1(1.0f + 0.01f * (float)c);                                                     \
        const T##_t x = x0;                                                                        \
        for (size_t it = 0; it < iters; it++) {                                                    \
            _Pragma("GCC unroll 32") for (int c = 0; c < (chains); c++) a[c] = STEP(x, a[c]);      \
        }                                                                                          \
        T##_t s = T##_zero();                                                                      \
        _Pragma("GCC unroll 32") for (int c = 0; c < (chains); c++) s = T##_add(s, a[c]);          \
        *flops = (step_flops) * (chains) * (double)iters;                                          \
        return T##_hsum(s);                                                                        \
    }

/* a += x * x: two flops per lane; a grows by 1e-6 per step. */
#define FMA_PROBE_STEP(x, acc) vec_fma(x, x, acc)
SPATTN_PEAK_PROBE(tpl_fma_probe, vec, PROBE_CHAINS, vec_set1(1e-3f), FMA_PROBE_STEP, 2.0 * VL)

#endif
