/* Running a plan: validate the call's tensors, then hand each unit (one query tile of one
   batch/head) to the plan's kernel table; a split plan runs each unit's key segments and
   merges them (split.h). */
#include <math.h>
#include <omp.h>
#include <stdatomic.h>
#include <string.h>

#include "alloc.h"
#include "convert.h"
#include "plan/plan_internal.h"
#include "validate.h"

typedef struct exec_ctx {
    const spattn_plan *p;
    const spattn_args *a;
    float scale;
} exec_ctx;

/* The job of query head h (its rows `row_stride` apart) on KV head hk of batch b; lse points
   at the entry of the job's row 0. */
static spattn_head_job make_job(const exec_ctx *x, size_t b, size_t h, size_t hk,
                                ptrdiff_t q_row_stride, ptrdiff_t o_row_stride, float *lse)
{
    const spattn_args *a = x->a;
    spattn_head_job job;
    /* Byte offsets: strides count elements of each tensor's own type. */
    const ptrdiff_t qs = (ptrdiff_t)spattn__dtype_size(a->q_dtype),
                    kvs = (ptrdiff_t)spattn__dtype_size(a->kv_dtype),
                    os = (ptrdiff_t)spattn__dtype_size(a->o_dtype);
    job.q = (const char *)a->q +
            ((ptrdiff_t)b * a->q_layout.batch + (ptrdiff_t)h * a->q_layout.head) * qs;
    job.k = (const char *)a->k +
            ((ptrdiff_t)b * a->k_layout.batch + (ptrdiff_t)hk * a->k_layout.head) * kvs;
    job.v = (const char *)a->v +
            ((ptrdiff_t)b * a->v_layout.batch + (ptrdiff_t)hk * a->v_layout.head) * kvs;
    job.o =
        (char *)a->o + ((ptrdiff_t)b * a->o_layout.batch + (ptrdiff_t)h * a->o_layout.head) * os;
    job.q_dtype = a->q_dtype;
    job.kv_dtype = a->kv_dtype;
    job.o_dtype = a->o_dtype;
    job.lse = lse;
    job.q_ts = q_row_stride;
    job.k_ts = a->k_layout.token;
    job.v_ts = a->v_layout.token;
    job.o_ts = o_row_stride;
    job.dim_qk = x->p->shape.dim_qk;
    job.dim_v = x->p->shape.dim_v;
    job.scale = x->scale;
    job.softcap = a->softcap;
    job.stream_kv = 0;
    job.v16_stage = x->p->v16_stage;
    job.slopes = a->alibi_slopes ? a->alibi_slopes + h : NULL;
    job.sinks = a->sinks ? a->sinks + h : NULL;
    job.mod_step = 0;
    /* Formed only with ALiBi: validation bounds pos_offset then, and only then. */
    job.pos0 = a->alibi_slopes
                   ? (ptrdiff_t)x->p->shape.len_k - (ptrdiff_t)x->p->shape.len_q + a->pos_offset
                   : 0;
    job.pos_step = 1;
    return job;
}

/* A query tile with no allowed pair: its rows are zeros and their lse -inf (or their sink),
   what every kernel gives rows it finds nothing for, written here without a kernel call
   (which would pack Q and clear its accumulators for nothing: most query tiles of very sparse
   block masks are empty, and so is a decode group whose heads all allow nothing). */
static void empty_tile(const spattn_head_job *job, const spattn_mask *m, size_t qt)
{
    const size_t i0 = qt * SPATTN_TQ, rows = spattn__qt_rows(m, qt);
    for (size_t r = 0; r < rows; r++) {
        const size_t es = spattn__dtype_size(job->o_dtype); /* zero bits are +0 in every type */
        memset((char *)job->o + (ptrdiff_t)(i0 + r) * job->o_ts * (ptrdiff_t)es, 0,
               job->dim_v * es);
        if (job->lse)
            job->lse[i0 + r] =
                job->sinks ? job->sinks[(ptrdiff_t)(i0 + r) * job->mod_step] : -INFINITY;
    }
}

/* Runs query tile qt of a head, of whose tiles qt .. qt + avail - 1 are this chunk's (g: their
   gather flags), and returns how many tiles it ran: a run of gather (or of mixed) tiles goes to
   the kernel in one call, which lets it pass over their rows together. */
