/*
 * The backward's per-query-tile pack: what both of its passes read of one query tile of one
 * (batch, head), laid out once per call by the plan (plan/backward.c) so that the kernels
 * load it aligned and never re-transpose it per key tile. In floats, every part a multiple
 * of 16 (64-byte aligned for an aligned pack):
 *   QT  [dim_qk][16]          Q transposed (lane r = row r), unscaled
 *   dOT [dim_v][16]           dO transposed
 *   QR  [16][round16(dim_qk)] Q rows, zero-padded
 *   dOR [16][round16(dim_v)]  dO rows, zero-padded
 *   D   [16]                  D_i = dot(dO_i, O_i)
 *   L2  [16]                  lse_i * log2(e)
 * Rows past len_q are zeros (L2 too).
 */
#ifndef SPATTN_KERNELS_BWD_PACK_H
#define SPATTN_KERNELS_BWD_PACK_H

#include <stddef.h>

static inline size_t spattn__bwd_round16(size_t n)
{
    return (n + 15) & ~(size_t)15;
}

static inline size_t spattn__bwd_pack_qr(size_t dim_qk, size_t dim_v)
{
    return 16 * (dim_qk + dim_v);
}

static inline size_t spattn__bwd_pack_dor(size_t dim_qk, size_t dim_v)
{
    return spattn__bwd_pack_qr(dim_qk, dim_v) + 16 * spattn__bwd_round16(dim_qk);
}

static inline size_t spattn__bwd_pack_d(size_t dim_qk, size_t dim_v)
{
    return spattn__bwd_pack_dor(dim_qk, dim_v) + 16 * spattn__bwd_round16(dim_v);
}

static inline size_t spattn__bwd_pack_l2(size_t dim_qk, size_t dim_v)
{
    return spattn__bwd_pack_d(dim_qk, dim_v) + 16;
}

static inline size_t spattn__bwd_pack_floats(size_t dim_qk, size_t dim_v)
{
    return spattn__bwd_pack_l2(dim_qk, dim_v) + 16;
}

#endif
