/* AArch64 Advanced SIMD kernels: the kernel template over columns of four q registers. */
#if !defined(__aarch64__) || !defined(__ARM_NEON)
#error "attn_neon.c must be compiled for AArch64 with Advanced SIMD"
#endif

#include "arm/vec_neon.h"

#include "kernels/template.h"

/* gather_below is not measured on Arm hardware (qemu timings do not model it;
   docs/aarch64.md). Per allowed pair at fill f of the visited tiles, the tile path does about
   (1/f + 1) * dim/4 vector FMAs (scores for every slot, P V only for allowed pairs), the
   gather path 2 * dim/4 FMAs and as many loads: by count they break even near f = 0.5, and
   the tile path's reuse of each K/V row from L1 across a block's rows moves the real
   crossover lower. A sparse tile sent down the tile path costs up to 1/f times too much, a
   denser one sent down the gather path well under 2x, so the switch errs high. gather_shared
   (the discount for keys rows share with the row above) is 0 for the same reason: the L1 reuse
   it stands for was measured on x86 only. */
SPATTN_TEMPLATE_TABLE(spattn_kernels_neon, SPATTN_ISA_NEON, "neon", 0.3, 0.0);
