/* The portable tier: the flash-attention tile loop of the SIMD kernels in plain C. Every ISA
   kernel mirrors this structure; it is also what runs where no SIMD tier is compiled in.
 *
 * Online softmax per row: running max m, running sum l, unnormalised output acc. A key block
 * with new max m' rescales l and acc by exp(m - m'). While every allowed score seen so far is
 * -inf the shift is 0 instead of -inf, so exp(-inf - shift) = 0 and never NaN; NaN scores still
 * give NaN, as the reference does. */
#include <math.h>
#include <string.h>

#include "convert.h"
#include "kernels/kernel.h"
#include "scalar/bwd_scalar.h"
#include "scalar/merge_scalar.h"

typedef struct row_state {
    float m, l;
    float *acc; /* dim_v */
    /* ALiBi: the row's slope (0 without) and query position i' (see kernel.h). */
    float slope;
    ptrdiff_t pos;
} row_state;

static float softcapped(float s, float softcap)
{
    return softcap != 0.0f ? softcap * tanhf(s / softcap) : s;
}

/* Element d of a K or V row of type kvt (a constant wherever row_block_t is inlined). */
static inline float kv_elem(const int kvt, const void *row, size_t d)
{
    if (kvt == SPATTN_DTYPE_BF16)
        return spattn__bf16_to_f32_1(((const uint16_t *)row)[d]);
    if (kvt == SPATTN_DTYPE_F16)
        return spattn__f16_to_f32_1(((const uint16_t *)row)[d]);
    return ((const float *)row)[d];
}

/* One row against n <= TK allowed keys (in increasing order), K and V of type kvt; qi is the
   row's Q as floats. */
static inline __attribute__((always_inline)) void row_block_t(const int kvt,
                                                              const spattn_head_job *job,
                                                              const float *qi, const uint32_t *keys,
                                                              size_t n, row_state *r, float *s)
{
    const ptrdiff_t es = kvt == SPATTN_DTYPE_F32 ? 4 : 2;
    float mt = -INFINITY;
    for (size_t c = 0; c < n; c++) {
        const char *kj = (const char *)job->k + (ptrdiff_t)keys[c] * job->k_ts * es;
        float dot = 0.0f;
        for (size_t d = 0; d < job->dim_qk; d++)
            dot += qi[d] * kv_elem(kvt, kj, d);
        s[c] = softcapped(job->scale * dot, job->softcap);
        if (job->slopes != NULL) {
            /* |i' - j| is exact in float: validation keeps it at most 2^24. */
            const ptrdiff_t dist = r->pos - (ptrdiff_t)keys[c];
            s[c] -= r->slope * (float)(dist < 0 ? -dist : dist);
        }
        if (s[c] > mt)
            mt = s[c];
    }
    float m_new = mt > r->m ? mt : r->m;
    float shift = m_new == -INFINITY ? 0.0f : m_new;
    /* Nothing weighted has been accumulated while the running max is -inf (l and acc are
       0, or NaN), so there is nothing to rescale; exp(0 - shift) could even overflow. */
    if (r->m != -INFINITY && shift != r->m) {
        float alpha = expf(r->m - shift);
        r->l *= alpha;
        for (size_t d = 0; d < job->dim_v; d++)
            r->acc[d] *= alpha;
    }
    for (size_t c = 0; c < n; c++) {
        float p = expf(s[c] - shift);
        const char *vj = (const char *)job->v + (ptrdiff_t)keys[c] * job->v_ts * es;
        r->l += p;
        for (size_t d = 0; d < job->dim_v; d++)
            r->acc[d] += p * kv_elem(kvt, vj, d);
    }
    r->m = m_new;
}

/* The K/V type is chosen once per row block. */
static void row_block(const spattn_head_job *job, const float *qi, const uint32_t *keys, size_t n,
                      row_state *r, float *s)
{
    switch (job->kv_dtype) {
    case SPATTN_DTYPE_BF16:
        row_block_t(SPATTN_DTYPE_BF16, job, qi, keys, n, r, s);
        break;
    case SPATTN_DTYPE_F16:
        row_block_t(SPATTN_DTYPE_F16, job, qi, keys, n, r, s);
        break;
    default:
        row_block_t(SPATTN_DTYPE_F32, job, qi, keys, n, r, s);
        break;
    }
}

/* Row i of the job's Q as floats: in place for F32, else widened into buf (dim_qk floats). */
static const float *q_row(const spattn_head_job *job, size_t i, float *buf)
{
    const ptrdiff_t es = (ptrdiff_t)spattn__dtype_size(job->q_dtype);
    const void *q = (const char *)job->q + (ptrdiff_t)i * job->q_ts * es;
    if (job->q_dtype == SPATTN_DTYPE_F32)
        return q;
    spattn__load_row(q, job->q_dtype, buf, job->dim_qk);
    return buf;
}

