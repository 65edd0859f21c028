/*
 * 16-bit O is narrowed in vectors (kernels/o_store.h, the vocabulary's vec_storeu_bf16 and
 * vec_storeu_f16): its bits must be those of spattn__store_row on the float O for every value,
 * including the ones vector conversions tend to get wrong: NaN payloads (signalling and
 * quiet, payload bits above and below what the 16-bit format keeps), infinities, zeros, float
 * subnormals (which vcvtneps2bf16 would flush), values that round to f16 subnormals or to
 * zero, overflow to Inf and the ties on either side of it, ties at even and odd.
 *
 * Each kernel table is called directly, every path that writes O (tile path per query tile,
 * tile pairs, gather, mixed), with Q and K zero and one allowed key per row: P = 1 and O is
 * that key's V row, so V carries the hard values into the store. Each row count of a tile
 * path is met (a 16-row tile and a 4-row one, so the transposed and row-major finishes on
 * AVX2 and NEON), dims with and without a masked tail, V in each type (bf16 V on dims
 * multiple of 32 takes the AVX512-BF16 key-pair path). The typed call must give
 * spattn__store_row of the same call's float O, leave the padding after each row alone, and
 * with float V the float O must be V itself (else the hard values never reached the store).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "convert.h"
#include "kernels/dispatch.h"
#include "mask/mask_impl.h"
#include "plan/keyrows.h"
#include "test_util.h"

#define LQ 20
#define LK 80
#define DQK 4
#define PAD 3
#define CANARY16 0xa5a5u

/* Float bit patterns worth narrowing; the comments give what they test. */
static const uint32_t hard[] = {
    /* NaN: quiet, signalling, payload only below bit 13 (f16 keeps none of it) or 16 (bf16) */
    0x7fc00000u, 0xffc00000u, 0x7f800001u, 0xff800001u, 0x7fbfffffu, 0x7fffffffu, 0xff812345u,
    0x7f802000u, 0x7f801fffu, 0x7f80ffffu, 0xffa00000u,
    /* infinities and zeros */
    0x7f800000u, 0xff800000u, 0x00000000u, 0x80000000u,
    /* float subnormals: smallest, largest, a bf16 tie to even (down) and to odd (up), one
       that rounds up into the smallest normal bf16 */
    0x00000001u, 0x807fffffu, 0x00400000u, 0x00008000u, 0x00018000u, 0x807fff80u,
    /* f16 subnormals: 2^-24, 2^-25 (tie to 0), just above it, 1.5 and 2.5 x 2^-24 (ties), 2^-15,
       the largest subnormal, the tie between it and 2^-14, just below 2^-14, 2^-14 */
    0x33800000u, 0xb3000000u, 0x33000001u, 0x33c00000u, 0xb4200000u, 0x38000000u, 0x387fc000u,
    0x387fe000u, 0x387ff000u, 0x387fffffu, 0x38800000u, 0x32ffffffu, 0x2f000000u,
    /* around the f16 maximum: 65504, just below the tie, the tie (Inf), past it, 2^16 */
    0x477fe000u, 0x477fefffu, 0xc77ff000u, 0x477ff001u, 0x47800000u, 0x501502f9u,
    /* around the float maximum (bf16 overflow by rounding) */
    0x7f7fffffu, 0xff7f8000u, 0x7f7f7fffu, 0x7f7f8001u,
    /* bf16 ties at even and odd, and just above a tie */
    0x3f808000u, 0x3f818000u, 0x3f808001u, 0xbf818000u, 0xbf7f8000u,
    /* f16 ties at even and odd, carry into the exponent */
    0x3f801000u, 0x3f803000u, 0x3f801001u, 0xbf803000u, 0x3fffffffu, 0x3ffff000u,
    /* ordinary values */
    0x3f800000u, 0xc0200000u, 0x40490fdbu, 0x3a83126fu, 0x322bcc77u};
#define N_HARD (sizeof hard / sizeof hard[0])

typedef struct narrow_data {
    size_t dv;
    spattn_mask *mask;
    float *q, *k, *v; /* float Q and K (zero), V with the hard values */
} narrow_data;

static size_t key_of(size_t i)
{
    return (7 * i + 3) % LK;
}

/* V: two thirds of each row the hard values in turn, the rest random bit patterns; each row
   starts at another place in the list, so that each value meets many lanes. */
