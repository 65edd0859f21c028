/*
 * Plan + forward on random small problems — shapes, GQA/MQA, layouts with padding and
 * broadcast strides, 0 / 1 / per-head / per-(batch, head) masks, scale, softcap, lse — on
 * every ISA this host runs and both kernel paths, each compared with
 * spattn_reference_forward. Also checked: results are bitwise identical for 1 and 2 threads;
 * nothing outside the output views is written; NaN placed where no allowed pair reads
 * (layout padding, unreferenced K/V rows, Q rows with no allowed key) never reaches a result;
 * spattn_softmax_masked against its reference. Score modifiers (ALiBi slopes, sinks,
 * pos_offset) come from the bytes after the masks', then the element types of q, kv and o
 * (all F32 when the input has run out, so older corpus entries keep their meaning).
 *
 * Inputs are multiples of 1/64 in [-1, 1] (exact in bf16 and f16 too) and scales keep
 * |scores| <= 20, so every dot product is exact in float and the documented tolerance
 * (t_in + t_out) * (1 + |ref|) of the types applies (2e-5 * (1 + |ref|) for F32).
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "fuzz_input.h"
#include "plan/test_hooks.h"
#include "spattn.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_MASKS 27

/* The tolerance of the call's types (spattn.h): set once per input. */
static double tol = 2e-5;

typedef struct view {
    spattn_layout l;
    size_t n; /* buffer floats */
} view;

static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static float rng_val(uint64_t *s)
{
    return (float)((int)(rng_next(s) % 129) - 64) / 64.0f;
}

/* A [B][H][T][D] view: any order of the three outer axes, padding after each, optional
   broadcast (stride 0) of batch or head for inputs. */
static view make_view(fz_in *in, size_t B, size_t H, size_t T, size_t D, int input)
{
    uint8_t sel = fz_u8(in);
    view v;
    if (sel % 4 == 0) {
        v.l = spattn_layout_bhtd(H, T, D);
    } else if (sel % 4 == 1) {
        v.l = spattn_layout_bthd(H, T, D);
    } else {
        static const int orders[6][3] = {{0, 1, 2}, {0, 2, 1}, {1, 0, 2},
                                         {1, 2, 0}, {2, 0, 1}, {2, 1, 0}};
        const int *ord = orders[(sel >> 2) % 6]; /* outermost first: 0 = b, 1 = h, 2 = t */
        size_t count[3] = {B, H, T};
        ptrdiff_t stride[3];
        size_t inner = D;
        for (int a = 2; a >= 0; a--) {
            size_t pad = fz_u8(in) % 4;
            stride[ord[a]] = (ptrdiff_t)(inner + pad);
            inner = (inner + pad) * count[ord[a]];
        }
        v.l.batch = stride[0];
        v.l.head = stride[1];
        v.l.token = stride[2];
    }
    if (input && (sel & 0x40))
        v.l.batch = 0;
    if (input && (sel & 0x80))
        v.l.head = 0;
    v.n = (size_t)((ptrdiff_t)(B - 1) * v.l.batch + (ptrdiff_t)(H - 1) * v.l.head +
                   (ptrdiff_t)(T - 1) * v.l.token) +
          D + 1;
    return v;
}

static size_t at(const view *v, size_t b, size_t h, size_t t)
{
    return (size_t)((ptrdiff_t)b * v->l.batch + (ptrdiff_t)h * v->l.head +
                    (ptrdiff_t)t * v->l.token);
}

static float *nan_buf(size_t n)
{
    float *p = malloc(n * sizeof *p);
    for (size_t i = 0; i < n; i++)
        p[i] = NAN;
    return p;
}

static int close_to(float got, double ref)
{
    if (isnan(ref))
        return isnan(got);
    if (isinf(ref))
        return isinf(got) && (got > 0) == (ref > 0);
    return fabs((double)got - ref) <= tol * (1.0 + fabs(ref));
}

static size_t esize(spattn_dtype t)
{
    return t == SPATTN_DTYPE_F32 ? 4 : 2;
}

