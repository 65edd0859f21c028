/* Building a schedule: path choice per query tile, unit costs, key lists and the work split.
 *
 * Units are cut into contiguous chunks by cost (allowed pairs, not rows), long ones first and
 * short ones last, which threads take dynamically. */
#include "plan/schedule.h"

#include <math.h>
#include <stdatomic.h>
#include <string.h>

#include "alloc.h"
#include "cpu.h"
#include "plan/bit_count.h"

/* The work split. Tile-path plans cut guided chunks: each takes 1/GUIDED_DIV of what is left
   per thread, down to 1/GUIDED_MIN of a thread's share, so the first chunks are long and the
   last short. Threads take chunks dynamically, and when one of them runs slow (a neighbour on
   its vCPU, a cost estimate that is off) the other is left waiting only for a short last
   chunk, where equal chunks leave the two threads ending far apart (docs/design.md has the
   measurements). Plans whose cost is mostly gather tiles take GATHER_CHUNKS long equal chunks per
   thread instead: a gather call covers a run of tiles within one chunk and passes over all
   their rows together, and the longer the pass the more rows reuse each K and V row from
   L2. */
#define GUIDED_DIV 4
#define GUIDED_MIN 64
#define GATHER_CHUNKS 2

/* A listed pair of a mixed query tile costs about three tiled ones (row columns, per-row
   P V), a gathered one two (spattn__tile_cost). */
#define MIXED_PAIR_COST 3

spattn_status spattn__schedule_init(spattn_schedule *s, const spattn_shape *shape,
                                    size_t n_masks_arg, size_t head_step, size_t n_masks)
{
    memset(s, 0, sizeof *s);
    s->shape = *shape;
    s->n_masks_arg = n_masks_arg;
    s->head_step = head_step;
    s->heads = shape->heads_q / head_step;
    s->rows_are_heads = head_step > 1;
    s->rows = head_step > 1 ? head_step : shape->len_q;
    s->nqt = (s->rows + SPATTN_TQ - 1) / SPATTN_TQ;
    s->n_masks = n_masks;
    s->masks = spattn__calloc(n_masks, sizeof *s->masks);
    return s->masks == NULL ? SPATTN_E_NOMEM : SPATTN_OK;
}

void spattn__schedule_free(spattn_schedule *s)
{
    for (size_t i = 0; s->keyrows != NULL && i < s->n_masks; i++)
        spattn__keyrows_free(&s->keyrows[i]);
    spattn__free(s->keyrows);
    for (size_t i = 0; s->masks != NULL && i < s->n_masks; i++)
        spattn_mask_free((spattn_mask *)s->masks[i]);
    spattn__free(s->masks);
    spattn__free(s->gather);
    spattn__free(s->chunk_start);
    memset(s, 0, sizeof *s);
}

/* A tile visit costs its whole 64 x TQ area whatever its bits; a gathered pair costs about
   two tiled ones (no register blocking). A mixed query tile pays for its walked tiles and its
   listed pairs. */
uint64_t spattn__tile_cost(const spattn_mask *m, const spattn_keyrows *kr, size_t qt, int gather)
{
    size_t nt = m->qt_ptr[qt + 1] - m->qt_ptr[qt];
    uint64_t c;
    if (gather == SPATTN_QT_GATHER) {
        c = 2 * m->qt_nnz[qt];
    } else if (gather == SPATTN_QT_MIXED) {
        uint64_t listed = 0;
        for (size_t t = m->qt_ptr[qt]; t < m->qt_ptr[qt + 1]; t++) {
            if (!kr->tile_gather[t])
                continue;
            nt--;
            for (size_t r = 0; r < spattn__qt_rows(m, qt); r++)
                listed +=
                    (uint64_t)spattn__popcount64(m->bits[(size_t)m->tiles[t].part * SPATTN_TQ + r]);
        }
        c = (uint64_t)nt * SPATTN_TQ * SPATTN_TK + MIXED_PAIR_COST * listed;
    } else {
        c = (uint64_t)nt * SPATTN_TQ * SPATTN_TK;
    }
    return c + SPATTN_TQ * 16; /* fixed per-tile work: init, normalise, store */
}

uint64_t spattn__schedule_unit_cost(const spattn_schedule *s, size_t u)
{
    const spattn_unit x = spattn__schedule_unit(s, u);
    return spattn__tile_cost(s->masks[x.mi], &s->keyrows[x.mi], x.qt,
                             s->gather[x.mi * s->nqt + x.qt]);
}

static atomic_int popcnt_on = 1; /* test hook: spattn__set_plan_popcnt */

void spattn__set_plan_popcnt(int on)
{
    atomic_store(&popcnt_on, on != 0);
}

