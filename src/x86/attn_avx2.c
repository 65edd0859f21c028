/* AVX2 + FMA kernels: the shared template over pairs of ymm columns. */
#if !defined(__AVX2__) || !defined(__FMA__)
#error "attn_avx2.c must be compiled with -mavx2 -mfma"
#endif

#include "x86/vec_avx2.h"

#include "x86/attn_x86_tpl.h"

const spattn_kernel_table spattn_kernels_avx2 = {
    .isa = SPATTN_ISA_AVX2,
    .name = "avx2",
    /* Measured crossover of the two paths (docs/kernels-x86.md). */
    .gather_below = 0.6,
    .scratch_floats = x86_scratch,
    .attn_tiles = x86_tiles,
    .attn_gather = x86_gather,
    .softmax_tile = x86_softmax,
    .fma_probe = x86_fma_probe,
};
