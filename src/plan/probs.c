/* Attention probabilities of the allowed pairs (spattn_probs).
 *
 * Two passes. First every unit (query tile of one batch/head) runs the plan's own kernel with a
 * one-wide all-zero V, which costs little beyond QK^T and yields each row's lse exactly as
 * spattn_plan_execute computes it; the unit's probabilities are written right after, while its
 * Q and K rows are still in cache. Second, column sums: each (batch, head) is summed by one
 * thread, rows in order, in float64, so the result does not depend on the thread count. */
#include <math.h>
#include <omp.h>
#include <stdalign.h>
#include <stdint.h>
#include <string.h>

#include "alloc.h"
#include "convert.h"
#include "plan/plan_internal.h"
#include "validate.h"

/* The stand-in V row: read by the kernels for every allowed key (token stride 0), never
   written. Padded so that a kernel loading a full vector from a row of dim 1 stays inside.
   All-zero bits are +0 in every element type, so it serves as V of the call's kv_dtype. */
static alignas(64) const float zero_v[16];

static size_t mask_index_bh(const spattn_plan *p, size_t bh)
{
    return spattn__mask_index(&p->shape, p->plain.n_masks_arg, bh / p->shape.heads_q,
                              bh % p->shape.heads_q);
}

uint64_t spattn_plan_probs_len(const spattn_plan *plan)
{
    if (plan == NULL)
        return 0;
    uint64_t n = 0;
    size_t nbh = plan->shape.batch * plan->shape.heads_q;
    for (size_t bh = 0; bh < nbh; bh++)
        n += plan->plain.masks[mask_index_bh(plan, bh)]->nnz;
    return n;
}

uint64_t spattn_plan_probs_offset(const spattn_plan *plan, size_t b, size_t h)
{
    if (plan == NULL || b >= plan->shape.batch || h >= plan->shape.heads_q)
        return UINT64_MAX;
    uint64_t n = 0;
    for (size_t bh = 0; bh < b * plan->shape.heads_q + h; bh++)
        n += plan->plain.masks[mask_index_bh(plan, bh)]->nnz;
    return n;
}

const spattn_mask *spattn_plan_mask(const spattn_plan *plan, size_t b, size_t h)
{
    if (plan == NULL || b >= plan->shape.batch || h >= plan->shape.heads_q)
        return NULL;
    return plan->plain.masks[spattn__mask_index(&plan->shape, plan->plain.n_masks_arg, b, h)];
}

/* ---- validation ------------------------------------------------------------------------ */

static spattn_status check_call(const spattn_plan *p, const spattn_args *a, const float *probs,
                                const float *col_sums)
{
    if (p == NULL || a == NULL || (probs == NULL && col_sums == NULL))
        return SPATTN_E_NULL;
    if (!spattn__same_shape(&p->shape, &a->shape))
        return SPATTN_E_SHAPE;
    return spattn__check_probs(a, probs, spattn_plan_probs_len(p), col_sums);
}

/* ---- computation ----------------------------------------------------------------------- */

typedef struct probs_ctx {
    const spattn_plan *p;
    const spattn_args *a;
    float scale;      /* resolved, exactly as the kernels get it */
    ptrdiff_t pos0;   /* i' = i + pos0 (ALiBi only; see spattn_args) */
    float *lse;       /* [batch * heads_q][len_q], written by the kernels */
    float *probs;     /* NULL when only column sums are wanted */
    uint64_t *bh_off; /* batch * heads_q + 1 offsets into probs */
    uint64_t *qt_off; /* per plan mask: nqt + 1 offsets of query tiles within a head */
    float *scratch;   /* per thread: kernel scratch, then 16 floats of dummy O */
    size_t scratch_per_thread, kernel_scratch;
    uint32_t *cols; /* per thread: len_k column indices of one row */
    float *vals;    /* per thread: len_k values of one row (column sums only) */
    double *acc;    /* per thread: len_k column accumulators */
} probs_ctx;

/* Byte pointers to head bh's Q and K (strides count elements of each one's type). */
static const char *q_head(const probs_ctx *x, size_t bh)
{
    const spattn_args *a = x->a;
    size_t b = bh / a->shape.heads_q, h = bh % a->shape.heads_q;
    return (const char *)a->q +
           ((ptrdiff_t)b * a->q_layout.batch + (ptrdiff_t)h * a->q_layout.head) *
               (ptrdiff_t)spattn__dtype_size(a->q_dtype);
}

