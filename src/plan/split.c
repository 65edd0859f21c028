/* Building the split-KV part of a plan (split.h): the split rule, the segments of each mask,
 * the items and their chunks.
 *
 * The rule reads the shape and masks only. A schedule with fewer than SPLIT_UNITS units
 * splits: each mask into as many segments as bring the units to about SPLIT_UNITS pieces of
 * work, but never so many that a busy query tile gets fewer than SPLIT_MIN_TILES key tiles
 * per segment on average (below that the per-segment work, a Q tile packed, an O tile stored
 * and merged, stops being small next to the keys). Cuts fall on key tile boundaries (the
 * slices then copy whole words) where the mask's stored tiles are split evenly, so a window
 * or causal mask gets segments of equal work rather than of equal keys. SPLIT_UNITS, not the
 * thread count, sets how far to go: any machine up to that many threads is kept busy, and
 * the result is the same bits on all of them. */
#include "plan/split.h"

#include <string.h>

#include "alloc.h"

#define SPLIT_UNITS 64
#define SPLIT_MIN_TILES 16

/* The segments mask m wants, at most `most`. */
static size_t want_segments(const spattn_mask *m, size_t most)
{
    size_t busy = 0;
    for (size_t qt = 0; qt < m->nqt; qt++)
        busy += !spattn__qt_empty(m, qt);
    if (busy == 0)
        return 1;
    size_t n = m->ntiles / busy / SPLIT_MIN_TILES;
    return n < 2 ? 1 : n < most ? n : most;
}

/* Cuts m's keys into at most n ranges [k0[c], k1[c]) holding about equal numbers of stored
   tiles; cnt is nkt sizes of scratch. Returns the number of ranges. */
static size_t cut_keys(const spattn_mask *m, size_t n, size_t *cnt, size_t *k0, size_t *k1)
{
    memset(cnt, 0, m->nkt * sizeof *cnt);
    for (size_t t = 0; t < m->ntiles; t++)
        cnt[m->tiles[t].kt]++;
    size_t c = 0, start = 0;
    uint64_t acc = 0;
    for (size_t kt = 0; kt + 1 < m->nkt && c + 1 < n; kt++) {
        acc += cnt[kt];
        if (acc * n >= (uint64_t)m->ntiles * (c + 1)) {
            k0[c] = start * SPATTN_TK;
            k1[c] = (kt + 1) * SPATTN_TK;
            start = kt + 1;
            c++;
        }
    }
    k0[c] = start * SPATTN_TK;
    k1[c] = m->len_k;
    return c + 1;
}

/* The segments of every mask of run: sp->first, k0, k1, nseg. Returns SPATTN_OK with
   sp->nseg == 0 when no mask gets two. */
static spattn_status cut_all(const spattn_schedule *run, size_t most, spattn_split *sp)
{
    const size_t nm = run->n_masks;
    size_t cap = 0, nkt = 0;
    sp->first = spattn__calloc(nm + 1, sizeof *sp->first);
    if (sp->first == NULL)
        return SPATTN_E_NOMEM;
    for (size_t mi = 0; mi < nm; mi++)
        if (run->masks[mi] != NULL) {
            cap += want_segments(run->masks[mi], most);
            nkt = run->masks[mi]->nkt > nkt ? run->masks[mi]->nkt : nkt;
        }
    sp->k0 = spattn__calloc(cap + 1, sizeof *sp->k0);
    sp->k1 = spattn__calloc(cap + 1, sizeof *sp->k1);
    size_t *cnt = spattn__calloc(nkt + 1, sizeof *cnt);
    if (sp->k0 == NULL || sp->k1 == NULL || cnt == NULL) {
        spattn__free(cnt);
        return SPATTN_E_NOMEM;
    }
    size_t n = 0;
    int any = 0;
    for (size_t mi = 0; mi < nm; mi++) {
        sp->first[mi] = n;
        const spattn_mask *m = run->masks[mi];
        if (m == NULL)
            continue;
        size_t got = cut_keys(m, want_segments(m, most), cnt, sp->k0 + n, sp->k1 + n);
        any |= got > 1;
        n += got;
    }
    sp->first[nm] = n;
    spattn__free(cnt);
    sp->nseg = any ? n : 0;
    return SPATTN_OK;
}

/* The mask of each segment, then each query tile's path. */
static spattn_status segment_masks(const spattn_schedule *run, const spattn_kernel_table *kt,
                                   spattn_path path, spattn_split *sp)
{
    spattn_status st =
        spattn__schedule_init(&sp->segs, &run->shape, run->n_masks_arg, run->head_step, sp->nseg);
    for (size_t mi = 0; mi < run->n_masks && st == SPATTN_OK; mi++) {
        const spattn_mask *m = run->masks[mi];
        const size_t f = sp->first[mi], n = sp->first[mi + 1] - f;
        for (size_t s = f; s < f + n && st == SPATTN_OK; s++) {
            if (n == 1) {
                spattn__mask_retain(m);
                sp->segs.masks[s] = m;
                continue;
            }
            spattn_mask *sm;
            st = spattn_mask_slice(m, 0, m->len_q, sp->k0[s], sp->k1[s], &sm);
            if (st == SPATTN_OK)
                sp->segs.masks[s] = sm;
        }
    }
    return st == SPATTN_OK ? spattn__schedule_paths(&sp->segs, kt, path) : st;
}

/* Unit head g's mask index in run. */
static size_t head_mask(const spattn_schedule *run, size_t g)
{
    return spattn__schedule_unit(run, g * run->nqt).mi;
}