int spattn__plan_popcnt(void)
{
    return PLAN_POPCNT_CLONE && atomic_load(&popcnt_on) &&
           (spattn__cpu()->bits & SPATTN_CPU_POPCNT) != 0;
}

static _Atomic double mixed_override = -1.0; /* test hook: spattn__set_mixed_pairs_per_col */

void spattn__set_mixed_pairs_per_col(double v)
{
    atomic_store(&mixed_override, v);
}

/* Cuts items 0 .. n-1 into chunks for nthreads: guided (each chunk a fixed fraction of the
   cost left, the last ones short), or when equal_mode (most of the cost is gather tiles) a
   few long chunks of equal cost per thread; never right after an item that src keeps with
   the next one. */
int spattn__cut_chunks(const spattn_cut_src *src, int nthreads, uint64_t total, int equal_mode,
                       size_t **chunk_start, size_t *nchunks)
{
    const size_t nunits = src->n;
    const double n = (double)nthreads;
    /* Equal chunks: `equal` of them. Guided: a chunk ends once it holds max(left / (DIV n),
       total / (MIN n)), about DIV n (1 + ln(MIN / DIV)) chunks; every chunk but the last
       holds at least total / (MIN n), so there are never more than MIN n + 1. */
    const size_t equal = nthreads == 1 ? 1 : equal_mode ? (size_t)nthreads * GATHER_CHUNKS : 0;
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
        acc += src->cost(src->ctx, u);
        if (src->keep_with_next != NULL && src->keep_with_next(src->ctx, u))
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
    *chunk_start = cs;
    *nchunks = c;
    return 1;
}

static uint64_t unit_cost_cb(const void *ctx, size_t u)
{
    return spattn__schedule_unit_cost(ctx, u);
}

/* Never cut between the two query tiles of a pair (see execute.c). */
static int pair_first_cb(const void *ctx, size_t u)
{
    const spattn_schedule *s = ctx;
    const size_t q = u % s->nqt;
    return q % 2 == 0 && q + 1 < s->nqt;
}

/* The columns (keys) that some row of query tile qt allows in its stored tile t, as bits;
   the tile's allowed pairs go to *pairs, and those whose key the row above also allows are
   added to *shared. */
PLAN_INLINE uint64_t tile_used_cols(const spattn_mask *m, size_t qt, size_t t, size_t *pairs,
                                    size_t *shared, const int hw)
{
    uint64_t cols = 0, above = 0;
    *pairs = 0;
    for (size_t r = 0; r < spattn__qt_rows(m, qt); r++) {
        const uint64_t b = spattn__tile_row_bits(m, &m->tiles[t], qt, r);
        cols |= b;
        *pairs += (size_t)plan_popcount(b, hw);
        *shared += (size_t)plan_popcount(b & above, hw);
        above = b;
    }
    return cols;
}

/* What the fill rule of choose_path weighed for a query tile: gather when weight < bound.
   weight < 0 when the rule did not decide (a forced path, mixed-kernel tiles). */
typedef struct fill_rule {
    double weight, bound;
} fill_rule;

/* Query tiles within NEAR_CROSSOVER (relative) of the fill rule's bound are at the crossover,
   where both paths cost about the same. */
#define NEAR_CROSSOVER 0.05
static int at_crossover(const fill_rule *f)
{
    return f->weight >= 0 && f->bound > 0 &&
           fabs(f->weight - f->bound) <= NEAR_CROSSOVER * f->bound;
}

/* A random mask's query tiles all have about the same fill, so where that fill sits at the
   crossover they fall either side of it by chance, and a mask whose query tiles alternate
   between the paths there runs slower than either path alone (docs/kernels.md, "One path at
   the crossover"). The query tiles of m at the crossover take one path, the one the rule
   gives their pairs and bounds summed. */
static void one_path_at_crossover(uint8_t *g, const fill_rule *fr, size_t nqt)
{
    double weight = 0, bound = 0;
    size_t gathered = 0, tiled = 0;
    for (size_t qt = 0; qt < nqt; qt++) {
        if (!at_crossover(&fr[qt]))
            continue;
        weight += fr[qt].weight;
        bound += fr[qt].bound;
        gathered += g[qt] == SPATTN_QT_GATHER;
        tiled += g[qt] == SPATTN_QT_TILES;
    }
    if (gathered == 0 || tiled == 0)
        return;
    const uint8_t path = weight < bound ? SPATTN_QT_GATHER : SPATTN_QT_TILES;
    for (size_t qt = 0; qt < nqt; qt++)
        if (at_crossover(&fr[qt]))
            g[qt] = path;
}

/* Keys a row may hold on average for the rows below it to find the keys they share in L1
   (128 float32 rows of dim 64 fill Zen 4's 32 KiB L1). */
