/* The NEON kernel table's entries, one file each, and the scratch layout they share. */
#ifndef SPATTN_NEON_KERNELS_H
#define SPATTN_NEON_KERNELS_H

#include <stddef.h>

#include "kernels/kernel.h"

/* Rows of one register block: the tile path keeps scores and probabilities with these rows
   in the lanes of one vector, so every per-row softmax step is one vector op. */
#define SPATTN_NEON_RB 4

/* Dims padded to whole vectors (the scratch copies are zero-filled up to there). */
static inline size_t spattn__neon_pad4(size_t n)
{
    return (n + 3) & ~(size_t)3;
}

static inline size_t spattn__neon_pad16(size_t n)
{
    return (n + 15) & ~(size_t)15;
}

/* Tile path scratch, every part a multiple of 16 floats so each stays 64-byte aligned:
     qs   [TQ][dq4]   scale * Q, zero-padded rows and dims
     o    [TQ][dv4]   unnormalised output accumulators
     m, l [TQ]        running max and sum
     p    [TK][RB]    scores, then probabilities, of one register block (row in the lane)
     zero [dq4]       read instead of keys that must not be read
   The gather path uses a prefix of the same space (see attn_gather_neon.c). */
typedef struct spattn_neon_scratch {
    float *qs, *o, *m, *l, *p, *zero;
    size_t dq4, dv4;
} spattn_neon_scratch;

spattn_neon_scratch spattn__neon_scratch_split(float *scratch, size_t dim_qk, size_t dim_v);
size_t spattn__neon_scratch_floats(size_t dim_qk, size_t dim_v, size_t gather_rows,
                                  size_t gather_keys);

void spattn__neon_attn_tiles(const spattn_head_job *job, const spattn_mask *mask, size_t qt,
                             float *scratch);
void spattn__neon_attn_gather(const spattn_head_job *job, const spattn_keyrows *kr, size_t qt,
                              size_t nqt, float *scratch);
void spattn__neon_softmax_tile(const float *x, float *y, size_t ld, const spattn_mask *mask,
                               size_t qt, float scale);
float spattn__neon_fma_probe(size_t iters, double *flops);

#endif
