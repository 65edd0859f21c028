/*
 * spattn_plan_backward on random small problems — shapes, MHA/GQA/MQA, padded layouts, no /
 * one / per-head masks of several kinds, scale, softcap, ALiBi, sinks — on every ISA this
 * host runs, against spattn_reference_backward within the contract's 1e-4 * (1 + |ref|).
 * Also checked: 1 and 2 threads give the same bits, and nothing outside the gradient views
 * (the padding) is written. Inputs are multiples of 1/64 in [-1, 1] (unit scale).
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "fuzz_input.h"
#include "spattn.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define TOL 1e-4
#define UNTOUCHED (-7.0f)

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

/* A padded B,H,T,D view: its layout and buffer size. */
static spattn_layout view(size_t B, size_t H, size_t T, size_t D, size_t pad, size_t *n)
{
    spattn_layout l = {(ptrdiff_t)(H * T * (D + pad)), (ptrdiff_t)(T * (D + pad)),
                       (ptrdiff_t)(D + pad)};
    *n = B * H * T * (D + pad);
    return l;
}

static spattn_mask *make_mask(fz_in *in, uint64_t *rs, size_t lq, size_t lk)
{
    spattn_mask *m = NULL;
    const uint8_t kind = fz_u8(in) % 4, dens = fz_u8(in);
    spattn_status st;
    if (kind == 0) {
        st = spattn_mask_causal(lq, lk, &m);
    } else if (kind == 1) {
        st = spattn_mask_window(lq, lk, fz_range(in, 0, 40), fz_range(in, 0, 40), &m);
    } else if (kind == 2) {
        const size_t bq = fz_range(in, 1, 40), bk = fz_range(in, 1, 90);
        const size_t nb = ((lq + bq - 1) / bq) * ((lk + bk - 1) / bk);
        uint8_t *d = malloc(nb);
        for (size_t i = 0; i < nb; i++)
            d[i] = (rng_next(rs) & 255) < dens;
        st = spattn_mask_from_blocks(lq, lk, bq, bk, d, &m);
        free(d);
    } else { /* random pairs, from a few per row to dense */
        uint8_t *d = malloc(lq * lk);
        for (size_t i = 0; i < lq * lk; i++)
            d[i] = (rng_next(rs) & 255) < dens;
        st = spattn_mask_from_dense(lq, lk, d, lk, &m);
        free(d);
    }
    FZ_CHECK(st == SPATTN_OK, "mask kind %u: %s", kind, spattn_status_string(st));
    return m;
}

static int close_to(float got, float ref)
{
    if (isnan(ref))
        return isnan(got);
    return isfinite(got) && fabs((double)got - (double)ref) <= TOL * (1.0 + fabs((double)ref));
}

typedef struct grads_buf {
    float *dq, *dk, *dv, ds[8];
} grads_buf;

static void run_isa(const spattn_args *a, const spattn_grads *g0, const spattn_mask *const *masks,
                    size_t n_masks, spattn_isa isa, int threads, grads_buf *out, size_t nq,
                    size_t nk, size_t nv, float *o, float *lse)
{
    spattn_options opt = {isa, threads};
    spattn_plan *plan = NULL;
    spattn_status st = spattn_plan_create(&a->shape, masks, n_masks, &opt, &plan);
    FZ_CHECK(st == SPATTN_OK, "plan_create: %s", spattn_status_string(st));
    spattn_args fa = *a;
    fa.o = o;
    fa.lse = lse;
    st = spattn_plan_execute(plan, &fa);
    FZ_CHECK(st == SPATTN_OK, "execute: %s", spattn_status_string(st));
    for (size_t i = 0; i < nq; i++)
        out->dq[i] = UNTOUCHED;
    for (size_t i = 0; i < nk; i++)
        out->dk[i] = UNTOUCHED;
    for (size_t i = 0; i < nv; i++)
        out->dv[i] = UNTOUCHED;
    spattn_grads g = *g0;
    g.d_q = out->dq;
    g.d_k = out->dk;
    g.d_v = out->dv;
    g.d_sinks = out->ds;
    st = spattn_plan_backward(plan, &fa, &g);
    FZ_CHECK(st == SPATTN_OK, "backward on %s: %s", spattn_isa_name(isa), spattn_status_string(st));
    spattn_plan_free(plan);
}