static void data_make(narrow_data *d, size_t dv, tu_rng *r)
{
    d->dv = dv;
    const size_t vts = dv + PAD;
    d->q = calloc(LQ * (DQK + PAD), sizeof(float));
    d->k = calloc(LK * (DQK + PAD), sizeof(float));
    d->v = malloc(LK * vts * sizeof(float));
    ck_assert(d->q != NULL && d->k != NULL && d->v != NULL);
    for (size_t j = 0; j < LK; j++)
        for (size_t e = 0; e < vts; e++) {
            const size_t h = (j * 13 + e) % (N_HARD + N_HARD / 2);
            const uint32_t bits = h < N_HARD ? hard[h] : (uint32_t)tu_next(r);
            d->v[j * vts + e] = spattn__f32_from_bits(bits);
        }
    int64_t rp[LQ + 1];
    int32_t ci[LQ];
    for (size_t i = 0; i <= LQ; i++)
        rp[i] = (int64_t)i;
    for (size_t i = 0; i < LQ; i++)
        ci[i] = (int32_t)key_of(i);
    d->mask = NULL;
    ck_assert_int_eq(spattn_mask_from_csr(LQ, LK, rp, ci, &d->mask), SPATTN_OK);
}

static void data_free(narrow_data *d)
{
    spattn_mask_free(d->mask);
    free(d->q);
    free(d->k);
    free(d->v);
}

/* n floats of x in type t (rounded as spattn__store_row does). */
static void *typed(const float *x, size_t n, spattn_dtype t)
{
    void *y = malloc(n * sizeof(float)); /* room for any type */
    ck_assert_ptr_nonnull(y);
    spattn__store_row(y, t, x, n);
    return y;
}

static spattn_head_job job_for(const narrow_data *d, const void *k, const void *v, spattn_dtype kvt,
                               void *o, spattn_dtype ot)
{
    spattn_head_job job;
    memset(&job, 0, sizeof job);
    job.q = d->q;
    job.k = k;
    job.v = v;
    job.o = o;
    job.lse = NULL;
    job.q_ts = job.k_ts = DQK + PAD;
    job.v_ts = job.o_ts = (ptrdiff_t)(d->dv + PAD);
    job.q_dtype = SPATTN_DTYPE_F32;
    job.kv_dtype = kvt;
    job.o_dtype = ot;
    job.dim_qk = DQK;
    job.dim_v = d->dv;
    job.scale = 1.0f;
    return job;
}

enum { CALL_TILES, CALL_TILES2, CALL_GATHER, CALL_MIXED, N_CALLS };
static const char *const call_name[N_CALLS] = {"attn_tiles", "attn_tiles2", "attn_gather",
                                               "attn_mixed"};

/* One call of kind `call` on query tile qt (tile paths) or on every tile (the others). */
static void call_kernel(const spattn_kernel_table *kt, int call, const spattn_head_job *job,
                        const spattn_mask *m, const spattn_keyrows *kr_gather,
                        const spattn_keyrows *kr_mixed, size_t qt, float *scratch)
{
    switch (call) {
    case CALL_TILES:
        kt->attn_tiles(job, m, qt, scratch);
        break;
    case CALL_TILES2:
        kt->attn_tiles2(job, m, qt, scratch);
        break;
    case CALL_GATHER:
        kt->attn_gather(job, kr_gather, 0, m->nqt, scratch);
        break;
    default:
        kt->attn_mixed(job, m, kr_mixed, 0, m->nqt, scratch);
        break;
    }
}

/* Float O row of the float-V call must be V's row of key_of(i): bitwise, except that a NaN
   may come out quieted and -0 as +0 (0 + 1 * -0). */
static void check_o_is_v(const narrow_data *d, const float *o, size_t i, const char *what)
{
    const float *v = d->v + key_of(i) * (d->dv + PAD);
    for (size_t e = 0; e < d->dv; e++) {
        const uint32_t a = spattn__f32_bits(o[e]), b = spattn__f32_bits(v[e]);
        const int ok = isnan(v[e])    ? isnan(o[e]) && (a | 0x00400000u) == (b | 0x00400000u)
                       : v[e] == 0.0f ? o[e] == 0.0f
                                      : a == b;
        if (!ok)
            ck_abort_msg("%s: float O[%zu][%zu] = 0x%08x, V 0x%08x", what, i, e, (unsigned)a,
                         (unsigned)b);
    }
}

