/* The benchmark's sparsity patterns, each fitted to a target sparsity level. */
#ifndef SPATTN_BENCH_MASKS_H
#define SPATTN_BENCH_MASKS_H

#include <stddef.h>
#include <stdint.h>

#include "bench_case.h"

/* Chooses c->param / c->param2 so that the pattern comes as close as it can to c->level on
   c's shape. Pure arithmetic (no library call), so it runs at registration. Returns 0 when the
   pattern cannot get within a quarter of the target density (strided cannot be 99% sparse at
   len 4096, say): such a point is left out of the grid. */
int bench_masks_fit(bench_case *c);

/* The masks of c: *n = 0 and *masks = NULL for BP_DENSE (the library's every-pair problem),
   heads_q masks for BP_FEWKEYS (distinct per KV head, shared inside a GQA group) and
   BP_GPT2HEADS (one kind per head), else one. */
spattn_status bench_masks_build(const bench_case *c, spattn_mask ***masks, size_t *n);
void bench_masks_free(spattn_mask **masks, size_t n);

/* BP_DOCUMENTS: the c->param document lengths (seeded, summing to len_q) into lens. */
void bench_doc_lens(const bench_case *c, size_t *lens);

/* Allowed pairs summed over every (batch, head). */
uint64_t bench_masks_pairs(const bench_case *c, spattn_mask *const *masks, size_t n);

/* Deterministic generator (splitmix64). */
uint64_t bench_rng(uint64_t *s);

#endif
