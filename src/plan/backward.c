/* spattn_plan_backward: validate, lay out every query tile's pack (kernels/bwd_pack.h), then
   go through the query tiles in bands (a cut that depends on the shape and masks only), each
   band in two passes over the plan's plain schedule and its masks' key-tile lists:
     dK, dV  one unit per (batch, KV head, key tile): the group's query heads in order, each
             through the band's query tiles that store a tile in that key column, increasing,
             into the unit's own accumulators (written out in the last band); dS of each
             tile is kept in the band's store (kernels/bwd_slots.h);
     dQ      one unit per (batch, query head, query tile of the band), over its stored key
             tiles, from the kept dS (S and dP are computed once per pair); a query tile
             whose only stored tile is on the column path got its dQ in the dK/dV pass
             (kernel.h, bwd_solo_dq);
   and dL/dsinks last, on the calling thread. A unit is computed by one thread and writes only
   its own rows or kept dS, and what it computes never depends on which thread runs it or
   what else that thread runs: results are bitwise the same for any thread count, with no
   atomics. */
#include <math.h>
#include <omp.h>
#include <string.h>

#include "alloc.h"
#include "kernels/bwd_pack.h"
#include "plan/backward_ctx.h"
#include "plan/backward_hooks.h"
#include "validate.h"
#include "validate_bwd.h"

/* dL/dsink_h = -sum over the head's rows of p_sink D, p_sink = exp(sink - lse), in double in
   a fixed order. */
static void sink_grads(const bwd_ctx *x)
{
    const spattn_shape *s = &x->p->shape;
    const spattn_args *a = x->a;
    for (size_t h = 0; h < s->heads_q; h++) {
        const double sink = a->sinks[h];
        double sum = 0.0;
        for (size_t b = 0; b < s->batch && sink != -INFINITY; b++)
            for (size_t i = 0; i < s->len_q; i++) {
                const float *pk = pack_of(x, b, h, i / SPATTN_TQ);
                const double D = pk[spattn__bwd_pack_d(s->dim_qk, s->dim_v) + i % SPATTN_TQ];
                const double lse = a->lse[(b * s->heads_q + h) * s->len_q + i];
                sum -= exp(sink - lse) * D;
            }
        x->g->d_sinks[h] = (float)sum;
    }
}

/* The plan's key-tile lists, built on first use (lock-free: the first to publish wins). */
static const spattn_bwd_index *bwd_index(const spattn_plan *plan)
{
    spattn_plan *mp = (spattn_plan *)plan; /* only the atomic pointer is touched */
    spattn_bwd_index *have = atomic_load(&mp->bwd);
    if (have != NULL)
        return have;
    spattn_bwd_index *mine =
        spattn__bwd_index_build((const spattn_mask *const *)plan->plain.masks, plan->plain.n_masks);
    if (mine == NULL)
        return NULL;
    if (atomic_compare_exchange_strong(&mp->bwd, &have, mine))
        return mine;
    spattn__bwd_index_free(mine);
    return have;
}

/* Kept dS per band: 16 MiB, which bounds the memory the backward takes beyond its packs and
   accumulators (docs/backward.md). */
#define BAND_FLOATS_DEFAULT ((size_t)4 << 20)
static size_t band_floats_cap = BAND_FLOATS_DEFAULT;

void spattn__bwd_set_band_floats(size_t floats)
{
    band_floats_cap = floats > 0 ? floats : BAND_FLOATS_DEFAULT;
}

/* Cut the query tiles into bands of at most band_floats_cap floats of kept dS over every
   (b, h) (at least one query tile each), with where each (b, h) starts; returns the floats of
   the largest band (0: nothing is kept), or SIZE_MAX when out of memory. */
static size_t plan_bands(bwd_ctx *x)
{
    const spattn_shape *s = &x->p->shape;
    const size_t bh = s->batch * s->heads_q;
    x->band_q = spattn__malloc((x->nqt + 1) * sizeof(size_t));
    x->band_off = spattn__malloc((x->nqt ? x->nqt : 1) * bh * sizeof(size_t));
    if (x->band_q == NULL || x->band_off == NULL)
        return SIZE_MAX;
    size_t n = 0, most = 0, q = 0;
    while (q < x->nqt) {
        size_t *off = x->band_off + n * bh, used = 0, q1 = q;
        for (; q1 < x->nqt; q1++) {
            size_t add = 0;
            for (size_t u = 0; u < bh; u++) {
                size_t mi;
                const spattn_mask *m = mask_of(x, u / s->heads_q, u % s->heads_q, &mi);
                const size_t *f = x->ix->by_mask[mi].slots.ds_off;
                add += f[m->qt_ptr[q1 + 1]] - f[m->qt_ptr[q1]];
            }
            if (q1 > q && used + add > band_floats_cap)
                break;
            used += add;
        }
        for (size_t u = 0, o = 0; u < bh; u++) {
            size_t mi;
            const spattn_mask *m = mask_of(x, u / s->heads_q, u % s->heads_q, &mi);
            const size_t *f = x->ix->by_mask[mi].slots.ds_off;
            off[u] = o;
            o += f[m->qt_ptr[q1]] - f[m->qt_ptr[q]];
        }
        x->band_q[n++] = q;
        most = used > most ? used : most;
        q = q1;
    }
    x->band_q[n] = x->nqt;
    x->nbands = n;
    if (most > 4 * band_floats_cap) {
        /* One query tile over every (b, h) alone keeps far more than a band should (long
           keys, many heads): keep nothing and let the dQ pass recompute S and dP, in one
           band; the kernels compute the same dS either way. */
        x->band_q[1] = x->nqt;
        x->nbands = 1;
        memset(x->band_off, 0, bh * sizeof(size_t));
        return 0;
    }
    return most;
}

