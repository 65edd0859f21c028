/* Plans: everything that depends only on shape, masks, ISA and threads, done once.
 *
 * The unit of work is one query tile of one (batch, head): unit u = (b * heads_q + h) * nqt + qt.
 * A unit is computed by exactly one thread and its result does not depend on which other units
 * that thread runs, so output is bitwise the same for any thread count. Units are cut into
 * contiguous chunks by cost (allowed pairs, not rows), long ones first and short ones last,
 * which threads take dynamically. */
#include <omp.h>
#include <stdatomic.h>
#include <string.h>

#include "alloc.h"
#include "kernels/dispatch.h"
#include "plan/plan_internal.h"
#include "validate.h"

/* The work split. Tile-path plans cut guided chunks: each takes 1/GUIDED_DIV of what is left
   per thread, down to 1/GUIDED_MIN of a thread's share, so the first chunks are long and the
   last short. Threads take chunks dynamically, and when one of them runs slow (a neighbour on
   its vCPU, a cost estimate that is off) the other is left waiting only for a short last
   chunk: with 8 equal chunks per thread, causal 4096 on two threads ended 0.3-2 ms of 19 ms
   apart. Plans whose cost is mostly gather tiles take GATHER_CHUNKS long equal chunks per
   thread instead: a gather call covers a run of tiles within one chunk and passes over all
   their rows together, and the longer the pass the more rows reuse each K and V row from L2
   (16 random keys per row, len 4096, 2 threads: 0.665 -> 0.537 ms with 2 chunks per thread
   instead of 8). */
#define GUIDED_DIV 4
#define GUIDED_MIN 64
#define GATHER_CHUNKS 2

/* Estimated cost of one unit, in pair-operations. A tile visit costs its whole 64 x TQ area
   whatever its bits; a gathered pair costs about two tiled ones (no register blocking). */
uint64_t spattn__unit_cost(const spattn_mask *m, size_t qt, int gather)
{
    size_t nt = m->qt_ptr[qt + 1] - m->qt_ptr[qt];
    uint64_t c = gather ? 2 * m->qt_nnz[qt] : (uint64_t)nt * SPATTN_TQ * SPATTN_TK;
    return c + SPATTN_TQ * 16; /* fixed per-tile work: init, normalise, store */
}

/* Cost of unit u of the plain schedule (u = (b * heads_q + h) * nqt + qt). */
static uint64_t plain_cost(const spattn_plan *p, size_t u)
{
    size_t bh = u / p->nqt, qt = u % p->nqt;
    size_t mi = spattn__mask_index(&p->shape, p->n_masks_arg, bh / p->shape.heads_q,
                                   bh % p->shape.heads_q);
    return spattn__unit_cost(p->masks[mi], qt, p->gather[mi * p->nqt + qt]);
}

int spattn__split_units(size_t nunits, int nthreads,
                        uint64_t (*cost)(const spattn_plan *, size_t), const spattn_plan *p,
                        size_t pair_period, int gather_bound, size_t **starts, size_t *nchunks)
{
    uint64_t total = 0;
    for (size_t u = 0; u < nunits; u++)
        total += cost(p, u);
    const double n = (double)nthreads;
    /* Equal chunks: `equal` of them. Guided: a chunk ends once it holds max(left / (DIV n),
       total / (MIN n)), about DIV n (1 + ln(MIN / DIV)) chunks; every chunk but the last
       holds at least total / (MIN n), so there are never more than MIN n + 1. */
    const size_t equal = nthreads == 1 ? 1 : gather_bound ? (size_t)nthreads * GATHER_CHUNKS : 0;
    const double floor_share = (double)total / (GUIDED_MIN * n);
    size_t cap = equal ? equal : (size_t)nthreads * GUIDED_MIN + 1;
    if (cap > nunits)
        cap = nunits;
    size_t *cs = spattn__calloc(cap + 1, sizeof *cs);
    if (cs == NULL)
        return 0;
    size_t c = 0;
    uint64_t acc = 0, done = 0;
    for (size_t u = 0; u < nunits && c + 1 < cap; u++) {
        acc += cost(p, u);
        /* Never cut between the two query tiles of a pair (see execute.c). */
        const size_t q = pair_period ? u % pair_period : 1;
        if (q % 2 == 0 && q + 1 < pair_period)
            continue;
        int cut;
        if (equal) {
            cut = (double)acc >= (double)total * (double)(c + 1) / (double)equal;
        } else {
            double want = (double)(total - done) / (GUIDED_DIV * n);
            cut = (double)(acc - done) >= (want > floor_share ? want : floor_share);
        }
        if (cut) {
            cs[++c] = u + 1;
            done = acc;
        }
    }
    if (cs[c] != nunits)
        cs[++c] = nunits;
    *starts = cs;
    *nchunks = c;
    return 1;
}