static const char *k_head(const probs_ctx *x, size_t bh)
{
    const spattn_args *a = x->a;
    size_t b = bh / a->shape.heads_q, h = bh % a->shape.heads_q;
    size_t hk = h / (a->shape.heads_q / a->shape.heads_kv);
    return (const char *)a->k +
           ((ptrdiff_t)b * a->k_layout.batch + (ptrdiff_t)hk * a->k_layout.head) *
               (ptrdiff_t)spattn__dtype_size(a->kv_dtype);
}

/* Q row i of a head as a byte pointer. */
static const char *q_row_of(const probs_ctx *x, const char *qh, size_t i)
{
    return qh + (ptrdiff_t)i * x->a->q_layout.token * (ptrdiff_t)spattn__dtype_size(x->a->q_dtype);
}

/* p = exp(s - lse) of row i of head h for the given keys, s formed in float64 as the
   reference does; the kernel's float lse (which includes the row's sink) keeps the row sum at
   1 (less the sink's share) to float precision. */
static void row_vals(const probs_ctx *x, size_t h, size_t i, const char *qi, const char *k,
                     const uint32_t *cols, size_t n, float lse, float *out)
{
    const size_t d = x->a->shape.dim_qk;
    const spattn_dtype qt = x->a->q_dtype, kt = x->a->kv_dtype;
    const ptrdiff_t kts = x->a->k_layout.token * (ptrdiff_t)spattn__dtype_size(kt);
    const double scale = x->scale, cap = x->a->softcap;
    const double slope = x->a->alibi_slopes ? x->a->alibi_slopes[h] : 0.0;
    const ptrdiff_t pos = x->a->alibi_slopes ? x->pos0 + (ptrdiff_t)i : 0;
    for (size_t c = 0; c < n; c++) {
        const char *kj = k + (ptrdiff_t)cols[c] * kts;
        /* Independent partial sums: the float64 adds are latency-bound otherwise (and the
           compiler may pair them into vectors). */
        double acc[8] = {0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0};
        size_t t = 0;
        for (; t + 8 <= d; t += 8)
            for (int u = 0; u < 8; u++)
                acc[u] += (double)spattn__load_f32(qi, (ptrdiff_t)(t + (size_t)u), qt) *
                          (double)spattn__load_f32(kj, (ptrdiff_t)(t + (size_t)u), kt);
        for (; t < d; t++)
            acc[0] += (double)spattn__load_f32(qi, (ptrdiff_t)t, qt) *
                      (double)spattn__load_f32(kj, (ptrdiff_t)t, kt);
        double s = scale * (((acc[0] + acc[4]) + (acc[1] + acc[5])) +
                            ((acc[2] + acc[6]) + (acc[3] + acc[7])));
        if (cap != 0.0)
            s = cap * tanh(s / cap);
        if (slope != 0.0) {
            const ptrdiff_t dist = pos - (ptrdiff_t)cols[c];
            s -= slope * (double)(dist < 0 ? -dist : dist);
        }
        /* s - lse <= ~0 and small in magnitude: rounding it to float before expf costs
           far less than the 2e-5 budget. */
        out[c] = expf((float)(s - (double)lse));
    }
}