static void check_isa_dim(const spattn_kernel_table *kt, size_t dv)
{
    tu_rng r = {0x0a77e5ull + dv};
    narrow_data d;
    data_make(&d, dv, &r);
    const spattn_mask *m = d.mask;
    const size_t ots = dv + PAD, no = LQ * ots;
    uint8_t *all = malloc(m->nqt), *tg = calloc(m->ntiles + 1, 1);
    ck_assert(all != NULL && tg != NULL);
    memset(all, 1, m->nqt);
    spattn_keyrows krg, krm;
    ck_assert_int_eq(spattn__keyrows_build(m, all, NULL, &krg), SPATTN_OK);
    memset(all, SPATTN_QT_MIXED, m->nqt);
    for (size_t t = 0; t < m->ntiles; t++)
        tg[t] = m->tiles[t].part != SPATTN_FULL;
    ck_assert_int_eq(spattn__keyrows_build(m, all, tg, &krm), SPATTN_OK);
    const size_t longest = krg.longest > krm.longest ? krg.longest : krm.longest;
    float *scratch = aligned_alloc(
        64, (kt->scratch_floats(DQK, dv, LQ, longest) * sizeof(float) + 63) / 64 * 64);
    float *o32 = malloc(no * sizeof(float));
    uint16_t *o16 = malloc(no * sizeof(uint16_t)), *want = malloc(dv * sizeof(uint16_t));
    ck_assert(scratch != NULL && o32 != NULL && o16 != NULL && want != NULL);
    static const spattn_dtype kvts[] = {SPATTN_DTYPE_F32, SPATTN_DTYPE_BF16, SPATTN_DTYPE_F16};
    static const spattn_dtype ots16[] = {SPATTN_DTYPE_BF16, SPATTN_DTYPE_F16};
    size_t checked = 0;
    for (size_t a = 0; a < 3; a++) {
        const spattn_dtype kvt = kvts[a];
        void *k = typed(d.k, LK * (DQK + PAD), kvt), *v = typed(d.v, LK * ots, kvt);
        for (int call = 0; call < N_CALLS; call++) {
            if ((call == CALL_TILES2 && kt->attn_tiles2 == NULL) ||
                (call == CALL_MIXED && kt->attn_mixed == NULL))
                continue;
            const size_t ncalls = call <= CALL_TILES2 ? m->nqt : 1;
            for (size_t qt = 0; qt < ncalls; qt += call == CALL_TILES2 ? 2 : 1) {
                size_t i0 = 0, i1 = LQ;
                if (call == CALL_TILES2 && qt + 1 >= m->nqt)
                    continue;
                if (call == CALL_TILES) {
                    i0 = qt * SPATTN_TQ;
                    i1 = i0 + spattn__qt_rows(m, qt);
                } else if (call == CALL_TILES2) {
                    i0 = qt * SPATTN_TQ;
                    i1 = i0 + SPATTN_TQ + spattn__qt_rows(m, qt + 1);
                }
                spattn_head_job j32 = job_for(&d, k, v, kvt, o32, SPATTN_DTYPE_F32);
                call_kernel(kt, call, &j32, m, &krg, &krm, qt, scratch);
                for (size_t b = 0; b < 2; b++) {
                    const spattn_dtype ot = ots16[b];
                    char what[160];
                    snprintf(what, sizeof what, "%s %s qt %zu, dim_v %zu, kv type %d, o type %d",
                             kt->name, call_name[call], qt, dv, (int)kvt, (int)ot);
                    for (size_t x = 0; x < no; x++)
                        o16[x] = CANARY16;
                    spattn_head_job j16 = job_for(&d, k, v, kvt, o16, ot);
                    call_kernel(kt, call, &j16, m, &krg, &krm, qt, scratch);
                    for (size_t i = i0; i < i1; i++) {
                        if (kvt == SPATTN_DTYPE_F32 && b == 0)
                            check_o_is_v(&d, o32 + i * ots, i, what);
                        spattn__store_row(want, ot, o32 + i * ots, dv);
                        for (size_t e = 0; e < dv; e++)
                            if (o16[i * ots + e] != want[e])
                                ck_abort_msg("%s: O[%zu][%zu] = 0x%04x, store_row 0x%04x of "
                                             "0x%08x",
                                             what, i, e, (unsigned)o16[i * ots + e],
                                             (unsigned)want[e],
                                             (unsigned)spattn__f32_bits(o32[i * ots + e]));
                        for (size_t e = dv; e < ots; e++)
                            if (o16[i * ots + e] != CANARY16)
                                ck_abort_msg("%s: padding after O row %zu written", what, i);
                        checked++;
                    }
                }
            }
        }
        free(k);
        free(v);
    }
    /* At least the tile and gather calls of every V type and O type, every row. */
    ck_assert_uint_ge(checked, 3 * 2 * 2 * LQ);
    free(scratch);
    free(o32);
    free(o16);
    free(want);
    free(all); /* tg belongs to krm */
    spattn__keyrows_free(&krg);
    spattn__keyrows_free(&krm);
    data_free(&d);
}

/* Each kernels.inc entry: dims with full vectors only (64: key pairs for bf16 V) and with a
   masked tail on every vector width. */
START_TEST(o_narrow_hard_values)
{
    const spattn_kernel_table *kt = tu_kernel_table((size_t)_i, "o_narrow");
    if (kt == NULL)
        return;
    static const size_t dvs[] = {64, 23, 1};
    for (size_t x = 0; x < sizeof dvs / sizeof dvs[0]; x++)
        check_isa_dim(kt, dvs[x]);
}
END_TEST

Suite *suite_o_narrow(void);
Suite *suite_o_narrow(void)
{
    Suite *s = suite_create("o_narrow");
    TCase *tc = tcase_create("hard_values");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, o_narrow_hard_values, 0, (int)tu_n_kernels());
    suite_add_tcase(s, tc);
    return s;
}
