/*
 * Software prefetch of the next key tile's K and V rows (decode, where K and V stream from
 * DRAM).
 */
#ifndef SPATTN_KERNELS_KV_PREFETCH_H
#define SPATTN_KERNELS_KV_PREFETCH_H

#include "kernels/common.h"

/* The K and V rows of the next key tile the walk visits, asked for a few keys at a time
   while this tile computes, when the call streams K and V (job->stream_kv): the hardware
   prefetchers follow the stream, but software requests one tile ahead keep more lines in
   flight. They fill L2, not L1: a tile of K and V (64 keys of dim 128 in float32: 64 KiB)
   is larger than L1, so requests into L1 evicted the tile being computed. With several query tiles
   per head the tiles are in L2 and the requests only compete with the broadcasts for load slots, so
   they are off there (docs/kernels.md has both measurements). */
typedef struct tile_prefetch {
    const char *k, *v;    /* first key of the next tile */
    size_t n;             /* its keys */
    ptrdiff_t k_ts, v_ts; /* bytes */
    size_t k_bytes, v_bytes;
} tile_prefetch;

SPATTN_ALWAYS_INLINE void prefetch_keys(const tile_prefetch *pf, size_t j, size_t count)
{
    for (size_t c = j; c < j + count && c < pf->n; c++) {
        const char *k = pf->k + (ptrdiff_t)c * pf->k_ts, *v = pf->v + (ptrdiff_t)c * pf->v_ts;
        for (size_t b = 0; b < pf->k_bytes; b += 64)
            vec_prefetch_l2(k + b);
        for (size_t b = 0; b < pf->v_bytes; b += 64)
            vec_prefetch_l2(v + b);
    }
}

#endif