int spattn__choose_gather(const spattn_kernel_table *kt, const spattn_mask *m, size_t qt,
                          spattn_path path)
{
    if (path != SPATTN_PATH_AUTO)
        return path == SPATTN_PATH_GATHER;
    /* The area of the PARTIAL tiles only: a FULL tile's pairs run at the tile path's best (no
       per-key mask), so its pairs count against gathering and its area not for it. With no
       FULL tile this is the plain fill ratio the crossovers were measured with. */
    size_t partial = 0;
    for (size_t t = m->qt_ptr[qt]; t < m->qt_ptr[qt + 1]; t++)
        partial += m->tiles[t].part != SPATTN_FULL;
    double area = (double)partial * SPATTN_TK * (double)spattn__qt_rows(m, qt);
    return (double)m->qt_nnz[qt] < kt->gather_below * area;
}

spattn_status spattn__plan_keyrows(const spattn_mask *const *masks, size_t n, size_t nqt,
                                   const uint8_t *gather, spattn_keyrows *kr)
{
    for (size_t i = 0; i < n; i++) {
        const uint8_t *g = gather + i * nqt;
        if (masks[i] == NULL || memchr(g, 1, nqt) == NULL)
            continue;
        spattn_status st = spattn__keyrows_build(masks[i], g, &kr[i]);
        if (st != SPATTN_OK)
            return st;
    }
    return SPATTN_OK;
}

void spattn_plan_free(spattn_plan *p)
{
    if (p == NULL)
        return;
    for (size_t i = 0; p->keyrows != NULL && i < p->n_masks; i++)
        spattn__keyrows_free(&p->keyrows[i]);
    spattn__free(p->keyrows);
    for (size_t i = 0; p->pk_keyrows != NULL && i < p->pk_n_masks; i++)
        spattn__keyrows_free(&p->pk_keyrows[i]);
    spattn__free(p->pk_keyrows);
    for (size_t i = 0; i < p->n_masks; i++)
        spattn_mask_free((spattn_mask *)p->masks[i]);
    spattn__free(p->masks);
    spattn__free(p->gather);
    spattn__free(p->chunk_start);
    spattn__aligned_free(p->scratch);
    for (size_t i = 0; i < p->pk_n_masks; i++)
        spattn_mask_free((spattn_mask *)p->pk_masks[i]);
    spattn__free(p->pk_masks);
    spattn__free(p->pk_gather);
    spattn__free(p->pk_chunk_start);
    spattn__free(p);
}

/* Query tiles in the longest of n chunks. */
static size_t longest_chunk(const size_t *starts, size_t n)
{
    size_t most = 0;
    for (size_t c = 0; c < n; c++)
        most = starts[c + 1] - starts[c] > most ? starts[c + 1] - starts[c] : most;
    return most;
}

/* The most rows an attn_gather call of this plan can get, or 0 when no tile takes the gather
   path. A call covers tiles of one head within one chunk, so with many threads (short
   chunks) each thread's scratch stays small. */
static size_t gather_rows(const spattn_plan *p)
{
    int any = 0;
    size_t rows, tiles;
    if (p->packed) {
        for (size_t i = 0; i < p->pk_n_masks * p->pk_nqt; i++)
            any |= p->pk_gather[i];
        rows = p->group; /* the group's heads are the rows */
        tiles = longest_chunk(p->pk_chunk_start, p->pk_nchunks);
    } else {
        any = p->gather_tiles != 0;
        rows = p->shape.len_q;
        tiles = longest_chunk(p->chunk_start, p->nchunks);
    }
    if (!any)
        return 0;
    return tiles * SPATTN_TQ < rows ? tiles * SPATTN_TQ : rows;
}