static size_t run_units(const spattn_plan *p, const spattn_head_job *job, const spattn_mask *m,
                        const spattn_keyrows *kr, size_t qt, const uint8_t *g, size_t avail,
                        float *scratch)
{
    if (g[0] == SPATTN_QT_TILES) {
        if (spattn__qt_empty(m, qt))
            empty_tile(job, m, qt);
        else
            p->kt->attn_tiles(job, m, qt, scratch);
        return 1;
    }
    size_t n = 1;
    while (n < avail && g[n] == g[0])
        n++;
    if (g[0] == SPATTN_QT_MIXED)
        p->kt->attn_mixed(job, m, kr, qt, n, scratch);
    else
        p->kt->attn_gather(job, kr, qt, n, scratch);
    return n;
}

static atomic_int pairs_off; /* test hook: spattn__set_tile_pairs */

void spattn__set_tile_pairs(int on)
{
    atomic_store(&pairs_off, !on);
}

/* The units of chunk c of the plan's schedule. A packed decode unit's rows are the query heads
   h .. of one KV head, so its row stride is the head stride (len_q == 1: lse is one entry per
   head, and lse + (b * heads_q + h) * len_q points at head h's either way). */
static void run_chunk(const exec_ctx *x, size_t c, float *scratch)
{
    const spattn_plan *p = x->p;
    const spattn_schedule *s = p->run;
    const spattn_args *a = x->a;
    const int pairs = s->pairs && !atomic_load_explicit(&pairs_off, memory_order_relaxed);
    const ptrdiff_t q_rs = s->rows_are_heads ? a->q_layout.head : a->q_layout.token;
    const ptrdiff_t o_rs = s->rows_are_heads ? a->o_layout.head : a->o_layout.token;
    const size_t end = s->chunk_start[c + 1];
    for (size_t u = s->chunk_start[c]; u < end;) {
        const spattn_unit n = spattn__schedule_unit(s, u);
        float *lse = a->lse ? a->lse + (n.b * p->shape.heads_q + n.h) * p->shape.len_q : NULL;
        spattn_head_job job = make_job(x, n.b, n.h, n.hk, q_rs, o_rs, lse);
        job.stream_kv = s->nqt == 1;
        if (s->rows_are_heads) {
            job.mod_step = 1;
            job.pos_step = 0;
        }
        const uint8_t *g = &s->gather[n.mi * s->nqt + n.qt];
        const spattn_mask *m = s->masks[n.mi];
        /* Two query tiles of a head on the tile path in one call when both are in this chunk
           (each K/V tile loaded once for both); rows get the same bits either way, so where
           chunks are cut does not matter. */
        if (pairs && n.qt % 2 == 0 && n.qt + 1 < s->nqt && u + 1 < end && !g[0] && !g[1] &&
            !spattn__qt_empty(m, n.qt)) {
            p->kt->attn_tiles2(&job, m, n.qt, scratch);
            u += 2;
            continue;
        }
        const size_t avail = end - u < s->nqt - n.qt ? end - u : s->nqt - n.qt;
        u += run_units(p, &job, m, &s->keyrows[n.mi], n.qt, g, avail, scratch);
    }
}

/* The job of item i of the split (split.h): unit head g's query tile qt on segment seg. A
   segment of a mask cut in several reads its keys from K and V advanced to its first key
   k0, so an ALiBi position moves back by k0; only the first segment has the sinks; its rows
   go to the segment's slot in out. */