/* A sink joins the row here, once, in double: lse = log(exp(lse of the keys) + exp(sink)) and
   O = O_keys * exp(lse_keys - lse), which is the softmax with the sink as one more logit; a
   row with no key gets O = 0 and lse = the sink exactly. */
static void row_finish(const spattn_head_job *job, size_t i, const row_state *r)
{
    const size_t os = spattn__dtype_size(job->o_dtype);
    void *oi = (char *)job->o + (ptrdiff_t)i * job->o_ts * (ptrdiff_t)os;
    const float sink = job->sinks ? job->sinks[(ptrdiff_t)i * job->mod_step] : -INFINITY;
    /* What spattn__row_lse gives, before its rounding to float. */
    double lse =
        r->l == 0.0f ? -INFINITY : (r->m == -INFINITY ? 0.0 : (double)r->m) + log((double)r->l);
    float inv = r->l != 0.0f ? 1.0f / r->l : 0.0f;
    if (sink != -INFINITY) {
        const double keys = lse, hi = keys > sink ? keys : sink;
        lse = hi + log1p(exp(keys > sink ? sink - keys : keys - sink));
        if (r->l != 0.0f)
            inv = (float)(exp(keys - lse) / (double)r->l);
    }
    if (job->lse)
        job->lse[i] = (float)lse;
    if (r->l == 0.0f) {
        memset(oi, 0, job->dim_v * os); /* +0 in every type */
        return;
    }
    /* Scaled in place (the accumulator is not used again), then stored in o's type. */
    for (size_t d = 0; d < job->dim_v; d++)
        r->acc[d] *= inv;
    spattn__store_row(oi, job->o_dtype, r->acc, job->dim_v);
}

/* scratch: TQ row accumulators of dim_v, one tile row of scores, then TQ rows of Q widened
   from a 16-bit type. */
static size_t scalar_scratch(size_t dim_qk, size_t dim_v, size_t gather_rows, size_t gather_keys)
{
    (void)gather_rows; /* the gather path works a row at a time */
    (void)gather_keys;
    return SPATTN_TQ * dim_v + SPATTN_TK + SPATTN_TQ * dim_qk;
}

/* Rows i0 .. i0 + rows of the job, their accumulators at scratch. */
static void init_rows(const spattn_head_job *job, size_t i0, size_t rows, float *scratch,
                      row_state *st)
{
    for (size_t r = 0; r < rows; r++) {
        const ptrdiff_t i = (ptrdiff_t)(i0 + r);
        st[r].m = -INFINITY;
        st[r].l = 0.0f;
        st[r].acc = scratch + r * job->dim_v;
        memset(st[r].acc, 0, job->dim_v * sizeof(float));
        st[r].slope = job->slopes ? job->slopes[i * job->mod_step] : 0.0f;
        st[r].pos = job->slopes ? job->pos0 + i * job->pos_step : 0;
    }
}

/* Tile order: key tile outer, rows inner, as the SIMD kernels walk it (each K/V tile is loaded
   once for all rows of the query tile). */
static void scalar_tiles(const spattn_head_job *job, const spattn_mask *m, size_t qt,
                         float *scratch)
{
    size_t rows = spattn__qt_rows(m, qt), i0 = qt * SPATTN_TQ;
    row_state st[SPATTN_TQ];
    init_rows(job, i0, rows, scratch, st);
    float *s = scratch + SPATTN_TQ * job->dim_v;
    const float *qrow[SPATTN_TQ];
    for (size_t r = 0; r < rows; r++)
        qrow[r] = q_row(job, i0 + r, s + SPATTN_TK + r * job->dim_qk);
    for (size_t t = m->qt_ptr[qt]; t < m->qt_ptr[qt + 1]; t++) {
        const spattn_ktile *kt = &m->tiles[t];
        for (size_t r = 0; r < rows; r++) {
            uint32_t keys[SPATTN_TK];
            size_t n = 0;
            for (uint64_t b = spattn__tile_row_bits(m, kt, qt, r); b != 0; b &= b - 1)
                keys[n++] = kt->kt * (uint32_t)SPATTN_TK + (uint32_t)__builtin_ctzll(b);
            if (n != 0)
                row_block(job, qrow[r], keys, n, &st[r], s);
        }
    }
    for (size_t r = 0; r < rows; r++)
        row_finish(job, i0 + r, &st[r]);
}

