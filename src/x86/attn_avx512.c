/* AVX-512 (F/BW/DQ/VL) + FMA kernels: the shared template over zmm columns. */
#if !defined(__AVX512F__) || !defined(__AVX512BW__) || !defined(__AVX512DQ__) ||                   \
    !defined(__AVX512VL__) || !defined(__FMA__)
#error "attn_avx512.c must be compiled with -mavx512f -mavx512bw -mavx512dq -mavx512vl -mfma"
#endif

#include "x86/vec_avx512.h"

#include "x86/attn_x86_tpl.h"

const spattn_kernel_table spattn_kernels_avx512 = {
    .isa = SPATTN_ISA_AVX512,
    .name = "avx512",
    /* Measured crossover of the two paths (docs/kernels-x86.md). */
    .gather_below = 0.45,
    .scratch_floats = x86_scratch,
    .attn_tiles = x86_tiles,
    .attn_tiles2 = x86_tiles2,
    .attn_gather = x86_gather,
    .softmax_tile = x86_softmax,
    .fma_probe = x86_fma_probe,
};