static void run_passes(const bwd_ctx *x, int nt)
{
    const spattn_shape *s = &x->p->shape;
    const size_t bh = s->batch * s->heads_q;
    const long nq = (long)(bh * x->nqt);
    const long nkv = (long)(s->batch * s->heads_kv * x->nkt);
#pragma omp parallel num_threads(nt) if (nt > 1)
    {
        float *mine = x->scratch + (size_t)omp_get_thread_num() * x->per_thread;
#pragma omp for schedule(static)
        for (long u = 0; u < nq; u++)
            spattn__bwd_pack_unit(x, (size_t)u);
        for (size_t n = 0; n < x->nbands; n++) {
            const bwd_band bd = {x->band_q[n], x->band_q[n + 1], x->band_off + n * bh};
            const long nqb = (long)(bh * (bd.q1 - bd.q0));
#pragma omp for schedule(dynamic, 1)
            for (long u = 0; u < nkv; u++)
                spattn__bwd_kv_unit(x, &bd, (size_t)u, mine);
#pragma omp for schedule(dynamic, 1)
            for (long u = 0; u < nqb; u++)
                spattn__bwd_q_unit(x, &bd, (size_t)u, mine);
        }
    }
}

static void free_ctx(bwd_ctx *x)
{
    spattn__free(x->band_q);
    spattn__free(x->band_off);
}

spattn_status spattn_plan_backward(const spattn_plan *plan, const spattn_args *args,
                                   const spattn_grads *g)
{
    if (plan == NULL || args == NULL || g == NULL)
        return SPATTN_E_NULL;
    if (!spattn__same_shape(&plan->shape, &args->shape))
        return SPATTN_E_SHAPE;
    spattn_status st = spattn__check_backward(args, g);
    if (st != SPATTN_OK)
        return st;

    const spattn_shape *s = &plan->shape;
    bwd_ctx x;
    memset(&x, 0, sizeof x);
    x.p = plan;
    x.a = args;
    x.g = g;
    x.scale = spattn__resolve_scale(args->scale, s->dim_qk);
    x.nqt = (s->len_q + SPATTN_TQ - 1) / SPATTN_TQ;
    x.nkt = (s->len_k + SPATTN_TK - 1) / SPATTN_TK;
    x.pf = spattn__bwd_pack_floats(s->dim_qk, s->dim_v);
    x.ldq = spattn__bwd_round16(s->dim_qk);
    x.ldv = spattn__bwd_round16(s->dim_v);
    x.ix = bwd_index(plan);
    if (x.ix == NULL)
        return SPATTN_E_NOMEM;
    const int nt = plan->nthreads > 0 ? plan->nthreads : 1;
    x.per_thread = spattn__bwd_round16(plan->kt->bwd_scratch_floats(s->dim_qk, s->dim_v));
    /* Sizes: the packs are a few times the size of Q and dO, the accumulators twice K and V
       rounded to whole key tiles, which check_shape bounds; the kept dS is capped per band. */
    const size_t units = s->batch * s->heads_q * x.nqt;
    const size_t kv_floats = s->batch * s->heads_kv * x.nkt * SPATTN_TK * (x.ldq + x.ldv);
    if (units > SIZE_MAX / sizeof(float) / x.pf)
        return SPATTN_E_NOMEM;
    const size_t kept = plan_bands(&x);
    spattn_bwd_ws *ws = NULL;
    if (kept != SIZE_MAX)
        ws = spattn__bwd_ws_take((spattn_plan *)plan, units * x.pf, kv_floats, kept,
                                 (size_t)nt * x.per_thread);
    if (ws == NULL) {
        free_ctx(&x);
        return SPATTN_E_NOMEM;
    }
    x.packs = ws->packs;
    x.dkv = ws->dkv;
    x.ds = kept > 0 ? ws->ds : NULL;
    x.scratch = ws->scratch;
    run_passes(&x, nt);
    if (args->sinks != NULL && g->d_sinks != NULL)
        sink_grads(&x);
    spattn__bwd_ws_give((spattn_plan *)plan, ws);
    free_ctx(&x);
    return SPATTN_OK;
}
