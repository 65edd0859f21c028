/* Plans: everything that depends only on shape, masks, ISA and threads, done once: the plain
   schedule (schedule.h), the packed decode one where it applies (pack.h), the split-KV
   segments where the units are few (split.h), and scratch. */
#include <omp.h>
#include <stdatomic.h>

#include "alloc.h"
#include "cpu.h"
#include "kernels/dispatch.h"
#include "plan/pack.h"
#include "plan/plan_internal.h"
#include "validate.h"

static atomic_int v16_force; /* test hook: 0 the CPU's choice, 1 + spattn__set_v16_stage's */

void spattn__set_v16_stage(int on)
{
    atomic_store(&v16_force, on < 0 ? 0 : 1 + (on != 0));
}

void spattn_plan_free(spattn_plan *p)
{
    if (p == NULL)
        return;
    spattn__schedule_free(&p->plain);
    spattn__schedule_free(&p->packed);
    spattn__split_free(&p->split);
    spattn__bwd_index_free(atomic_load(&p->bwd));
    spattn__bwd_ws_free(atomic_load(&p->bwd_ws));
    spattn__aligned_free(p->scratch);
    spattn__free(p);
}

/* Residue blocks (keyrows.h) larger than this many floats per thread are not worth their
   memory: long rows of progressions then take the plain gather passes. */
static _Atomic size_t prog_max_floats = (size_t)1 << 24; /* test hook: spattn__set_prog_max */

void spattn__set_prog_max(size_t floats)
{
    prog_max_floats = floats != 0 ? floats : (size_t)1 << 24;
}

static void cap_prog(spattn_schedule *s, const spattn_shape *shape)
{
    for (size_t i = 0; s->keyrows != NULL && i < s->n_masks; i++)
        if (spattn__keyrows_prog_floats(&s->keyrows[i], 1, shape->dim_qk, shape->dim_v) >
            prog_max_floats)
            spattn__keyrows_drop_prog(&s->keyrows[i]);
}

spattn_status spattn__plan_create_path(const spattn_shape *shape, const spattn_mask *const *masks,
                                       size_t n_masks, const spattn_options *opt, spattn_path path,
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
    if (nthreads > SPATTN_MAX_THREADS)
        nthreads = SPATTN_MAX_THREADS;

    spattn_plan *p = spattn__calloc(1, sizeof *p);
    if (p == NULL)
        return SPATTN_E_NOMEM;
    p->shape = *shape;
    p->kt = kt;
    p->nthreads = nthreads;
    const int v16 = atomic_load_explicit(&v16_force, memory_order_relaxed);
    p->v16_stage = v16 != 0 ? v16 == 2 : (spattn__cpu()->bits & SPATTN_CPU_WIDEN_BESIDE_FMA) == 0;
    atomic_flag_clear(&p->scratch_busy);

    /* No mask means one all-allowed mask owned by the plan. */
    if (spattn__schedule_init(&p->plain, shape, n_masks, 1, n_masks == 0 ? 1 : n_masks) !=
        SPATTN_OK)
        goto nomem;
    if (n_masks == 0) {
        spattn_mask *all;
        if (spattn__mask_all(shape->len_q, shape->len_k, &all) != SPATTN_OK)
            goto nomem;
        p->plain.masks[0] = all;
    } else {
        for (size_t i = 0; i < n_masks; i++) {
            spattn__mask_retain(masks[i]);
            p->plain.masks[i] = masks[i];
        }
    }
    if (spattn__schedule_plan(&p->plain, kt, path, nthreads) != SPATTN_OK)
        goto nomem;
    int packed;
    if (spattn__schedule_pack(&p->plain, kt, path, nthreads, &p->packed, &packed) != SPATTN_OK)
        goto nomem;
    p->run = packed ? &p->packed : &p->plain;
    if (spattn__split_build(p->run, kt, path, nthreads, &p->split) != SPATTN_OK)
        goto nomem;
    /* A thread with no chunk of its own would only cost scratch memory. */
    const size_t chunks = p->split.nseg ? p->split.segs.nchunks : p->run->nchunks;
    if ((size_t)p->nthreads > chunks)
        p->nthreads = (int)chunks;

    cap_prog(&p->plain, shape);
    if (p->run == &p->packed)
        cap_prog(&p->packed, shape);
    if (p->split.nseg)
        cap_prog(&p->split.segs, shape);
    const size_t gather_keys = spattn__keyrows_longest(p->run->keyrows, p->run->n_masks);
    /* The gather path's residue blocks come after the kernel's own scratch (gather.h). */
    size_t per =
        kt->scratch_floats(shape->dim_qk, shape->dim_v, spattn__schedule_gather_rows(p->run),
                           gather_keys) +
        spattn__keyrows_prog_floats(p->run->keyrows, p->run->n_masks, shape->dim_qk, shape->dim_v);
    if (p->split.nseg) {
        const spattn_schedule *sg = &p->split.segs;
        size_t seg =
            kt->scratch_floats(shape->dim_qk, shape->dim_v, p->split.gather_rows,
                               spattn__keyrows_longest(sg->keyrows, sg->n_masks)) +
            spattn__keyrows_prog_floats(sg->keyrows, sg->n_masks, shape->dim_qk, shape->dim_v);
        per = seg > per ? seg : per;
    }
    p->scratch_per_thread = (per + 15) / 16 * 16; /* keep each thread's part 64-byte aligned */
    p->scratch_floats = p->scratch_per_thread * (size_t)p->nthreads + p->split.scratch_floats;
    p->scratch = spattn__aligned_alloc(p->scratch_floats * sizeof(float));
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
    const spattn_schedule *s = &p->plain;
    for (size_t c = 0; costs != NULL && c < s->nchunks; c++) {
        costs[c] = 0;
        for (size_t u = s->chunk_start[c]; u < s->chunk_start[c + 1]; u++)
            costs[c] += spattn__schedule_unit_cost(s, u);
    }
    return s->nchunks;
}

