/* Running a plan: validate the call's tensors, then hand each unit (one query tile of one
   batch/head) to the plan's kernel table. */
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
   gather flags), and returns how many tiles it ran: a run of gather tiles goes to the kernel
   in one call, which lets it pass over their rows together. */
static size_t run_units(const spattn_plan *p, const spattn_head_job *job, const spattn_mask *m,
                        const spattn_keyrows *kr, size_t qt, const uint8_t *g, size_t avail,
                        float *scratch)
{
    if (!g[0]) {
        if (spattn__qt_empty(m, qt))
            empty_tile(job, m, qt);
        else
            p->kt->attn_tiles(job, m, qt, scratch);
        return 1;
    }
    size_t n = 1;
    while (n < avail && g[n])
        n++;
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
        scratch = spattn__aligned_alloc(plan->scratch_per_thread * sizeof(float) *
                                        (size_t)plan->nthreads);
        if (scratch == NULL)
            return SPATTN_E_NOMEM;
        own = 1;
    }

    exec_ctx x = {plan, args, spattn__resolve_scale(args->scale, plan->shape.dim_qk)};
    size_t chunks = plan->run->nchunks;
    int nt = plan->nthreads;
    if ((size_t)nt > chunks)
        nt = (int)chunks;
    if (nt <= 1) {
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