/* Items (unit head, its segments in order, query tiles in order: the pairs of tiles of one
   segment are neighbours), the scratch slots and the merging units. */
static spattn_status list_items(const spattn_schedule *run, spattn_split *sp)
{
    const size_t heads = run->shape.batch * run->heads, nqt = run->nqt;
    const size_t per_row = run->rows * (run->shape.dim_v + 1);
    size_t nitems = 0, merging = 0;
    for (size_t g = 0; g < heads; g++) {
        size_t n = spattn__split_nseg(sp, head_mask(run, g));
        nitems += n * nqt;
        merging += n > 1 ? nqt : 0;
    }
    sp->items = spattn__calloc(nitems, sizeof *sp->items);
    sp->slot = spattn__calloc(heads, sizeof *sp->slot);
    sp->merges = spattn__calloc(merging ? merging : 1, sizeof *sp->merges);
    if (sp->items == NULL || sp->slot == NULL || sp->merges == NULL)
        return SPATTN_E_NOMEM;
    size_t off = 0;
    for (size_t g = 0; g < heads; g++) {
        const size_t mi = head_mask(run, g), n = spattn__split_nseg(sp, mi);
        for (size_t s = sp->first[mi]; s < sp->first[mi] + n; s++)
            for (size_t qt = 0; qt < nqt; qt++)
                sp->items[sp->nitems++] = (spattn_split_item){g, s, qt};
        sp->slot[g] = SIZE_MAX;
        if (n > 1) {
            sp->slot[g] = off;
            off += n * per_row;
            for (size_t qt = 0; qt < nqt; qt++)
                sp->merges[sp->merge_units++] = g * nqt + qt;
        }
    }
    sp->scratch_floats = off;
    return SPATTN_OK;
}

static int item_gather(const spattn_split *sp, const spattn_split_item *it)
{
    return sp->segs.gather[it->seg * sp->segs.nqt + it->qt];
}

static uint64_t item_cost(const void *ctx, size_t i)
{
    const spattn_split *sp = ctx;
    const spattn_split_item *it = &sp->items[i];
    return spattn__tile_cost(sp->segs.masks[it->seg], &sp->segs.keyrows[it->seg], it->qt,
                             item_gather(sp, it));
}

/* Never between the two query tiles of a pair. */
static int item_pair_first(const void *ctx, size_t i)
{
    const spattn_split *sp = ctx;
    const size_t qt = sp->items[i].qt;
    return qt % 2 == 0 && qt + 1 < sp->segs.nqt;
}

/* Chunks over the items, cut as spattn__schedule_plan cuts units. */
static spattn_status cut_items(spattn_split *sp, int nthreads)
{
    spattn_schedule *s = &sp->segs;
    uint64_t cost_all = 0, cost_gather = 0;
    for (size_t i = 0; i < sp->nitems; i++) {
        const int g = item_gather(sp, &sp->items[i]) == SPATTN_QT_GATHER;
        const uint64_t c = item_cost(sp, i);
        s->gather_tiles += (size_t)g;
        s->mixed_tiles += item_gather(sp, &sp->items[i]) == SPATTN_QT_MIXED;
        cost_all += c;
        cost_gather += g ? c : 0;
    }
    const int gather_bound = !s->rows_are_heads && 2 * cost_gather > cost_all;
    const spattn_cut_src src = {item_cost, s->pairs ? item_pair_first : NULL, sp, sp->nitems};
    if (!spattn__cut_chunks(&src, nthreads, cost_all, gather_bound, &s->chunk_start, &s->nchunks))
        return SPATTN_E_NOMEM;
    size_t tiles = 0; /* items in the longest chunk: bounds a run of gather tiles */
    for (size_t c = 0; c < s->nchunks; c++)
        if (s->chunk_start[c + 1] - s->chunk_start[c] > tiles)
            tiles = s->chunk_start[c + 1] - s->chunk_start[c];
    sp->gather_rows = s->gather_tiles + s->mixed_tiles == 0 ? 0
                      : tiles * SPATTN_TQ < s->rows         ? tiles * SPATTN_TQ
                                                            : s->rows;
    return SPATTN_OK;
}

spattn_status spattn__split_build(const spattn_schedule *run, const spattn_kernel_table *kt,
                                  spattn_path path, int nthreads, spattn_split *sp)
{
    memset(sp, 0, sizeof *sp);
    const size_t units = spattn__schedule_units(run);
    if (units >= SPLIT_UNITS)
        return SPATTN_OK;
    size_t most = (SPLIT_UNITS + units - 1) / units;
    most = most < SPATTN_SPLIT_MAX_SEGS ? most : SPATTN_SPLIT_MAX_SEGS;
    spattn_status st = cut_all(run, most, sp);
    if (st != SPATTN_OK || sp->nseg == 0) {
        spattn__split_free(sp);
        return st;
    }
    st = segment_masks(run, kt, path, sp);
    if (st == SPATTN_OK)
        st = list_items(run, sp);
    if (st == SPATTN_OK)
        st = cut_items(sp, nthreads);
    return st;
}

void spattn__split_free(spattn_split *sp)
{
    spattn__schedule_free(&sp->segs);
    spattn__free(sp->first);
    spattn__free(sp->k0);
    spattn__free(sp->k1);
    spattn__free(sp->items);
    spattn__free(sp->slot);
    spattn__free(sp->merges);
    memset(sp, 0, sizeof *sp);
}