/* Element i of a buffer of type t, widened; and x stored there (nearest even). */
static float get(const void *p, size_t i, spattn_dtype t)
{
    float y;
    if (t == SPATTN_DTYPE_F32)
        memcpy(&y, (const char *)p + 4 * i, sizeof y);
    else if (t == SPATTN_DTYPE_BF16)
        spattn_bf16_to_f32((const uint16_t *)p + i, &y, 1);
    else
        spattn_f16_to_f32((const uint16_t *)p + i, &y, 1);
    return y;
}
static void put(void *p, size_t i, spattn_dtype t, float x)
{
    if (t == SPATTN_DTYPE_F32)
        memcpy((char *)p + 4 * i, &x, sizeof x);
    else if (t == SPATTN_DTYPE_BF16)
        spattn_f32_to_bf16(&x, (uint16_t *)p + i, 1);
    else
        spattn_f32_to_f16(&x, (uint16_t *)p + i, 1);
}

/* n floats as a new buffer of type t (the values here are exact in every type). */
static void *typed_copy(const float *x, size_t n, spattn_dtype t)
{
    void *p = malloc(n * esize(t));
    for (size_t i = 0; i < n; i++)
        put(p, i, t, x[i]);
    return p;
}

static spattn_mask *make_mask(fz_in *in, uint64_t *rs, size_t lq, size_t lk)
{
    spattn_mask *m = NULL;
    uint8_t kind = fz_u8(in) % 5;
    uint8_t dens = fz_u8(in);
    spattn_status st = SPATTN_OK;
    if (kind == 0) {
        st = spattn_mask_causal(lq, lk, &m);
    } else if (kind == 1) {
        st = spattn_mask_window(lq, lk, fz_range(in, 0, 80), fz_range(in, 0, 80), &m);
    } else if (kind == 2) {
        uint8_t *d = malloc(lq * lk);
        for (size_t i = 0; i < lq * lk; i++)
            d[i] = (rng_next(rs) & 255) < dens;
        st = spattn_mask_from_dense(lq, lk, d, lk, &m);
        free(d);
    } else if (kind == 3) {
        size_t bq = fz_range(in, 1, 40), bk = fz_range(in, 1, 100);
        size_t nb = ((lq + bq - 1) / bq) * ((lk + bk - 1) / bk);
        uint8_t *d = malloc(nb);
        for (size_t i = 0; i < nb; i++)
            d[i] = (rng_next(rs) & 255) < dens;
        st = spattn_mask_from_blocks(lq, lk, bq, bk, d, &m);
        free(d);
    } else { /* a few scattered keys per row: the gather path's case */
        int64_t *rp = malloc((lq + 1) * sizeof *rp);
        int32_t *ci = malloc(lq * lk * sizeof *ci);
        size_t k = 0;
        rp[0] = 0;
        for (size_t i = 0; i < lq; i++) {
            for (size_t j = 0; j < lk; j++)
                if ((rng_next(rs) & 255) < dens / 16u + 1u)
                    ci[k++] = (int32_t)j;
            rp[i + 1] = (int64_t)k;
        }
        st = spattn_mask_from_csr(lq, lk, rp, ci, &m);
        free(rp);
        free(ci);
    }
    FZ_CHECK(st == SPATTN_OK, "mask kind %u: %s", kind, spattn_status_string(st));
    return m;
}

typedef struct problem {
    spattn_args a;
    float slopes[9], sinks[9]; /* heads_q <= 9 */
    view qv, kv, vv, ov;
    const spattn_mask *masks[MAX_MASKS];
    size_t n_masks;
    uint8_t *allowed[MAX_MASKS]; /* dense copy per mask */
} problem;

static const uint8_t *allowed_of(const problem *p, size_t b, size_t h)
{
    if (p->n_masks == 0)
        return NULL;
    size_t idx = p->n_masks == 1                    ? 0
                 : p->n_masks == p->a.shape.heads_q ? h
                                                    : b * p->a.shape.heads_q + h;
    return p->allowed[idx];
}

/* Score modifiers from one selector byte, zero (as when the input has run out) for none:
   bit 0 slopes, bit 1 sinks, the others pos_offset. Offsets reach both ends validation accepts
   with slopes. Slopes are 8 / span over a power of two, some zero or negative, so that
   |slope| * |i' - j| stays within 8: the kernels form that term in float, and at unit size its
   rounding stays far inside the tolerance. Sinks are -inf (no sink), dominating, or moderate. */