#define SHARED_KEYS_MAX 128

/* The path of query tile qt of m, from one pass over its PARTIAL tiles.

   Without the mixed kernel: gather when the query tile is sparse as a whole, else tiles.
   Sparse as a whole counts the area of the PARTIAL tiles only: a FULL tile's pairs run at the
   tile path's best (no per-key mask), so its pairs count against gathering and its area not
   for it. And of their used columns only: the tile path computes the keys some row allows
   (tile_keys), so a tile of a few keys every row takes (the summary columns of a fixed
   pattern) is dense work for it. With random keys nearly every column is used, and this is
   the plain fill ratio the crossovers were measured with. A pair whose key the row above also
   allows costs the gather passes less: they find its K and V rows in L1 (a narrow causal
   window shares all but one key with the row above), so it counts gather_shared less; but
   only where rows hold at most SHARED_KEYS_MAX keys on average, since the row above read all
   of its keys in between (a 50 %-random mask's rows share a quarter of its area, yet its
   2,000 keys a row have long left L1 when the next row reads them).

   With the mixed kernel, a PARTIAL tile is worth listing its keys when its allowed pairs are
   few for its used columns (the tile path computes every used key for all 16 rows, the row
   columns of attn_mixed only the allowed pairs); those are flagged in tg (zeros on entry):
   none, and the rule above holds; all, gather; some, mixed, unless the rule above holds and
   the gather path's estimate is lower (a narrow band of PARTIAL tiles beside the listed
   pairs, as a strided mask of stride 64 has: the gather passes take both at about two tiled
   pairs each). */
PLAN_INLINE uint8_t choose_path(const spattn_kernel_table *kt, const spattn_mask *m, size_t qt,
                                spattn_path path, uint8_t *tg, fill_rule *fr, const int hw)
{
    fr->weight = -1.0;
    if (path != SPATTN_PATH_AUTO)
        return path == SPATTN_PATH_GATHER ? SPATTN_QT_GATHER : SPATTN_QT_TILES;
    double per_col = atomic_load(&mixed_override);
    if (per_col < 0)
        per_col = kt->mixed_pairs_per_col;
    const int mixed = kt->attn_mixed != NULL && per_col > 0;
    const size_t t0 = m->qt_ptr[qt], t1 = m->qt_ptr[qt + 1];
    size_t cols = 0, shared = 0, sparse = 0, listed = 0;
    for (size_t t = t0; t < t1; t++) {
        if (m->tiles[t].part == SPATTN_FULL)
            continue;
        size_t pairs;
        const size_t used = plan_popcount(tile_used_cols(m, qt, t, &pairs, &shared, hw), hw);
        cols += used;
        if (mixed && (double)pairs < per_col * (double)used) {
            tg[t] = 1;
            sparse++;
            listed += pairs;
        }
    }
    const size_t rows = spattn__qt_rows(m, qt);
    const double credit = m->qt_nnz[qt] <= SHARED_KEYS_MAX * rows ? kt->gather_shared : 0.0;
    const double weight = (double)m->qt_nnz[qt] - credit * (double)shared,
                 bound = kt->gather_below * (double)cols * (double)rows;
    const int gather = weight < bound;
    if (sparse == 0) {
        fr->weight = weight;
        fr->bound = bound;
        return gather ? SPATTN_QT_GATHER : SPATTN_QT_TILES;
    }
    if (sparse == t1 - t0)
        return SPATTN_QT_GATHER;
    const uint64_t mixed_cost =
        (uint64_t)(t1 - t0 - sparse) * SPATTN_TQ * SPATTN_TK + MIXED_PAIR_COST * (uint64_t)listed;
    if (gather && 2 * m->qt_nnz[qt] <= mixed_cost) {
        for (size_t t = t0; t < t1; t++)
            tg[t] = 0;
        return SPATTN_QT_GATHER;
    }
    return SPATTN_QT_MIXED;
}

/* choose_path for every query tile of m, in the builds of bit_count.h. */
static void choose_paths_plain(const spattn_kernel_table *kt, const spattn_mask *m, size_t nqt,
                               spattn_path path, uint8_t *g, uint8_t *tg, fill_rule *fr)
{
    for (size_t qt = 0; qt < nqt; qt++)
        g[qt] = choose_path(kt, m, qt, path, tg, &fr[qt], 0);
}

PLAN_POPCNT_TARGET static void choose_paths_popcnt(const spattn_kernel_table *kt,
                                                   const spattn_mask *m, size_t nqt,
                                                   spattn_path path, uint8_t *g, uint8_t *tg,
                                                   fill_rule *fr)
{
    for (size_t qt = 0; qt < nqt; qt++)
        g[qt] = choose_path(kt, m, qt, path, tg, &fr[qt], 1);
}