static spattn_head_job item_job(const exec_ctx *x, const spattn_split_item *it, float *out,
                                spattn_unit *unit)
{
    const spattn_plan *p = x->p;
    const spattn_split *sp = &p->split;
    const spattn_schedule *run = p->run;
    const spattn_args *a = x->a;
    const spattn_unit n = spattn__schedule_unit(run, it->g * run->nqt + it->qt);
    const ptrdiff_t q_rs = run->rows_are_heads ? a->q_layout.head : a->q_layout.token;
    const ptrdiff_t o_rs = run->rows_are_heads ? a->o_layout.head : a->o_layout.token;
    float *lse = a->lse ? a->lse + (n.b * p->shape.heads_q + n.h) * p->shape.len_q : NULL;
    spattn_head_job job = make_job(x, n.b, n.h, n.hk, q_rs, o_rs, lse);
    job.stream_kv = run->nqt == 1;
    if (run->rows_are_heads) {
        job.mod_step = 1;
        job.pos_step = 0;
    }
    *unit = n;
    const size_t f = sp->first[n.mi], nseg = sp->first[n.mi + 1] - f, s = it->seg - f;
    if (nseg == 1)
        return job;
    const size_t k0 = sp->k0[it->seg], rows = run->rows, dv = p->shape.dim_v;
    const ptrdiff_t es = (ptrdiff_t)spattn__dtype_size(job.kv_dtype);
    job.k = (const char *)job.k + (ptrdiff_t)k0 * job.k_ts * es;
    job.v = (const char *)job.v + (ptrdiff_t)k0 * job.v_ts * es;
    if (job.slopes != NULL)
        job.pos0 -= (ptrdiff_t)k0;
    if (s > 0)
        job.sinks = NULL;
    float *slot = out + sp->slot[it->g];
    job.o = slot + s * rows * dv;
    job.o_ts = (ptrdiff_t)dv;
    job.o_dtype = SPATTN_DTYPE_F32; /* rounded to o_dtype once, at the merge */
    job.lse = slot + nseg * rows * dv + s * rows;
    return job;
}

/* The items of chunk c of the split, as run_chunk runs units. */
static void run_items(const exec_ctx *x, size_t c, float *scratch, float *out)
{
    const spattn_plan *p = x->p;
    const spattn_split *sp = &p->split;
    const spattn_schedule *s = &sp->segs;
    const int pairs = s->pairs && !atomic_load_explicit(&pairs_off, memory_order_relaxed);
    const size_t end = s->chunk_start[c + 1];
    for (size_t i = s->chunk_start[c]; i < end;) {
        const spattn_split_item *it = &sp->items[i];
        spattn_unit n;
        const spattn_head_job job = item_job(x, it, out, &n);
        const uint8_t *g = &s->gather[it->seg * s->nqt + it->qt];
        const spattn_mask *m = s->masks[it->seg];
        /* Items i and i + 1 are tiles qt and qt + 1 of one segment when qt is even (split.c
           lists them so). */
        if (pairs && it->qt % 2 == 0 && it->qt + 1 < s->nqt && i + 1 < end && !g[0] && !g[1] &&
            !spattn__qt_empty(m, it->qt)) {
            p->kt->attn_tiles2(&job, m, it->qt, scratch);
            i += 2;
            continue;
        }
        const size_t avail = end - i < s->nqt - it->qt ? end - i : s->nqt - it->qt;
        i += run_units(p, &job, m, &s->keyrows[it->seg], it->qt, g, avail, scratch);
    }
}

/* Merges the segments of unit u of the run schedule (its mask cut in several) into o and lse,
   row by row, in segment order; a row of a 16-bit o is merged into tmp (dim_v floats) and
   rounded once as it is stored. */
static void merge_unit(const exec_ctx *x, size_t u, const float *out, float *tmp)
{
    const spattn_plan *p = x->p;
    const spattn_split *sp = &p->split;
    const spattn_schedule *run = p->run;
    const spattn_args *a = x->a;
    const spattn_unit n = spattn__schedule_unit(run, u);
    const size_t g = u / run->nqt, nseg = spattn__split_nseg(sp, n.mi);
    const size_t rows = run->rows, dv = p->shape.dim_v, i0 = n.qt * SPATTN_TQ;
    const size_t here = rows - i0 < SPATTN_TQ ? rows - i0 : SPATTN_TQ;
    const ptrdiff_t o_rs = run->rows_are_heads ? a->o_layout.head : a->o_layout.token;
    const ptrdiff_t os = (ptrdiff_t)spattn__dtype_size(a->o_dtype);
    char *o = (char *)a->o +
              ((ptrdiff_t)n.b * a->o_layout.batch + (ptrdiff_t)n.h * a->o_layout.head) * os;
    float *lse = a->lse ? a->lse + (n.b * p->shape.heads_q + n.h) * p->shape.len_q : NULL;
    const float *slot = out + sp->slot[g];
    const float *op[SPATTN_SPLIT_MAX_SEGS], *lp[SPATTN_SPLIT_MAX_SEGS];
    for (size_t i = i0; i < i0 + here; i++) {
        for (size_t s = 0; s < nseg; s++) {
            op[s] = slot + (s * rows + i) * dv;
            lp[s] = slot + nseg * rows * dv + s * rows + i;
        }
        float row_lse;
        char *orow = o + (ptrdiff_t)i * o_rs * os;
        float *dst = a->o_dtype == SPATTN_DTYPE_F32 ? (float *)orow : tmp;
        p->kt->merge_rows(nseg, 1, dv, op, lp, dst, lse ? lse + i : &row_lse);
        if (dst == tmp)
            spattn__store_row(orow, a->o_dtype, tmp, dv);
    }
}