static void draw_mods(problem *p, fz_in *in)
{
    const spattn_shape *s = &p->a.shape;
    uint8_t sel = fz_u8(in);
    static const ptrdiff_t offs[] = {0, 1, -1, 7, -13, 100, -100, 1000, -3000};
    const ptrdiff_t lim = (ptrdiff_t)1 << 24;
    const size_t k = (size_t)(sel >> 2) % 12;
    p->a.pos_offset = k < 9     ? offs[k]
                      : k == 9  ? lim - (ptrdiff_t)(s->len_k - 1)
                      : k == 10 ? (ptrdiff_t)s->len_q - 1 - lim
                                : lim / 2;
    if (sel & 1) {
        double span = (double)(s->len_q + s->len_k) + fabs((double)p->a.pos_offset);
        for (size_t h = 0; h < s->heads_q; h++) {
            uint8_t b = fz_u8(in);
            double mag = 8.0 / span * exp2(-(double)(b >> 3 & 7));
            p->slopes[h] = (b & 7) == 0 ? 0.0f : (float)(b & 0x80 ? -mag : mag);
        }
        p->a.alibi_slopes = p->slopes;
    }
    if (sel & 2) {
        for (size_t h = 0; h < s->heads_q; h++) {
            uint8_t b = fz_u8(in);
            p->sinks[h] = b < 64   ? -INFINITY
                          : b < 96 ? 8.0f + (float)(b & 31) / 8.0f
                                   : (float)((int)b - 176) / 16.0f;
        }
        p->a.sinks = p->sinks;
    }
}

/* Runs one configuration into fresh canary-filled outputs (o of p->a.o_dtype) and checks
   everything but the reference comparison, which the caller does. */
static void run(const problem *p, const spattn_options *opt, int path, void *o, float *lse,
                size_t o_n, size_t lse_n)
{
    const spattn_dtype ot = p->a.o_dtype;
    for (size_t i = 0; i < o_n; i++)
        put(o, i, ot, -7.0f);
    for (size_t i = 0; i < lse_n; i++)
        lse[i] = -7.0f;
    spattn_args a = p->a;
    a.o = o;
    a.lse = p->a.lse ? lse : NULL;
    spattn_status st;
    if (path < 0) {
        st = spattn_forward(&a, p->n_masks ? p->masks : NULL, p->n_masks, opt);
    } else {
        spattn_plan *plan = NULL;
        st = spattn__plan_create_path(&a.shape, p->n_masks ? p->masks : NULL, p->n_masks, opt,
                                      (spattn_path)path, &plan);
        FZ_CHECK(st == SPATTN_OK, "plan_create: %s", spattn_status_string(st));
        st = spattn_plan_execute(plan, &a);
        spattn_plan_free(plan);
    }
    FZ_CHECK(st == SPATTN_OK, "forward on %s: %s", spattn_isa_name(opt->isa),
             spattn_status_string(st));
    /* Nothing outside the output view may change. */
    uint8_t *in_view = calloc(o_n, 1);
    const spattn_shape *s = &p->a.shape;
    for (size_t b = 0; b < s->batch; b++)
        for (size_t h = 0; h < s->heads_q; h++)
            for (size_t i = 0; i < s->len_q; i++)
                memset(in_view + at(&p->ov, b, h, i), 1, s->dim_v);
    for (size_t i = 0; i < o_n; i++)
        FZ_CHECK(in_view[i] || get(o, i, ot) == -7.0f, "%s wrote outside the output view at %zu",
                 spattn_isa_name(opt->isa), i);
    free(in_view);
    if (!p->a.lse)
        for (size_t i = 0; i < lse_n; i++)
            FZ_CHECK(lse[i] == -7.0f, "lse written although NULL");
}