int spattn__plan_packed(const spattn_plan *plan)
{
    return plan ? plan->run == &plan->packed : 0;
}

size_t spattn__plan_gather_tiles(const spattn_plan *plan)
{
    return plan ? plan->plain.gather_tiles : 0;
}

size_t spattn__plan_prog_rows(const spattn_plan *plan)
{
    size_t rows = 0;
    const spattn_schedule *s = plan ? plan->run : NULL;
    for (size_t m = 0; s != NULL && s->keyrows != NULL && m < s->n_masks; m++)
        for (size_t i = 0; s->keyrows[m].prog != NULL && i < s->keyrows[m].len_q; i++)
            rows += s->keyrows[m].prog[i] != 0;
    return rows;
}

size_t spattn__plan_mixed_tiles(const spattn_plan *plan, size_t *listed_tiles)
{
    size_t listed = 0;
    if (plan != NULL) {
        const spattn_schedule *s = &plan->plain;
        for (size_t u = 0; u < spattn__schedule_units(s); u++) {
            const spattn_unit x = spattn__schedule_unit(s, u);
            if (s->gather[x.mi * s->nqt + x.qt] != SPATTN_QT_MIXED)
                continue;
            const spattn_mask *m = s->masks[x.mi];
            for (size_t t = m->qt_ptr[x.qt]; t < m->qt_ptr[x.qt + 1]; t++)
                listed += s->keyrows[x.mi].tile_gather[t];
        }
    }
    if (listed_tiles != NULL)
        *listed_tiles = listed;
    return plan ? plan->plain.mixed_tiles : 0;
}

size_t spattn_plan_kv_segments(const spattn_plan *plan, size_t b, size_t h, size_t *bounds,
                               size_t cap)
{
    if (plan == NULL || b >= plan->shape.batch || h >= plan->shape.heads_q)
        return 0;
    const spattn_schedule *run = plan->run;
    const spattn_split *sp = &plan->split;
    /* The unit head of (b, h): a packed schedule runs a KV group under its first head's mask. */
    const size_t hh = h / run->head_step;
    const size_t mi = spattn__schedule_unit(run, (b * run->heads + hh) * run->nqt).mi;
    const size_t n = spattn__split_nseg(sp, mi);
    if (bounds != NULL && cap >= n + 1) {
        bounds[0] = 0;
        for (size_t s = 0; s < n; s++)
            bounds[s + 1] = sp->nseg ? sp->k1[sp->first[mi] + s] : plan->shape.len_k;
    }
    return n;
}