static void run_unit(const probs_ctx *x, size_t u, float *scratch, uint32_t *cols)
{
    const spattn_plan *p = x->p;
    const spattn_shape *s = &p->shape;
    size_t bh = u / p->plain.nqt, qt = u % p->plain.nqt, mi = mask_index_bh(p, bh);
    const spattn_mask *m = p->plain.masks[mi];
    spattn_head_job job;
    job.q = q_head(x, bh);
    job.k = k_head(x, bh);
    job.v = zero_v;
    job.o = scratch + x->kernel_scratch; /* every row lands on one dummy row (token stride 0) */
    job.q_dtype = x->a->q_dtype;
    job.kv_dtype = x->a->kv_dtype;
    job.o_dtype = SPATTN_DTYPE_F32;
    job.lse = x->lse + bh * s->len_q;
    job.q_ts = x->a->q_layout.token;
    job.k_ts = x->a->k_layout.token;
    job.v_ts = 0;
    job.o_ts = 0;
    job.dim_qk = s->dim_qk;
    job.dim_v = 1;
    job.scale = x->scale;
    job.softcap = x->a->softcap;
    job.stream_kv = 0;
    job.v16_stage = p->v16_stage;
    const size_t h = bh % s->heads_q;
    job.slopes = x->a->alibi_slopes ? x->a->alibi_slopes + h : NULL;
    job.sinks = x->a->sinks ? x->a->sinks + h : NULL;
    job.mod_step = 0;
    job.pos0 = x->pos0;
    job.pos_step = 1;
    /* A mixed query tile lists only some of its keys: the tile path computes it whole. */
    if (p->plain.gather[mi * p->plain.nqt + qt] == SPATTN_QT_GATHER) {
        p->kt->attn_gather(&job, &p->plain.keyrows[mi], qt, 1, scratch);
    } else if (spattn__qt_empty(m, qt)) {
        return; /* no allowed pair: no probabilities, and no lse to compute them from */
    } else {
        p->kt->attn_tiles(&job, m, qt, scratch);
    }

    if (x->probs == NULL)
        return;
    float *out = x->probs + x->bh_off[bh] + x->qt_off[mi * (p->plain.nqt + 1) + qt];
    size_t i0 = qt * SPATTN_TQ, rows = spattn__qt_rows(m, qt);
    for (size_t r = 0; r < rows; r++) {
        size_t n = spattn__mask_row_keys(m, qt, r, cols);
        row_vals(x, h, i0 + r, q_row_of(x, job.q, i0 + r), job.k, cols, n, job.lse[i0 + r], out);
        out += n;
    }
}

static void run_chunk(const probs_ctx *x, size_t c, int t)
{
    float *scratch = x->scratch + (size_t)t * x->scratch_per_thread;
    uint32_t *cols = x->cols + (size_t)t * x->p->shape.len_k;
    for (size_t u = x->p->plain.chunk_start[c]; u < x->p->plain.chunk_start[c + 1]; u++)
        run_unit(x, u, scratch, cols);
}

/* Column sums of one (batch, head): rows in order, float64 accumulation. */
static void col_sums_head(const probs_ctx *x, size_t bh, int t, float *col_sums)
{
    const spattn_plan *p = x->p;
    const size_t lk = p->shape.len_k;
    const spattn_mask *m = p->plain.masks[mask_index_bh(p, bh)];
    uint32_t *cols = x->cols + (size_t)t * lk;
    float *vals = x->vals + (size_t)t * lk;
    double *acc = x->acc + (size_t)t * lk;
    const char *q = q_head(x, bh), *k = k_head(x, bh);
    const float *lse = x->lse + bh * p->shape.len_q;
    const float *pv = x->probs ? x->probs + x->bh_off[bh] : NULL;
    for (size_t j = 0; j < lk; j++)
        acc[j] = 0.0;
    for (size_t qt = 0; qt < p->plain.nqt; qt++) {
        size_t i0 = qt * SPATTN_TQ, rows = spattn__qt_rows(m, qt);
        for (size_t r = 0; r < rows; r++) {
            size_t n = spattn__mask_row_keys(m, qt, r, cols);
            const float *v = vals;
            if (pv != NULL) {
                v = pv; /* already computed by the first pass, same values */
                pv += n;
            } else {
                row_vals(x, bh % p->shape.heads_q, i0 + r, q_row_of(x, q, i0 + r), k, cols, n,
                         lse[i0 + r], vals);
            }
            for (size_t c = 0; c < n; c++)
                acc[cols[c]] += (double)v[c];
        }
    }
    float *out = col_sums + bh * lk;
    for (size_t j = 0; j < lk; j++)
        out[j] = (float)acc[j];
}

static void free_ctx(probs_ctx *x)
{
    spattn__free(x->lse);
    spattn__free(x->bh_off);
    spattn__free(x->qt_off);
    spattn__aligned_free(x->scratch);
    spattn__free(x->cols);
    spattn__free(x->vals);
    spattn__free(x->acc);
}