static void fill(problem *p, uint64_t *rs, int nan_unread)
{
    const spattn_shape *s = &p->a.shape;
    size_t g = s->heads_q / s->heads_kv;
    float *q = (float *)p->a.q, *k = (float *)p->a.k, *v = (float *)p->a.v;
    for (size_t b = 0; b < s->batch; b++)
        for (size_t h = 0; h < s->heads_q; h++)
            for (size_t i = 0; i < s->len_q; i++)
                for (size_t d = 0; d < s->dim_qk; d++)
                    q[at(&p->qv, b, h, i) + d] = rng_val(rs);
    for (size_t b = 0; b < s->batch; b++)
        for (size_t h = 0; h < s->heads_kv; h++)
            for (size_t j = 0; j < s->len_k; j++) {
                for (size_t d = 0; d < s->dim_qk; d++)
                    k[at(&p->kv, b, h, j) + d] = rng_val(rs);
                for (size_t d = 0; d < s->dim_v; d++)
                    v[at(&p->vv, b, h, j) + d] = rng_val(rs);
            }
    if (!nan_unread || p->n_masks == 0)
        return;
    /* Mark every element some allowed pair reads; poison the rows nobody reads. */
    uint8_t *qr = calloc(p->qv.n, 1), *kr = calloc(p->kv.n, 1), *vr = calloc(p->vv.n, 1);
    for (size_t b = 0; b < s->batch; b++)
        for (size_t h = 0; h < s->heads_q; h++) {
            const uint8_t *al = allowed_of(p, b, h);
            for (size_t i = 0; i < s->len_q; i++)
                for (size_t j = 0; j < s->len_k; j++)
                    if (al[i * s->len_k + j]) {
                        qr[at(&p->qv, b, h, i)] = 1;
                        kr[at(&p->kv, b, h / g, j)] = 1;
                        vr[at(&p->vv, b, h / g, j)] = 1;
                    }
        }
    for (size_t b = 0; b < s->batch; b++)
        for (size_t h = 0; h < s->heads_q; h++)
            for (size_t i = 0; i < s->len_q; i++)
                if (!qr[at(&p->qv, b, h, i)])
                    for (size_t d = 0; d < s->dim_qk; d++)
                        q[at(&p->qv, b, h, i) + d] = NAN;
    for (size_t b = 0; b < s->batch; b++)
        for (size_t h = 0; h < s->heads_kv; h++)
            for (size_t j = 0; j < s->len_k; j++) {
                if (!kr[at(&p->kv, b, h, j)])
                    for (size_t d = 0; d < s->dim_qk; d++)
                        k[at(&p->kv, b, h, j) + d] = NAN;
                if (!vr[at(&p->vv, b, h, j)])
                    for (size_t d = 0; d < s->dim_v; d++)
                        v[at(&p->vv, b, h, j) + d] = NAN;
            }
    free(qr);
    free(kr);
    free(vr);
}