/* Gather order: one row at a time through its listed keys, TK at a time. */
static void scalar_gather(const spattn_head_job *job, const spattn_keyrows *kr, size_t qt,
                          size_t nqt, float *scratch)
{
    size_t i0;
    const size_t i1 = spattn__keyrows_span(kr, qt, nqt, &i0);
    row_state st;
    float *s = scratch + SPATTN_TQ * job->dim_v;
    for (size_t i = i0; i < i1; i++) {
        init_rows(job, i, 1, scratch, &st);
        const float *qi = q_row(job, i, s + SPATTN_TK);
        size_t n;
        const uint32_t *keys = spattn__keyrows_row(kr, i, &n);
        for (size_t c = 0; c < n; c += SPATTN_TK)
            row_block(job, qi, keys + c, n - c < SPATTN_TK ? n - c : SPATTN_TK, &st, s);
        row_finish(job, i, &st);
    }
}

static void scalar_softmax(const float *x, float *y, size_t ld, const spattn_mask *m, size_t qt,
                           float scale)
{
    size_t rows = spattn__qt_rows(m, qt), i0 = qt * SPATTN_TQ;
    size_t t0 = m->qt_ptr[qt], t1 = m->qt_ptr[qt + 1];
    for (size_t r = 0; r < rows; r++) {
        const float *xi = x + (i0 + r) * ld;
        float *yi = y + (i0 + r) * ld;
        float mx = -INFINITY;
        for (size_t t = t0; t < t1; t++) {
            size_t j0 = (size_t)m->tiles[t].kt * SPATTN_TK;
            for (uint64_t b = spattn__tile_row_bits(m, &m->tiles[t], qt, r); b; b &= b - 1) {
                float v = scale * xi[j0 + (size_t)__builtin_ctzll(b)];
                if (v > mx)
                    mx = v;
            }
        }
        float shift = mx == -INFINITY ? 0.0f : mx, l = 0.0f;
        for (size_t t = t0; t < t1; t++) {
            size_t j0 = (size_t)m->tiles[t].kt * SPATTN_TK;
            for (uint64_t b = spattn__tile_row_bits(m, &m->tiles[t], qt, r); b; b &= b - 1)
                l += expf(scale * xi[j0 + (size_t)__builtin_ctzll(b)] - shift);
        }
        float inv = l != 0.0f ? 1.0f / l : 0.0f;
        /* Written in increasing j, each entry after its x was last read: y may equal x. */
        size_t j = 0;
        for (size_t t = t0; t <= t1; t++) {
            size_t j0 = t < t1 ? (size_t)m->tiles[t].kt * SPATTN_TK : m->len_k;
            for (; j < j0; j++)
                yi[j] = 0.0f;
            if (t == t1)
                break;
            uint64_t bits = spattn__tile_row_bits(m, &m->tiles[t], qt, r);
            size_t n = spattn__kt_cols(m, m->tiles[t].kt);
            for (size_t c = 0; c < n; c++, j++)
                yi[j] = (l != 0.0f && ((bits >> c) & 1)) ? expf(scale * xi[j] - shift) * inv : 0.0f;
        }
    }
}

static float scalar_fma_probe(size_t iters, double *flops)
{
    /* Eight independent multiply-add chains: enough to cover the latency on most cores. A
       plain a * x + y, since that is what the scalar tier executes (fmaf without hardware FMA
       would be a slow library call). */
    float a[8] = {1.0f, 1.1f, 1.2f, 1.3f, 1.4f, 1.5f, 1.6f, 1.7f};
    const float x = 0.999999f, y = 1e-7f;
    for (size_t it = 0; it < iters; it++)
        for (int c = 0; c < 8; c++)
            a[c] = a[c] * x + y;
    *flops = 2.0 * 8.0 * (double)iters;
    return a[0] + a[1] + a[2] + a[3] + a[4] + a[5] + a[6] + a[7];
}

const spattn_kernel_table spattn_kernels_scalar = {
    .isa = SPATTN_ISA_SCALAR,
    .name = "scalar",
    /* Both scalar paths do the same per-pair work; gather only saves walking rows of tiles
       that are mostly empty. */
    .gather_below = 0.25,
    .gather_shared = 0.0,
    .scratch_floats = scalar_scratch,
    .attn_tiles = scalar_tiles,
    .attn_gather = scalar_gather,
    .softmax_tile = scalar_softmax,
    .fma_probe = scalar_fma_probe,
    .merge_rows = spattn__merge_rows_scalar,
    .bwd_scratch_floats = spattn__bwd_scratch_scalar,
    .bwd_kv = spattn__bwd_kv_scalar,
    .bwd_q = spattn__bwd_q_scalar,
    .bwd_cols_of_rows = spattn__bwd_cols_of_rows_scalar,
};