/* Every buffer the call needs, before anything is written. */
static spattn_status alloc_ctx(probs_ctx *x, int nt, int want_cols)
{
    const spattn_plan *p = x->p;
    const spattn_shape *s = &p->shape;
    size_t nbh = s->batch * s->heads_q, lk = s->len_k;
    x->lse = spattn__calloc(nbh * s->len_q, sizeof(float));
    /* One query tile per call (a tile's rows at most). */
    const size_t keys = spattn__keyrows_longest(p->plain.keyrows, p->plain.n_masks);
    x->kernel_scratch =
        (p->kt->scratch_floats(s->dim_qk, 1, SPATTN_TQ, keys) +
         spattn__keyrows_prog_floats(p->plain.keyrows, p->plain.n_masks, s->dim_qk, 1) + 15) /
        16 * 16;
    x->scratch_per_thread = x->kernel_scratch + 16;
    x->scratch = spattn__aligned_alloc(x->scratch_per_thread * sizeof(float) * (size_t)nt);
    x->cols = spattn__calloc((size_t)nt * lk, sizeof(uint32_t));
    if (x->lse == NULL || x->scratch == NULL || x->cols == NULL)
        return SPATTN_E_NOMEM;
    if (x->probs != NULL) {
        x->bh_off = spattn__calloc(nbh + 1, sizeof(uint64_t));
        x->qt_off = spattn__calloc(p->plain.n_masks * (p->plain.nqt + 1), sizeof(uint64_t));
        if (x->bh_off == NULL || x->qt_off == NULL)
            return SPATTN_E_NOMEM;
        for (size_t bh = 0; bh < nbh; bh++)
            x->bh_off[bh + 1] = x->bh_off[bh] + p->plain.masks[mask_index_bh(p, bh)]->nnz;
        for (size_t mi = 0; mi < p->plain.n_masks; mi++) {
            uint64_t *o = x->qt_off + mi * (p->plain.nqt + 1);
            for (size_t qt = 0; qt < p->plain.nqt; qt++)
                o[qt + 1] = o[qt] + p->plain.masks[mi]->qt_nnz[qt];
        }
    }
    if (want_cols) {
        x->vals = spattn__calloc((size_t)nt * lk, sizeof(float));
        x->acc = spattn__calloc((size_t)nt * lk, sizeof(double));
        if (x->vals == NULL || x->acc == NULL)
            return SPATTN_E_NOMEM;
    }
    return SPATTN_OK;
}

spattn_status spattn_probs(const spattn_plan *plan, const spattn_args *args, float *probs,
                           float *col_sums)
{
    spattn_status st = check_call(plan, args, probs, col_sums);
    if (st != SPATTN_OK)
        return st;

    probs_ctx x;
    memset(&x, 0, sizeof x);
    x.p = plan;
    x.a = args;
    x.scale = spattn__resolve_scale(args->scale, plan->shape.dim_qk);
    x.pos0 = args->alibi_slopes
                 ? (ptrdiff_t)plan->shape.len_k - (ptrdiff_t)plan->shape.len_q + args->pos_offset
                 : 0;
    x.probs = probs;
    size_t nbh = plan->shape.batch * plan->shape.heads_q;
    /* Threads that can have work: per chunk in the first pass, per head in the second. */
    size_t most = col_sums != NULL && nbh > plan->plain.nchunks ? nbh : plan->plain.nchunks;
    int nt = (size_t)plan->nthreads > most ? (int)most : plan->nthreads;
    st = alloc_ctx(&x, nt, col_sums != NULL);
    if (st != SPATTN_OK) {
        free_ctx(&x);
        return st;
    }

    int nt_units = (size_t)nt > plan->plain.nchunks ? (int)plan->plain.nchunks : nt;
    if (nt_units <= 1) {
        for (size_t c = 0; c < plan->plain.nchunks; c++)
            run_chunk(&x, c, 0);
    } else {
        long nchunks = (long)plan->plain.nchunks;
#pragma omp parallel num_threads(nt_units)
        {
            int t = omp_get_thread_num();
#pragma omp for schedule(dynamic, 1)
            for (long c = 0; c < nchunks; c++)
                run_chunk(&x, (size_t)c, t);
        }
    }

    if (col_sums != NULL) {
        int nt_heads = (size_t)nt > nbh ? (int)nbh : nt;
        if (nt_heads <= 1) {
            for (size_t bh = 0; bh < nbh; bh++)
                col_sums_head(&x, bh, 0, col_sums);
        } else {
            long n = (long)nbh;
#pragma omp parallel num_threads(nt_heads)
            {
                int t = omp_get_thread_num();
#pragma omp for schedule(dynamic, 1)
                for (long bh = 0; bh < n; bh++)
                    col_sums_head(&x, (size_t)bh, t, col_sums);
            }
        }
    }
    free_ctx(&x);
    return SPATTN_OK;
}