/* Every element of a padded view against the reference; padding must stay untouched. */
static void compare(const float *got, const float *ref, size_t n, size_t dim, size_t pad,
                    const char *what, spattn_isa isa)
{
    for (size_t i = 0; i < n; i++) {
        if (i % (dim + pad) >= dim)
            FZ_CHECK(got[i] == UNTOUCHED, "%s: %s padding %zu written", spattn_isa_name(isa), what,
                     i);
        else
            FZ_CHECK(close_to(got[i], ref[i]), "%s: %s[%zu] = %.9g, reference %.9g",
                     spattn_isa_name(isa), what, i, (double)got[i], (double)ref[i]);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_in in = {data, size};
    uint64_t rs = fz_u64(&in);
    spattn_shape s;
    s.batch = fz_range(&in, 1, 2);
    s.heads_kv = fz_range(&in, 1, 3);
    s.heads_q = s.heads_kv * fz_range(&in, 1, 8 / s.heads_kv > 3 ? 3 : 8 / s.heads_kv);
    s.len_q = fz_range(&in, 1, 48);
    s.len_k = fz_range(&in, 1, 150);
    s.dim_qk = fz_range(&in, 1, 40);
    s.dim_v = fz_range(&in, 1, 40);
    const size_t pad = fz_u8(&in) % 3;
    spattn_args a;
    memset(&a, 0, sizeof a);
    a.shape = s;
    size_t nq, nk, nv, no;
    a.q_layout = view(s.batch, s.heads_q, s.len_q, s.dim_qk, pad, &nq);
    a.k_layout = view(s.batch, s.heads_kv, s.len_k, s.dim_qk, pad, &nk);
    a.v_layout = view(s.batch, s.heads_kv, s.len_k, s.dim_v, pad, &nv);
    a.o_layout = view(s.batch, s.heads_q, s.len_q, s.dim_v, pad, &no);
    float *q = malloc(nq * 4), *k = malloc(nk * 4), *v = malloc(nv * 4), *d_o = malloc(no * 4);
    for (size_t i = 0; i < nq; i++)
        q[i] = i % (s.dim_qk + pad) < s.dim_qk ? rng_val(&rs) : NAN;
    for (size_t i = 0; i < nk; i++)
        k[i] = i % (s.dim_qk + pad) < s.dim_qk ? rng_val(&rs) : NAN;
    for (size_t i = 0; i < nv; i++)
        v[i] = i % (s.dim_v + pad) < s.dim_v ? rng_val(&rs) : NAN;
    for (size_t i = 0; i < no; i++)
        d_o[i] = i % (s.dim_v + pad) < s.dim_v ? rng_val(&rs) : NAN;
    a.q = q;
    a.k = k;
    a.v = v;
    const uint8_t sel = fz_u8(&in);
    a.scale = sel & 1 ? (float)(fz_u8(&in) % 32 + 1) / 64.0f : 0.0f;
    a.softcap = sel & 2 ? (float)(fz_u8(&in) % 64 + 4) / 8.0f : 0.0f;
    float slopes[8], sinks[8];
    for (size_t h = 0; h < s.heads_q; h++) {
        const uint8_t b = fz_u8(&in);
        slopes[h] = (float)(b % 16) / 64.0f;
        sinks[h] = b >= 224 ? -INFINITY : (float)((int)(b % 64) - 32) / 16.0f;
    }
    if (sel & 4) {
        a.alibi_slopes = slopes;
        a.pos_offset = (ptrdiff_t)(fz_u8(&in) % 9) - 4;
    }
    if (sel & 8)
        a.sinks = sinks;
    const size_t n_masks = sel >> 4 & 1 ? ((sel >> 5) & 1 ? s.heads_q : 1) : 0;
    spattn_mask *masks[8] = {NULL};
    for (size_t m = 0; m < n_masks; m++)
        masks[m] = make_mask(&in, &rs, s.len_q, s.len_k);
    const spattn_mask *const *ml = n_masks ? (const spattn_mask *const *)masks : NULL;

    const size_t nl = s.batch * s.heads_q * s.len_q;
    float *o = malloc(no * 4), *lse = malloc(nl * 4);
    a.o = o;
    a.lse = lse;
    FZ_CHECK(spattn_reference_forward(&a, ml, n_masks) == SPATTN_OK, "reference forward");
    grads_buf ref = {malloc(nq * 4), malloc(nk * 4), malloc(nv * 4), {0}};
    spattn_grads g;
    memset(&g, 0, sizeof g);
    g.d_o = d_o;
    g.d_o_layout = a.o_layout;
    g.d_q = ref.dq;
    g.d_q_layout = a.q_layout;
    g.d_k = ref.dk;
    g.d_k_layout = a.k_layout;
    g.d_v = ref.dv;
    g.d_v_layout = a.v_layout;
    g.d_sinks = ref.ds;
    FZ_CHECK(spattn_reference_backward(&a, ml, n_masks, &g) == SPATTN_OK, "reference backward");

    grads_buf one = {malloc(nq * 4), malloc(nk * 4), malloc(nv * 4), {0}};
    grads_buf two = {malloc(nq * 4), malloc(nk * 4), malloc(nv * 4), {0}};
    float *o2 = malloc(no * 4), *lse2 = malloc(nl * 4);
    static const spattn_isa isas[] = {
        SPATTN_ISA_SCALAR,     SPATTN_ISA_AVX2,      SPATTN_ISA_AVX512,   SPATTN_ISA_NEON,
        SPATTN_ISA_AVX512BF16, SPATTN_ISA_NEON_BF16, SPATTN_ISA_AVX512AMX};
    for (size_t ii = 0; ii < sizeof isas / sizeof isas[0]; ii++) {
        const spattn_isa isa = isas[ii];
        if (!spattn_isa_available(isa))
            continue;
        run_isa(&a, &g, ml, n_masks, isa, 1, &one, nq, nk, nv, o2, lse2);
        compare(one.dq, ref.dq, nq, s.dim_qk, pad, "dq", isa);
        compare(one.dk, ref.dk, nk, s.dim_qk, pad, "dk", isa);
        compare(one.dv, ref.dv, nv, s.dim_v, pad, "dv", isa);
        for (size_t h = 0; a.sinks && h < s.heads_q; h++)
            FZ_CHECK(close_to(one.ds[h], ref.ds[h]), "%s: dsinks[%zu] = %.9g, reference %.9g",
                     spattn_isa_name(isa), h, (double)one.ds[h], (double)ref.ds[h]);
        run_isa(&a, &g, ml, n_masks, isa, 2, &two, nq, nk, nv, o2, lse2);
        FZ_CHECK(memcmp(one.dq, two.dq, nq * 4) == 0 && memcmp(one.dk, two.dk, nk * 4) == 0 &&
                     memcmp(one.dv, two.dv, nv * 4) == 0 && memcmp(one.ds, two.ds, 8 * 4) == 0,
                 "%s: 1 and 2 threads differ", spattn_isa_name(isa));
    }

    for (size_t m = 0; m < n_masks; m++)
        spattn_mask_free(masks[m]);
    grads_buf *all[] = {&ref, &one, &two};
    for (size_t i = 0; i < 3; i++) {
        free(all[i]->dq);
        free(all[i]->dk);
        free(all[i]->dv);
    }
    free(q);
    free(k);
    free(v);
    free(d_o);
    free(o);
    free(lse);
    free(o2);
    free(lse2);
    return 0;
}