/* A split plan: every item, then (once all are done) every merge. */
static void run_split(const exec_ctx *x, int nt, float *scratch)
{
    const spattn_plan *p = x->p;
    const spattn_split *sp = &p->split;
    float *out = scratch + p->scratch_per_thread * (size_t)p->nthreads;
    if (nt <= 1) {
        for (size_t c = 0; c < sp->segs.nchunks; c++)
            run_items(x, c, scratch, out);
        for (size_t k = 0; k < sp->merge_units; k++)
            merge_unit(x, sp->merges[k], out, scratch);
        return;
    }
    const long nchunks = (long)sp->segs.nchunks, nmerge = (long)sp->merge_units;
#pragma omp parallel num_threads(nt)
    {
        float *mine = scratch + (size_t)omp_get_thread_num() * p->scratch_per_thread;
        /* The first loop's implied barrier: every segment is written before a merge reads it. */
#pragma omp for schedule(dynamic, 1)
        for (long c = 0; c < nchunks; c++)
            run_items(x, (size_t)c, mine, out);
#pragma omp for schedule(static)
        for (long k = 0; k < nmerge; k++)
            merge_unit(x, sp->merges[k], out, mine);
    }
}

spattn_status spattn_plan_execute(const spattn_plan *plan, const spattn_args *args)
{
    if (plan == NULL || args == NULL)
        return SPATTN_E_NULL;
    if (!spattn__same_shape(&plan->shape, &args->shape))
        return SPATTN_E_SHAPE;
    spattn_status st = spattn__check_tensors(args);
    if (st != SPATTN_OK)
        return st;

    /* The plan's own scratch serves one execute at a time; a concurrent one (several threads
       sharing a plan) brings its own, so execute stays thread-safe. */
    spattn_plan *mp = (spattn_plan *)plan; /* only the atomic flag is touched */
    float *scratch = plan->scratch;
    int own = 0;
    if (atomic_flag_test_and_set(&mp->scratch_busy)) {
        scratch = spattn__aligned_alloc(plan->scratch_floats * sizeof(float));
        if (scratch == NULL)
            return SPATTN_E_NOMEM;
        own = 1;
    }

    exec_ctx x = {plan, args, spattn__resolve_scale(args->scale, plan->shape.dim_qk)};
    size_t chunks = plan->split.nseg ? plan->split.segs.nchunks : plan->run->nchunks;
    int nt = plan->nthreads;
    if ((size_t)nt > chunks)
        nt = (int)chunks;
    if (plan->split.nseg) {
        run_split(&x, nt, scratch);
    } else if (nt <= 1) {
        for (size_t c = 0; c < chunks; c++)
            run_chunk(&x, c, scratch);
    } else {
        long nchunks = (long)chunks;
#pragma omp parallel num_threads(nt)
        {
            float *mine = scratch + (size_t)omp_get_thread_num() * plan->scratch_per_thread;
#pragma omp for schedule(dynamic, 1)
            for (long c = 0; c < nchunks; c++)
                run_chunk(&x, (size_t)c, mine);
        }
    }

    if (own)
        spattn__aligned_free(scratch);
    else
        atomic_flag_clear(&mp->scratch_busy);
    return SPATTN_OK;
}