/* Halves q until every score is within 20: keeps the problem at unit scale. */
static void tame_scores(problem *p)
{
    const spattn_shape *s = &p->a.shape;
    size_t g = s->heads_q / s->heads_kv;
    double scale = p->a.scale != 0.0f ? p->a.scale : 1.0 / sqrt((double)s->dim_qk);
    double smax = 0;
    for (size_t b = 0; b < s->batch; b++)
        for (size_t h = 0; h < s->heads_q; h++)
            for (size_t i = 0; i < s->len_q; i++)
                for (size_t j = 0; j < s->len_k; j++) {
                    double dot = 0;
                    for (size_t d = 0; d < s->dim_qk; d++)
                        dot += (double)((const float *)p->a.q)[at(&p->qv, b, h, i) + d] *
                               ((const float *)p->a.k)[at(&p->kv, b, h / g, j) + d];
                    if (fabs(dot * scale) > smax)
                        smax = fabs(dot * scale);
                }
    if (smax > 20.0)
        p->a.scale = (float)(scale * 16.0 / smax);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_in in = {data, size};
    problem p;
    memset(&p, 0, sizeof p);
    spattn_shape *s = &p.a.shape;
    s->batch = fz_range(&in, 1, 3);
    s->heads_kv = fz_range(&in, 1, 3);
    s->heads_q = s->heads_kv * fz_range(&in, 1, 3);
    s->len_q = fz_range(&in, 1, 40);
    s->len_k = fz_range(&in, 1, 150);
    s->dim_qk = fz_range(&in, 1, 80);
    s->dim_v = fz_range(&in, 1, 80);
    /* Keep one execution cheap: a fuzzer lives on executions per second. */
    while (s->batch * s->heads_q * s->len_q * s->len_k * (s->dim_qk + s->dim_v) > 60000) {
        /* Every branch shrinks something: at len_k <= 16 and len_q 1 only the dims can go
           (3 x 9 heads x 16 keys x 160 dims is over the budget). */
        if (s->len_k > 16)
            s->len_k /= 2;
        else if (s->len_q > 1)
            s->len_q = (s->len_q + 1) / 2;
        else if (s->dim_qk >= s->dim_v)
            s->dim_qk = (s->dim_qk + 1) / 2;
        else
            s->dim_v = (s->dim_v + 1) / 2;
    }
    uint64_t rs = fz_u64(&in);

    p.qv = make_view(&in, s->batch, s->heads_q, s->len_q, s->dim_qk, 1);
    p.kv = make_view(&in, s->batch, s->heads_kv, s->len_k, s->dim_qk, 1);
    p.vv = make_view(&in, s->batch, s->heads_kv, s->len_k, s->dim_v, 1);
    p.ov = make_view(&in, s->batch, s->heads_q, s->len_q, s->dim_v, 0);
    p.a.q_layout = p.qv.l;
    p.a.k_layout = p.kv.l;
    p.a.v_layout = p.vv.l;
    p.a.o_layout = p.ov.l;

    static const float scales[] = {0.0f, 0.125f, 0.25f, 0.0625f, 0.2f, 1e-3f, 0.0f, 0.1f};
    static const float caps[] = {0.0f, 0.0f, 0.0f, 1.0f, 5.0f, 30.0f, 0.5f, 1e-3f};
    uint8_t flags = fz_u8(&in);
    p.a.scale = scales[flags & 7];
    p.a.softcap = caps[(flags >> 3) & 7];
    int want_lse = flags >> 6 & 1;
    int nan_unread = flags >> 7;

    uint8_t msel = fz_u8(&in) % 4;
    p.n_masks = msel == 0 ? 0 : msel == 1 ? 1 : msel == 2 ? s->heads_q : s->batch * s->heads_q;
    for (size_t t = 0; t < p.n_masks; t++) {
        spattn_mask *m = make_mask(&in, &rs, s->len_q, s->len_k);
        p.masks[t] = m;
        p.allowed[t] = malloc(s->len_q * s->len_k);
        FZ_CHECK(spattn_mask_to_dense(m, p.allowed[t], s->len_k) == SPATTN_OK, "to_dense");
    }
    draw_mods(&p, &in);

    /* Element types (after the modifiers' bytes): 9 q + 3 kv + o. */
    const uint8_t tsel = fz_u8(&in) % 27;
    const spattn_dtype qt = (spattn_dtype)(tsel / 9), kvt = (spattn_dtype)(tsel / 3 % 3),
                       ot = (spattn_dtype)(tsel % 3);
    tol = (qt == SPATTN_DTYPE_BF16 || kvt == SPATTN_DTYPE_BF16) ? 1e-2
          : (qt == SPATTN_DTYPE_F16 || kvt == SPATTN_DTYPE_F16) ? 2e-3
                                                                : 2e-5;
    tol += ot == SPATTN_DTYPE_BF16 ? 0x1p-8 : ot == SPATTN_DTYPE_F16 ? 0x1p-11 : 0.0;

    float *q = nan_buf(p.qv.n), *k = nan_buf(p.kv.n), *v = nan_buf(p.vv.n);
    p.a.q = q;
    p.a.k = k;
    p.a.v = v;
    fill(&p, &rs, nan_unread);
    tame_scores(&p);
    void *tq = typed_copy(q, p.qv.n, qt), *tk = typed_copy(k, p.kv.n, kvt),
         *tv = typed_copy(v, p.vv.n, kvt);
    p.a.q = tq;
    p.a.k = tk;
    p.a.v = tv;
    p.a.q_dtype = qt;
    p.a.kv_dtype = kvt;

    size_t lse_n = s->batch * s->heads_q * s->len_q;
    const size_t ob = p.ov.n * esize(ot);
    float *ref_o = malloc(p.ov.n * sizeof(float)), *ref_lse = malloc(lse_n * sizeof(float));
    void *o1 = malloc(ob), *o2 = malloc(ob);
    float *l1 = malloc(lse_n * sizeof(float)), *l2 = malloc(lse_n * sizeof(float));
    p.a.lse = want_lse ? ref_lse : NULL;
    p.a.o = ref_o; /* the reference's O in float */
    spattn_status st = spattn_reference_forward(&p.a, p.n_masks ? p.masks : NULL, p.n_masks);
    FZ_CHECK(st == SPATTN_OK, "reference: %s", spattn_status_string(st));
    p.a.o_dtype = ot;

    static const spattn_isa isas[] = {
        SPATTN_ISA_SCALAR,     SPATTN_ISA_AVX2,      SPATTN_ISA_AVX512,   SPATTN_ISA_NEON,
        SPATTN_ISA_AVX512BF16, SPATTN_ISA_NEON_BF16, SPATTN_ISA_AVX512AMX};
    for (size_t ii = 0; ii < sizeof isas / sizeof isas[0]; ii++) {
        if (!spattn_isa_available(isas[ii]))
            continue;
        for (int path = -1; path <= (int)SPATTN_PATH_GATHER; path++) {
            if (path == SPATTN_PATH_AUTO)
                continue;
            spattn_options opt = {isas[ii], 1};
            run(&p, &opt, path, o1, l1, p.ov.n, lse_n);
            if (path < 0) { /* threads must not change a bit */
                opt.num_threads = 2;
                run(&p, &opt, path, o2, l2, p.ov.n, lse_n);
                FZ_CHECK(memcmp(o1, o2, ob) == 0 && memcmp(l1, l2, lse_n * sizeof(float)) == 0,
                         "%s: 1 and 2 threads differ", spattn_isa_name(isas[ii]));
            }
            for (size_t b = 0; b < s->batch; b++)
                for (size_t h = 0; h < s->heads_q; h++)
                    for (size_t i = 0; i < s->len_q; i++) {
                        size_t base = at(&p.ov, b, h, i);
                        for (size_t d = 0; d < s->dim_v; d++)
                            FZ_CHECK(close_to(get(o1, base + d, ot), ref_o[base + d]),
                                     "%s path %d types %u: O[%zu,%zu,%zu,%zu] = %.9g, "
                                     "reference %.9g",
                                     spattn_isa_name(isas[ii]), path, (unsigned)tsel, b, h, i, d,
                                     (double)get(o1, base + d, ot), (double)ref_o[base + d]);
                        size_t li = (b * s->heads_q + h) * s->len_q + i;
                        FZ_CHECK(!want_lse || close_to(l1[li], ref_lse[li]),
                                 "%s path %d: lse[%zu,%zu,%zu] = %.9g, reference %.9g",
                                 spattn_isa_name(isas[ii]), path, b, h, i, (double)l1[li],
                                 (double)ref_lse[li]);
                    }
        }
    }

    /* Masked softmax of q's first head viewed as a len_q x dim_qk matrix is too narrow to be
       interesting; use fresh scores of the mask's shape instead. */
    tol = 2e-5; /* float in, float out */
    if (p.n_masks > 0) {
        size_t rows = s->len_q, cols = s->len_k, ld = cols + fz_u8(&in) % 3;
        float *x = nan_buf(rows * ld), *y = malloc(rows * ld * sizeof(float));
        float *yr = malloc(rows * ld * sizeof(float));
        for (size_t i = 0; i < rows; i++)
            for (size_t j = 0; j < cols; j++)
                x[i * ld + j] = rng_val(&rs) * 8.0f;
        float sc = p.a.scale;
        FZ_CHECK(spattn_reference_softmax_masked(x, yr, rows, cols, ld, p.masks[0], sc) ==
                     SPATTN_OK,
                 "reference softmax");
        for (size_t ii = 0; ii < sizeof isas / sizeof isas[0]; ii++) {
            if (!spattn_isa_available(isas[ii]))
                continue;
            spattn_options opt = {isas[ii], 1};
            for (size_t t = 0; t < rows * ld; t++)
                y[t] = -7.0f;
            st = spattn_softmax_masked(x, y, rows, cols, ld, p.masks[0], sc, &opt);
            FZ_CHECK(st == SPATTN_OK, "softmax_masked: %s", spattn_status_string(st));
            for (size_t i = 0; i < rows; i++)
                for (size_t j = 0; j < ld; j++)
                    FZ_CHECK(
                        j < cols ? close_to(y[i * ld + j], yr[i * ld + j]) : y[i * ld + j] == -7.0f,
                        "%s softmax (%zu,%zu) = %.9g, reference %.9g", spattn_isa_name(isas[ii]), i,
                        j, (double)y[i * ld + j], (double)(j < cols ? yr[i * ld + j] : -7.0f));
        }
        free(x);
        free(y);
        free(yr);
    }

    for (size_t t = 0; t < p.n_masks; t++) {
        spattn_mask_free((spattn_mask *)p.masks[t]);
        free(p.allowed[t]);
    }
    free(q);
    free(k);
    free(v);
    free(tq);
    free(tk);
    free(tv);
    free(ref_o);
    free(ref_lse);
    free(o1);
    free(l1);
    free(o2);
    free(l2);
    return 0;
}
