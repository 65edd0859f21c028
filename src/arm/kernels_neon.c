/* The NEON kernel table: scratch sizing, the FMA peak probe, and the entry in kernels.inc. */
#include "arm/neon_kernels.h"

#include "arm/neon_math.h"

spattn_neon_scratch spattn__neon_scratch_split(float *scratch, size_t dim_qk, size_t dim_v)
{
    spattn_neon_scratch s;
    s.dq4 = spattn__neon_pad4(dim_qk);
    s.dv4 = spattn__neon_pad4(dim_v);
    s.qs = scratch;
    s.o = s.qs + SPATTN_TQ * s.dq4;
    s.m = s.o + SPATTN_TQ * s.dv4;
    s.l = s.m + SPATTN_TQ;
    s.p = s.l + SPATTN_TQ;
    s.zero = s.p + SPATTN_TK * SPATTN_NEON_RB;
    return s;
}

size_t spattn__neon_scratch_floats(size_t dim_qk, size_t dim_v, size_t gather_rows,
                                  size_t gather_keys)
{
    (void)gather_rows; /* the gather path works a row at a time */
    (void)gather_keys;
    size_t dq4 = spattn__neon_pad4(dim_qk), dv4 = spattn__neon_pad4(dim_v);
    return SPATTN_TQ * dq4 + SPATTN_TQ * dv4 + 2 * SPATTN_TQ + SPATTN_TK * SPATTN_NEON_RB +
           spattn__neon_pad16(dq4);
}

/* 16 chains: enough to cover a 4-cycle FMA latency on cores with four 128-bit FMA pipes
   (Neoverse V1/V2); two-pipe cores (N1) need only 8. */
#define PROBE_CHAINS(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) \
    X(8) X(9) X(10) X(11) X(12) X(13) X(14) X(15)

float spattn__neon_fma_probe(size_t iters, double *flops)
{
    /* acc += a * b: the accumulator is FMLA's destination, so each step is one instruction
       (acc = b + acc * a would need a register copy per step). It grows by 1e-6 per step and
       stays far from overflow however long it runs. */
    const float32x4_t a = vdupq_n_f32(1e-3f), b = vdupq_n_f32(1e-3f);
#define DECL(i) float32x4_t acc##i = vdupq_n_f32((float)(i));
    PROBE_CHAINS(DECL)
#undef DECL
    for (size_t it = 0; it < iters; it++) {
#define STEP(i) acc##i = vfmaq_f32(acc##i, a, b);
        PROBE_CHAINS(STEP)
#undef STEP
    }
    float32x4_t sum = vdupq_n_f32(0.0f);
#define ADD(i) sum = vaddq_f32(sum, acc##i);
    PROBE_CHAINS(ADD)
#undef ADD
    if (flops)
        *flops = (double)iters * 16.0 * 4.0 * 2.0;
    return vaddvq_f32(sum);
}

const spattn_kernel_table spattn_kernels_neon = {
    .isa = SPATTN_ISA_NEON,
    .name = "neon",
    /* Not measured on Arm hardware (qemu timings do not model it; docs/aarch64.md). Per
       allowed pair at fill f of the visited tiles, the tile path does about (1/f + 1) * dim/4
       vector FMAs (scores for every slot, P V only for allowed pairs), the gather path
       2 * dim/4 FMAs and as many loads: by count they break even near f = 0.5, and the tile
       path's reuse of each K/V row from L1 across a block's rows moves the real crossover
       lower. A sparse tile sent down the tile path costs up to 1/f times too much, a denser
       one sent down the gather path well under 2x, so the switch errs high. */
    .gather_below = 0.3,
    .scratch_floats = spattn__neon_scratch_floats,
    .attn_tiles = spattn__neon_attn_tiles,
    .attn_gather = spattn__neon_attn_gather,
    .softmax_tile = spattn__neon_softmax_tile,
    .fma_probe = spattn__neon_fma_probe,
};