spattn_status spattn__schedule_paths(spattn_schedule *s, const spattn_kernel_table *kt,
                                     spattn_path path)
{
    const size_t nqt = s->nqt;
    s->gather = spattn__calloc(s->n_masks, nqt);
    s->keyrows = spattn__calloc(s->n_masks, sizeof *s->keyrows);
    if (s->gather == NULL || s->keyrows == NULL)
        return SPATTN_E_NOMEM;
    for (size_t i = 0; i < s->n_masks; i++) {
        const spattn_mask *m = s->masks[i];
        if (m == NULL)
            continue;
        uint8_t *g = s->gather + i * nqt;
        uint8_t *tg = spattn__calloc(m->ntiles + 1, 1);
        fill_rule *fr = spattn__malloc(nqt * sizeof *fr);
        if (tg == NULL || fr == NULL) {
            spattn__free(tg);
            spattn__free(fr);
            return SPATTN_E_NOMEM;
        }
        if (spattn__plan_popcnt())
            choose_paths_popcnt(kt, m, nqt, path, g, tg, fr);
        else
            choose_paths_plain(kt, m, nqt, path, g, tg, fr);
        one_path_at_crossover(g, fr, nqt);
        spattn__free(fr);
        int any = 0, mixed = 0;
        for (size_t qt = 0; qt < nqt; qt++) {
            any |= g[qt] != SPATTN_QT_TILES;
            mixed |= g[qt] == SPATTN_QT_MIXED;
        }
        /* Flags of tiles outside mixed query tiles mean nothing: cleared, and none kept when
           no query tile is mixed. */
        for (size_t qt = 0; mixed && qt < nqt; qt++)
            if (g[qt] != SPATTN_QT_MIXED)
                memset(tg + m->qt_ptr[qt], 0, m->qt_ptr[qt + 1] - m->qt_ptr[qt]);
        if (!mixed) {
            spattn__free(tg);
            tg = NULL;
        }
        if (any) {
            if (spattn__keyrows_build(m, g, tg, &s->keyrows[i]) != SPATTN_OK)
                return SPATTN_E_NOMEM;
            spattn__keyrows_mark_local(&s->keyrows[i], s->shape.dim_qk, s->shape.dim_v);
        } else {
            spattn__free(tg);
        }
    }
    /* The packed decode schedule runs no tile pairs: its units are one query tile per KV head
       (rows = the group's heads). */
    s->pairs = kt->attn_tiles2 != NULL && !s->rows_are_heads;
    return SPATTN_OK;
}

spattn_status spattn__schedule_plan(spattn_schedule *s, const spattn_kernel_table *kt,
                                    spattn_path path, int nthreads)
{
    const size_t nqt = s->nqt;
    spattn_status st = spattn__schedule_paths(s, kt, path);
    if (st != SPATTN_OK)
        return st;
    /* The packed decode schedule always cuts guided chunks: its units are few and that is how
       it was tuned. */
    uint64_t cost_all = 0, cost_gather = 0;
    for (size_t u = 0; u < spattn__schedule_units(s); u++) {
        const spattn_unit x = spattn__schedule_unit(s, u);
        const int g = s->gather[x.mi * nqt + x.qt] == SPATTN_QT_GATHER;
        const uint64_t c = spattn__schedule_unit_cost(s, u);
        s->gather_tiles += (size_t)g;
        s->mixed_tiles += s->gather[x.mi * nqt + x.qt] == SPATTN_QT_MIXED;
        cost_all += c;
        /* mixed tiles too: a run of them is one call that reorders its query tiles */
        cost_gather += g || s->gather[x.mi * nqt + x.qt] == SPATTN_QT_MIXED ? c : 0;
    }
    const int gather_bound = !s->rows_are_heads && 2 * cost_gather > cost_all;
    const spattn_cut_src src = {unit_cost_cb, s->pairs ? pair_first_cb : NULL, s,
                                spattn__schedule_units(s)};
    return spattn__cut_chunks(&src, nthreads, cost_all, gather_bound, &s->chunk_start, &s->nchunks)
               ? SPATTN_OK
               : SPATTN_E_NOMEM;
}

size_t spattn__schedule_gather_rows(const spattn_schedule *s)
{
    if (s->gather_tiles == 0 && s->mixed_tiles == 0)
        return 0;
    size_t tiles = 0; /* query tiles in the longest chunk */
    for (size_t c = 0; c < s->nchunks; c++)
        if (s->chunk_start[c + 1] - s->chunk_start[c] > tiles)
            tiles = s->chunk_start[c + 1] - s->chunk_start[c];
    return tiles * SPATTN_TQ < s->rows ? tiles * SPATTN_TQ : s->rows;
}