spattn_status spattn__plan_create_path(const spattn_shape *shape,
                                       const spattn_mask *const *masks, size_t n_masks,
                                       const spattn_options *opt, spattn_path path,
                                       spattn_plan **out)
{
    if (out == NULL)
        return SPATTN_E_NULL;
    *out = NULL;
    spattn_status st = spattn__check_shape(shape);
    if (st == SPATTN_OK)
        st = spattn__check_masks(shape, masks, n_masks);
    const spattn_kernel_table *kt = NULL;
    int nthreads = 1;
    if (st == SPATTN_OK)
        st = spattn__resolve(opt, &kt, &nthreads);
    if (st != SPATTN_OK)
        return st;
    if (nthreads == 0)
        nthreads = omp_get_num_procs() > 0 ? omp_get_num_procs() : 1;
    /* A thread with no unit of its own would only cost scratch memory. */
    size_t units = shape->batch * shape->heads_q * ((shape->len_q + SPATTN_TQ - 1) / SPATTN_TQ);
    if ((size_t)nthreads > units)
        nthreads = (int)units;
    if (nthreads > SPATTN_MAX_THREADS)
        nthreads = SPATTN_MAX_THREADS;

    spattn_plan *p = spattn__calloc(1, sizeof *p);
    if (p == NULL)
        return SPATTN_E_NOMEM;
    p->shape = *shape;
    p->kt = kt;
    p->nthreads = nthreads;
    atomic_flag_clear(&p->scratch_busy);

    /* No mask means one all-allowed mask owned by the plan. */
    size_t nm = n_masks == 0 ? 1 : n_masks;
    p->masks = spattn__calloc(nm, sizeof *p->masks);
    if (p->masks == NULL)
        goto nomem;
    if (n_masks == 0) {
        spattn_mask *all;
        if (spattn__mask_all(shape->len_q, shape->len_k, &all) != SPATTN_OK)
            goto nomem;
        p->masks[0] = all;
        p->n_masks = 1;
    } else {
        for (size_t i = 0; i < n_masks; i++) {
            spattn__mask_retain(masks[i]);
            p->masks[i] = masks[i];
            p->n_masks = i + 1;
        }
    }
    p->n_masks_arg = n_masks;

    size_t nqt = (shape->len_q + SPATTN_TQ - 1) / SPATTN_TQ;
    p->nqt = nqt;
    p->gather = spattn__calloc(p->n_masks, nqt);
    if (p->gather == NULL)
        goto nomem;
    for (size_t i = 0; i < p->n_masks; i++)
        for (size_t qt = 0; qt < nqt; qt++) {
            int g = spattn__choose_gather(kt, p->masks[i], qt, path);
            p->gather[i * nqt + qt] = (uint8_t)g;
        }
    p->keyrows = spattn__calloc(p->n_masks, sizeof *p->keyrows);
    if (p->keyrows == NULL ||
        spattn__plan_keyrows(p->masks, p->n_masks, nqt, p->gather, p->keyrows) != SPATTN_OK)
        goto nomem;

    uint64_t cost_all = 0, cost_gather = 0;
    for (size_t u = 0; u < shape->batch * shape->heads_q; u++) {
        size_t mi = spattn__mask_index(shape, n_masks, u / shape->heads_q, u % shape->heads_q);
        for (size_t qt = 0; qt < nqt; qt++) {
            const int g = p->gather[mi * nqt + qt];
            const uint64_t c = spattn__unit_cost(p->masks[mi], qt, g);
            p->gather_tiles += (size_t)g;
            cost_all += c;
            cost_gather += g ? c : 0;
        }
    }
    size_t nunits = shape->batch * shape->heads_q * nqt;
    /* Units of a head are paired (qt even, qt + 1) where the kernel runs pairs. */
    const size_t pair_period = kt->attn_tiles2 != NULL ? nqt : 0;
    if (!spattn__split_units(nunits, nthreads, plain_cost, p, pair_period,
                             2 * cost_gather > cost_all, &p->chunk_start, &p->nchunks))
        goto nomem;
    if (spattn__plan_pack(p, path) != SPATTN_OK)
        goto nomem;

    const size_t gather_keys =
        p->packed ? spattn__keyrows_longest(p->pk_keyrows, p->pk_n_masks)
                  : spattn__keyrows_longest(p->keyrows, p->n_masks);
    size_t per = kt->scratch_floats(shape->dim_qk, shape->dim_v, gather_rows(p), gather_keys);
    p->scratch_per_thread = (per + 15) / 16 * 16; /* keep each thread's part 64-byte aligned */
    p->scratch = spattn__aligned_alloc(p->scratch_per_thread * sizeof(float) *
                                       (size_t)p->nthreads);
    if (p->scratch == NULL)
        goto nomem;
    *out = p;
    return SPATTN_OK;
nomem:
    spattn_plan_free(p);
    return SPATTN_E_NOMEM;
}

spattn_status spattn_plan_create(const spattn_shape *shape, const spattn_mask *const *masks,
                                 size_t n_masks, const spattn_options *opt, spattn_plan **out)
{
    return spattn__plan_create_path(shape, masks, n_masks, opt, SPATTN_PATH_AUTO, out);
}

spattn_isa spattn_plan_isa(const spattn_plan *plan)
{
    return plan ? plan->kt->isa : SPATTN_ISA_AUTO;
}

int spattn_plan_threads(const spattn_plan *plan)
{
    return plan ? plan->nthreads : 0;
}

size_t spattn__plan_chunks(const spattn_plan *p, uint64_t *costs)
{
    if (p == NULL)
        return 0;
    for (size_t c = 0; costs != NULL && c < p->nchunks; c++) {
        costs[c] = 0;
        for (size_t u = p->chunk_start[c]; u < p->chunk_start[c + 1]; u++)
            costs[c] += plain_cost(p, u);
    }
    return p->nchunks;
}

int spattn__plan_packed(const spattn_plan *plan)
{
    return plan ? plan->packed : 0;
}

size_t spattn__plan_gather_tiles(const spattn_plan *plan)
{
    return plan ? plan->gather_tiles : 0;
}
