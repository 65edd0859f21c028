/*
 * Element types (spattn_dtype): the four conversions against values derived here from the
 * formats' definitions, and every (q, kv, o) type triple through every ISA this host runs,
 * against the float64 reference with the contract's tolerance (t_in + t_out) * (1 + |ref|).
 *
 * Each triple gets cases of odd and round dims, one-row and one-key heads, GQA (decode packs
 * a KV group's heads into one tile), strided layouts (padded bhtd and bthd, the padding NaN),
 * random masks with fully masked rows (O must be exactly +0 in every o_dtype) and keys no row
 * allows (their K and V rows NaN and Inf, which must reach no output), softcap, ALiBi and
 * sinks, both kernel paths, and 1 vs 2 threads (bitwise equal). Beyond the tolerance, a typed
 * call must compute what an F32 call on the widened values computes, bit for bit, with O
 * rounded to nearest even: the kernels widen exactly and round only when O is stored (except
 * bf16 Q and K on AVX512-BF16, whose dot products are held to the tolerance alone).
 *
 * SPATTN_TEST_DTYPE_REPORT=1 with CK_FORK=no prints the worst error / tolerance per ISA and
 * triple.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plan/test_hooks.h"
#include "test_util.h"

/* ---- the formats, from their definitions ------------------------------------------------ */

static uint32_t bits_of(float x)
{
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    return u;
}

static float float_of(uint32_t u)
{
    float x;
    memcpy(&x, &u, sizeof x);
    return x;
}

/* The value of a binary16 / bfloat16 pattern: sign, biased exponent and fraction as the IEEE
   formulas give them (NaN for the NaN patterns). */
static double half_value(uint16_t h, int exp_bits, int frac_bits)
{
    const int bias = (1 << (exp_bits - 1)) - 1;
    const unsigned e = (h >> frac_bits) & ((1u << exp_bits) - 1u), f = h & ((1u << frac_bits) - 1u);
    double v;
    if (e == (1u << exp_bits) - 1u)
        v = f != 0 ? NAN : INFINITY;
    else if (e == 0)
        v = ldexp((double)f, 1 - bias - frac_bits);
    else
        v = ldexp((double)(f + (1u << frac_bits)), (int)e - bias - frac_bits);
    return (h >> 15) ? -v : v;
}
static double f16_value(uint16_t h)
{
    return half_value(h, 5, 10);
}
static double bf16_value(uint16_t h)
{
    return half_value(h, 8, 7);
}

/* The pattern nearest to finite x, ties to the even pattern, found by search over the
   positive patterns (their values increase with the pattern): `top` is the largest finite
   pattern, `beyond` the value one step past it, which rounds to Inf. */
static uint16_t nearest(double x, double (*value)(uint16_t), uint16_t top, double beyond)
{
    const uint16_t sign = signbit(x) ? 0x8000u : 0u;
    const double a = fabs(x);
    unsigned lo = 0, hi = top; /* value(lo) <= a */
    if (a >= value(top)) {
        lo = top;
    } else {
        while (hi - lo > 1) {
            unsigned mid = (lo + hi) / 2;
            if (value((uint16_t)mid) <= a)
                lo = mid;
            else
                hi = mid;
        }
    }
    const double vl = value((uint16_t)lo), vh = lo == top ? beyond : value((uint16_t)(lo + 1));
    unsigned pick = lo;
    if (a - vl > vh - a || (a - vl == vh - a && (lo & 1u)))
        pick = lo + 1;
    if (pick > top) /* past the largest finite value: Inf */
        return (uint16_t)(sign | (top + 1u));
    return (uint16_t)(sign | pick);
}

static void check_to_half(float x, uint16_t got, int f16)
{
    if (isnan(x)) {
        const int nan = f16 ? ((got & 0x7c00u) == 0x7c00u && (got & 0x3ffu) != 0)
                            : ((got & 0x7f80u) == 0x7f80u && (got & 0x7fu) != 0);
        ck_assert_msg(nan && (got >> 15) == (bits_of(x) >> 31),
                      "NaN %08x -> %04x: not a NaN of the same sign", bits_of(x), got);
        return;
    }
    uint16_t want;
    if (isinf(x))
        want = (uint16_t)((signbit(x) ? 0x8000u : 0u) | (f16 ? 0x7c00u : 0x7f80u));
    else if (f16)
        want = nearest((double)x, f16_value, 0x7bff, 65536.0);
    else
        want = nearest((double)x, bf16_value, 0x7f7f, ldexp(1.0, 128));
    TU_CHECK_MSG(got == want, "%s(%a = %08x) = %04x, nearest-even is %04x", f16 ? "f16" : "bf16",
                 (double)x, bits_of(x), got, want);
}

/* Every one of the 65536 patterns of each format widened, bit for bit (NaN: a NaN of the same
   sign whose fraction starts with the pattern's). */
START_TEST(widen_every_pattern)
{
    static uint16_t h[65536];
    static float y[65536];
    for (uint32_t i = 0; i < 65536; i++)
        h[i] = (uint16_t)i;
    for (int f16 = 0; f16 < 2; f16++) {
        if (f16)
            spattn_f16_to_f32(h, y, 65536);
        else
            spattn_bf16_to_f32(h, y, 65536);
        for (uint32_t i = 0; i < 65536; i++) {
            const double want = f16 ? f16_value(h[i]) : bf16_value(h[i]);
            if (isnan(want)) {
                const uint32_t frac = f16 ? (i & 0x3ffu) << 13 : (i & 0x7fu) << 16;
                ck_assert_msg(isnan(y[i]) && (bits_of(y[i]) >> 31) == (i >> 15) &&
                                  (bits_of(y[i]) & frac) == frac,
                              "%04x -> %08x", i, bits_of(y[i]));
                continue;
            }
            TU_CHECK_MSG(bits_of(y[i]) == bits_of((float)want), "%s %04x -> %a, want %a",
                         f16 ? "f16" : "bf16", i, (double)y[i], want);
        }
    }
}
END_TEST

/* Narrowing: every pattern's own value, the midpoints between neighbours (ties: to even) and
   one float either side of each, the edges of the f16 range, zeros, Inf, NaNs with payloads,
   and a million random float patterns; each against the search above. */
START_TEST(narrow_nearest_even)
{
    enum { N = 1 << 20 };
    float *x = malloc(N * sizeof(float));
    uint16_t *y = malloc(N * sizeof(uint16_t));
    ck_assert(x != NULL && y != NULL);
    for (int f16 = 0; f16 < 2; f16++) {
        size_t n = 0;
        for (uint32_t i = 0; i < 65536; i++) {
            const double v = f16 ? f16_value((uint16_t)i) : bf16_value((uint16_t)i);
            if (isnan(v))
                continue;
            x[n++] = (float)v;
            const double w = f16 ? f16_value((uint16_t)(i + 1)) : bf16_value((uint16_t)(i + 1));
            if ((i & 0x7fffu) == 0x7fffu || isnan(w) || isinf(v) || isinf(w))
                continue;
            const float mid = (float)((v + w) / 2); /* exact: one bit more than the format */
            x[n++] = mid;
            x[n++] = nextafterf(mid, INFINITY);
            x[n++] = nextafterf(mid, -INFINITY);
        }
        const float edges[] = {65504.0f,  65519.99f, 65520.0f,    65535.0f,        65536.0f,
                               1e10f,     0x1p-24f,  0x1p-25f,    0x1.000002p-25f, 0x1.8p-24f,
                               0x1p-26f,  3e38f,     0x1.fep127f, 0x1.fdp127f,     0x1.fffffep127f,
                               0x1p-149f, 0x1p-133f, 0x1p-134f,   0x1.8p-133f,     0.0f,
                               -0.0f,     INFINITY,  -INFINITY};
        for (size_t i = 0; i < sizeof edges / sizeof edges[0]; i++) {
            x[n++] = edges[i];
            x[n++] = -edges[i];
        }
        const uint32_t nans[] = {0x7fc00000u, 0xffc00000u, 0x7f800001u, 0xff800001u,
                                 0x7fbfffffu, 0x7f802000u, 0xffffffffu, 0x7f800100u};
        for (size_t i = 0; i < sizeof nans / sizeof nans[0]; i++)
            x[n++] = float_of(nans[i]);
        tu_rng r = {0xd7e5u + (uint64_t)f16};
        while (n < N)
            x[n++] = float_of((uint32_t)tu_next(&r));
        if (f16)
            spattn_f32_to_f16(x, y, n);
        else
            spattn_f32_to_bf16(x, y, n);
        for (size_t i = 0; i < n; i++)
            check_to_half(x[i], y[i], f16);
    }
    free(x);
    free(y);
}
END_TEST

/* ---- attention in every type triple ---------------------------------------------------- */

static size_t esize(spattn_dtype t)
{
    return t == SPATTN_DTYPE_F32 ? 4 : 2;
}

static const char *dname(spattn_dtype t)
{
    return t == SPATTN_DTYPE_F32 ? "f32" : t == SPATTN_DTYPE_BF16 ? "bf16" : "f16";
}

/* The contract's t_in (by the narrowest of q and kv) and t_out. */
static double t_in(spattn_dtype q, spattn_dtype kv)
{
    if (q == SPATTN_DTYPE_BF16 || kv == SPATTN_DTYPE_BF16)
        return 1e-2;
    if (q == SPATTN_DTYPE_F16 || kv == SPATTN_DTYPE_F16)
        return 2e-3;
    return 2e-5;
}
static double t_out(spattn_dtype o)
{
    return o == SPATTN_DTYPE_F32 ? 0.0 : o == SPATTN_DTYPE_BF16 ? 0x1p-8 : 0x1p-11;
}

/* Element i of a typed buffer, widened; and x stored there (nearest even). */
static float get(const void *p, size_t i, spattn_dtype t)
{
    float y;
    if (t == SPATTN_DTYPE_F32) {
        memcpy(&y, (const char *)p + 4 * i, sizeof y);
        return y;
    }
    if (t == SPATTN_DTYPE_BF16)
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

/* A [batch][heads][len][dim] tensor: padded bhtd (kind 0) or bthd (kind 1), `pad` elements of
   NaN after each row (inputs) or of canary bytes (outputs). */
typedef struct tens {
    size_t b, h, l, d, pad, n;
    int kind;
    spattn_layout lay;
} tens;

static tens tens_make(size_t b, size_t h, size_t l, size_t d, size_t pad, int kind)
{
    tens t = {b, h, l, d, pad, b * h * l * (d + pad), kind, {0, 0, 0}};
    const ptrdiff_t row = (ptrdiff_t)(d + pad);
    if (kind == 0)
        t.lay = (spattn_layout){(ptrdiff_t)(h * l) * row, (ptrdiff_t)l * row, row};
    else
        t.lay = (spattn_layout){(ptrdiff_t)(h * l) * row, row, (ptrdiff_t)h * row};
    return t;
}

static size_t at(const tens *t, size_t b, size_t h, size_t i)
{
    return (size_t)((ptrdiff_t)b * t->lay.batch + (ptrdiff_t)h * t->lay.head +
                    (ptrdiff_t)i * t->lay.token);
}

typedef struct dcase {
    spattn_shape s;
    tens tq, tk, tv, to;
    spattn_mask *mask;
    uint8_t *dense;   /* len_q x len_k */
    float *q, *k, *v; /* values (already representable in their types), rows padded NaN */
    float softcap;
    float slopes[8], sinks[8];
    int alibi, sink;
    spattn_path path;
    int pairs; /* the shape set (dcase_make) */
} dcase;

static void fill(tu_rng *r, const tens *t, float *x, spattn_dtype ty)
{
    for (size_t i = 0; i < t->n; i++)
        x[i] = NAN;
    for (size_t b = 0; b < t->b; b++)
        for (size_t h = 0; h < t->h; h++)
            for (size_t i = 0; i < t->l; i++)
                for (size_t d = 0; d < t->d; d++) {
                    /* Rounded through the type, so that the F32 copy holds the same value. */
                    uint16_t hb;
                    float v = tu_normal(r);
                    if (ty == SPATTN_DTYPE_BF16) {
                        spattn_f32_to_bf16(&v, &hb, 1);
                        spattn_bf16_to_f32(&hb, &v, 1);
                    } else if (ty == SPATTN_DTYPE_F16) {
                        spattn_f32_to_f16(&v, &hb, 1);
                        spattn_f16_to_f32(&hb, &v, 1);
                    }
                    x[at(t, b, h, i) + d] = v;
                }
}

static const size_t lens_q[] = {1, 1, 2, 5, 16, 17, 33};
static const size_t lens_k[] = {1, 3, 16, 64, 65, 100, 130};
static const size_t dimset[] = {1, 3, 8, 16, 17, 24, 32, 40, 64, 65, 128};
/* Where AVX512-BF16 takes both products as pair dot products (dim_v a multiple of 32, FULL key
   tiles), with odd key counts. */
static const size_t pair_lens_q[] = {5, 16, 17, 33};
static const size_t pair_lens_k[] = {64, 65, 77, 130};
static const size_t pair_dims[] = {32, 64, 96, 128};
/* Where the AVX-512 column QK widens 16-bit K a register block ahead: at least two query
   tiles (so tile pairs too), odd key counts and dims, and a dim whose rows fit its stack for
   tile pairs (4 keys a block) but not single tiles (8), which widen per broadcast. The
   row-major P V widens 16-bit V per pass of 64 dims for tiles of more than 12 rows: tiles of
   16 and 13 rows (45), passes that end inside a vector (65, 264). */
static const size_t staged_lens_q[] = {32, 33, 45, 48};
static const size_t staged_lens_k[] = {65, 77, 130};
static const size_t staged_dims[] = {17, 65, 264};
/* Where AVX-512 widens a 16-bit V tile once for a pair of query tiles (FULL key tiles or a
   short last one, dim_v == dim_qk): dims below and off the QK's 8-dim steps and the stage's
   16-float rows, blocks of 4 keys with a short last one (77, 130). */
static const size_t pstage_lens_q[] = {32, 33, 48};
static const size_t pstage_lens_k[] = {64, 77, 130};
static const size_t pstage_dims[] = {4, 17, 64, 72, 128};
/* Strided masks on the gather path, whose rows start with a progression of keys that the
   kernels copy into residue blocks (plan/keyrows.h): strides and lengths with many rows per
   residue, odd dims. */
static const size_t strided_lens[] = {130, 150};
static const size_t window_lens[] = {70, 300};
static const size_t window_dims[] = {17, 64, 128, 300}; /* 300: a stage of fewer keys */
static const size_t strided_dims[] = {17, 64, 128};
#define PICK(r, a) (a)[tu_range(r, 0, sizeof(a) / sizeof((a)[0]) - 1)]

/* pairs: 1, shapes from the pair_* sets; 2, from the staged_* sets; 3, strided_* shapes with
   a strided mask on the gather path; 4, window_* shapes; 5, pstage_* shapes, causal or dense. */
static void dcase_make(dcase *c, uint64_t seed, spattn_dtype qt, spattn_dtype kvt, int pairs)
{
    memset(c, 0, sizeof *c);
    c->pairs = pairs;
    tu_rng r = {seed};
    const size_t hkv = tu_range(&r, 1, 2), g = tu_range(&r, 1, 4);
    c->s =
        (spattn_shape){tu_range(&r, 1, 2), hkv * g,         hkv, PICK(&r, lens_q), PICK(&r, lens_k),
                       PICK(&r, dimset),   PICK(&r, dimset)};
    if (pairs == 1) {
        c->s.len_q = PICK(&r, pair_lens_q);
        c->s.len_k = PICK(&r, pair_lens_k);
        c->s.dim_qk = PICK(&r, pair_dims);
        c->s.dim_v = PICK(&r, pair_dims);
    } else if (pairs == 2) {
        c->s.len_q = PICK(&r, staged_lens_q);
        c->s.len_k = PICK(&r, staged_lens_k);
        c->s.dim_qk = PICK(&r, staged_dims);
        c->s.dim_v = PICK(&r, staged_dims);
    } else if (pairs == 5) {
        c->s.len_q = PICK(&r, pstage_lens_q);
        c->s.len_k = PICK(&r, pstage_lens_k);
        /* consecutive seeds take every dim in turn */
        c->s.dim_qk = c->s.dim_v = pstage_dims[seed % (sizeof pstage_dims / sizeof pstage_dims[0])];
    } else if (pairs == 3) { /* one batch, at most two query heads: emulated runs are slow */
        c->s.batch = 1;
        c->s.heads_kv = 1;
        c->s.heads_q = tu_range(&r, 1, 2);
        c->s.len_q = PICK(&r, strided_lens);
        c->s.len_k = c->s.len_q + (tu_uniform(&r) < 0.5 ? 0 : 21);
        c->s.dim_qk = PICK(&r, strided_dims);
        c->s.dim_v = PICK(&r, strided_dims);
    } else if (pairs == 4) { /* as 3: emulated runs are slow */
        c->s.batch = 1;
        c->s.heads_kv = 1;
        c->s.heads_q = tu_range(&r, 1, 2);
        c->s.len_q = PICK(&r, window_lens);
        c->s.len_k = c->s.len_q + (tu_uniform(&r) < 0.5 ? 0 : 37);
        c->s.dim_qk = PICK(&r, window_dims);
        c->s.dim_v = PICK(&r, window_dims);
    }
    const spattn_shape *s = &c->s;
    c->tq = tens_make(s->batch, s->heads_q, s->len_q, s->dim_qk, tu_range(&r, 0, 3),
                      (int)tu_range(&r, 0, 1));
    c->tk = tens_make(s->batch, s->heads_kv, s->len_k, s->dim_qk, tu_range(&r, 0, 3),
                      (int)tu_range(&r, 0, 1));
    c->tv = tens_make(s->batch, s->heads_kv, s->len_k, s->dim_v, tu_range(&r, 0, 3),
                      (int)tu_range(&r, 0, 1));
    c->to = tens_make(s->batch, s->heads_q, s->len_q, s->dim_v, tu_range(&r, 0, 3),
                      (int)tu_range(&r, 0, 1));
    c->mask = tu_random_mask(&r, s->len_q, s->len_k);
    /* Pair shapes: mostly masks with FULL key tiles (causal or dense), where P.V takes pairs. */
    const int full_kind = pairs == 1 || pairs == 2 ? (int)tu_range(&r, 0, 2)
                          : pairs == 5             ? (int)tu_range(&r, 1, 2)
                                                   : 0;
    if (pairs == 3) {
        spattn_mask_free(c->mask);
        c->mask = NULL;
        ck_assert_int_eq(spattn_mask_strided(s->len_q, s->len_k, tu_range(&r, 8, 12), &c->mask),
                         SPATTN_OK);
    }
    if (pairs == 4) {
        /* A causal window of 4 to 60 keys, every 7th row also a key far off (rows the gather
           path's stage cannot hold beside their neighbours). */
        const size_t left = tu_range(&r, 3, 59);
        uint8_t *d = calloc(s->len_q * s->len_k, 1);
        ck_assert_ptr_nonnull(d);
        for (size_t i = 0; i < s->len_q; i++) {
            const size_t ip = i + s->len_k - s->len_q;
            for (size_t j = ip > left ? ip - left : 0; j <= ip; j++)
                d[i * s->len_k + j] = 1;
            if (i % 7 == 3)
                d[i * s->len_k + (ip + s->len_k / 2) % s->len_k] = 1;
        }
        spattn_mask_free(c->mask);
        c->mask = NULL;
        ck_assert_int_eq(spattn_mask_from_dense(s->len_q, s->len_k, d, s->len_k, &c->mask),
                         SPATTN_OK);
        free(d);
    }
    if (full_kind != 0) {
        spattn_mask_free(c->mask);
        c->mask = NULL;
        ck_assert_int_eq(full_kind == 1
                             ? spattn_mask_causal(s->len_q, s->len_k, &c->mask)
                             : spattn_mask_window(s->len_q, s->len_k, s->len_k, s->len_k, &c->mask),
                         SPATTN_OK);
    }
    c->dense = malloc(s->len_q * s->len_k);
    ck_assert_ptr_nonnull(c->dense);
    ck_assert_int_eq(spattn_mask_to_dense(c->mask, c->dense, s->len_k), SPATTN_OK);
    c->q = malloc(c->tq.n * sizeof(float));
    c->k = malloc(c->tk.n * sizeof(float));
    c->v = malloc(c->tv.n * sizeof(float));
    ck_assert(c->q && c->k && c->v);
    fill(&r, &c->tq, c->q, qt);
    fill(&r, &c->tk, c->k, kvt);
    fill(&r, &c->tv, c->v, kvt);
    /* Keys no row allows: NaN in K, NaN and Inf in V (never to be read). */
    for (size_t j = 0; j < s->len_k; j++) {
        int used = 0;
        for (size_t i = 0; i < s->len_q; i++)
            used |= c->dense[i * s->len_k + j];
        for (size_t b = 0; b < s->batch && !used; b++)
            for (size_t h = 0; h < s->heads_kv; h++) {
                for (size_t d = 0; d < s->dim_qk; d++)
                    c->k[at(&c->tk, b, h, j) + d] = NAN;
                for (size_t d = 0; d < s->dim_v; d++)
                    c->v[at(&c->tv, b, h, j) + d] = d % 2 ? INFINITY : NAN;
            }
    }
    /* Sometimes a NaN in K or V of a key that some rows allow and others do not: only the
       rows that allow it may turn NaN. */
    const int poison = (int)tu_range(&r, 0, 2);
    for (size_t j = 0; j < s->len_k && poison != 0; j++) {
        size_t users = 0;
        for (size_t i = 0; i < s->len_q; i++)
            users += c->dense[i * s->len_k + j];
        if (users == 0 || users == s->len_q)
            continue;
        if (poison == 1)
            c->k[at(&c->tk, 0, 0, j) + tu_range(&r, 0, s->dim_qk - 1)] = NAN;
        else
            c->v[at(&c->tv, 0, 0, j) + tu_range(&r, 0, s->dim_v - 1)] = NAN;
        break;
    }
    const int mods = (int)tu_range(&r, 0, 7);
    c->softcap = mods & 1 ? 5.0f : 0.0f;
    c->alibi = (mods >> 1) & 1;
    c->sink = (mods >> 2) & 1;
    for (size_t h = 0; h < 8; h++) {
        c->slopes[h] = 0.02f * (float)(h + 1);
        c->sinks[h] = h % 3 == 2 ? -INFINITY : (float)h - 1.5f;
    }
    c->path = (spattn_path)tu_range(&r, SPATTN_PATH_AUTO, SPATTN_PATH_GATHER);
    if (pairs == 3 || pairs == 4)
        c->path = SPATTN_PATH_GATHER;
    if (pairs == 5) /* the tile pairs */
        c->path = SPATTN_PATH_TILES;
}

static void dcase_free(dcase *c)
{
    spattn_mask_free(c->mask);
    free(c->dense);
    free(c->q);
    free(c->k);
    free(c->v);
}

/* A typed copy of x (n elements) in type t. */
static void *typed(const float *x, size_t n, spattn_dtype t)
{
    void *p = malloc(n * esize(t) + 1);
    ck_assert_ptr_nonnull(p);
    for (size_t i = 0; i < n; i++)
        put(p, i, t, x[i]);
    return p;
}

static spattn_args dargs(const dcase *c, const void *q, const void *k, const void *v, void *o,
                         float *lse, spattn_dtype qt, spattn_dtype kvt, spattn_dtype ot)
{
    spattn_args a;
    memset(&a, 0, sizeof a);
    a.shape = c->s;
    a.q = q;
    a.k = k;
    a.v = v;
    a.o = o;
    a.q_layout = c->tq.lay;
    a.k_layout = c->tk.lay;
    a.v_layout = c->tv.lay;
    a.o_layout = c->to.lay;
    a.lse = lse;
    a.softcap = c->softcap;
    a.alibi_slopes = c->alibi ? c->slopes : NULL;
    a.sinks = c->sink ? c->sinks : NULL;
    a.q_dtype = qt;
    a.kv_dtype = kvt;
    a.o_dtype = ot;
    return a;
}

#define CANARY_BYTE 0xa5

/* Worst |got - ref| / tolerance per ISA and triple (for the report). */
static double worst[TU_MAX_ISAS][27];

static spattn_status run_plan(const dcase *c, const spattn_args *a, spattn_isa isa, int threads)
{
    spattn_options opt = {isa, threads};
    const spattn_mask *ml[1] = {c->mask};
    spattn_plan *p = NULL;
    spattn_status st = spattn__plan_create_path(&c->s, ml, 1, &opt, c->path, &p);
    /* Strided cases must take the residue blocks, or they test nothing new. */
    if (st == SPATTN_OK && c->pairs == 3)
        ck_assert_msg(spattn__plan_prog_rows(p) > 0, "strided mask without residue blocks");
    if (st == SPATTN_OK)
        st = spattn_plan_execute(p, a);
    spattn_plan_free(p);
    return st;
}

/* One case of one triple on every ISA. */
static void check_case(int tri, uint64_t seed, int pairs)
{
    const spattn_dtype qt = (spattn_dtype)(tri / 9), kvt = (spattn_dtype)(tri / 3 % 3),
                       ot = (spattn_dtype)(tri % 3);
    dcase c;
    dcase_make(&c, seed, qt, kvt, pairs);
    const spattn_shape *s = &c.s;
    const size_t nl = s->batch * s->heads_q * s->len_q;
    void *q = typed(c.q, c.tq.n, qt), *k = typed(c.k, c.tk.n, kvt), *v = typed(c.v, c.tv.n, kvt);
    const spattn_mask *ml[1] = {c.mask};

    /* The reference on the typed inputs, O in float. */
    float *ref = malloc(c.to.n * sizeof(float)), *rlse = malloc(nl * sizeof(float));
    ck_assert(ref && rlse);
    spattn_args a = dargs(&c, q, k, v, ref, rlse, qt, kvt, SPATTN_DTYPE_F32);
    ck_assert_int_eq(spattn_reference_forward(&a, ml, 1), SPATTN_OK);
    /* ... and in o's type: within one rounding of the float one. */
    void *ref_o = malloc(c.to.n * esize(ot));
    ck_assert_ptr_nonnull(ref_o);
    a = dargs(&c, q, k, v, ref_o, NULL, qt, kvt, ot);
    ck_assert_int_eq(spattn_reference_forward(&a, ml, 1), SPATTN_OK);

    const double tol = t_in(qt, kvt) + t_out(ot);
    const size_t ob = c.to.n * esize(ot);
    unsigned char *o1 = malloc(ob), *o2 = malloc(ob);
    float *o32 = malloc(c.to.n * sizeof(float));
    float *l1 = malloc(nl * sizeof(float)), *l2 = malloc(nl * sizeof(float)),
          *l32 = malloc(nl * sizeof(float));
    ck_assert(o1 && o2 && o32 && l1 && l2 && l32);
    spattn_isa isas[TU_MAX_ISAS];
    const int n_isas = tu_isas(isas);
    char what[300];
    for (int x = 0; x < n_isas; x++) {
        snprintf(what, sizeof what,
                 "%s q %s kv %s o %s, seed %llu: batch %zu heads %zu/%zu len %zu x %zu dims "
                 "%zu/%zu layouts %d%d%d%d softcap %g alibi %d sink %d path %d",
                 spattn_isa_name(isas[x]), dname(qt), dname(kvt), dname(ot),
                 (unsigned long long)seed, s->batch, s->heads_q, s->heads_kv, s->len_q, s->len_k,
                 s->dim_qk, s->dim_v, c.tq.kind, c.tk.kind, c.tv.kind, c.to.kind, (double)c.softcap,
                 c.alibi, c.sink, (int)c.path);
        memset(o1, CANARY_BYTE, ob);
        memset(o2, CANARY_BYTE, ob);
        a = dargs(&c, q, k, v, o1, l1, qt, kvt, ot);
        ck_assert_int_eq(run_plan(&c, &a, isas[x], 1), SPATTN_OK);
        a = dargs(&c, q, k, v, o2, l2, qt, kvt, ot);
        ck_assert_int_eq(run_plan(&c, &a, isas[x], 2), SPATTN_OK);
        ck_assert_msg(memcmp(o1, o2, ob) == 0 && memcmp(l1, l2, nl * sizeof(float)) == 0,
                      "%s: 1 and 2 threads differ", what);
        /* The same values as F32 inputs, O in float: the typed call is its rounding. */
        a = dargs(&c, c.q, c.k, c.v, o32, l32, SPATTN_DTYPE_F32, SPATTN_DTYPE_F32,
                  SPATTN_DTYPE_F32);
        ck_assert_int_eq(run_plan(&c, &a, isas[x], 1), SPATTN_OK);
        /* The BF16 tiers take bf16 Q.K as pair dot products (unscaled Q, other sums), AMX f16
           as hi and lo tile products: within tolerance, but not the F32 computation's bits. */
        const int dots = tu_isa_half_dots(isas[x], qt, kvt, s->dim_qk);
        ck_assert_msg(dots || memcmp(l1, l32, nl * sizeof(float)) == 0,
                      "%s: lse differs from F32's", what);
        for (size_t b = 0; b < s->batch; b++)
            for (size_t h = 0; h < s->heads_q; h++)
                for (size_t i = 0; i < s->len_q; i++) {
                    int empty = 1;
                    for (size_t j = 0; j < s->len_k; j++)
                        empty &= !c.dense[i * s->len_k + j];
                    const size_t row = at(&c.to, b, h, i);
                    for (size_t d = 0; d < s->dim_v + c.to.pad; d++) {
                        const size_t e = row + d;
                        if (d >= s->dim_v) {
                            for (size_t y = 0; y < esize(ot); y++)
                                TU_CHECK_MSG(o1[e * esize(ot) + y] == CANARY_BYTE,
                                             "%s: padding after O row written", what);
                            continue;
                        }
                        const float got = get(o1, e, ot), want = ref[e];
                        if (empty) {
                            for (size_t y = 0; y < esize(ot); y++)
                                TU_CHECK_MSG(o1[e * esize(ot) + y] == 0,
                                             "%s: O[%zu][%zu][%zu][%zu] of a row with no key "
                                             "is not +0",
                                             what, b, h, i, d);
                        }
                        if (isnan(want)) { /* a poisoned key this row allows */
                            TU_CHECK_MSG(isnan(got) && isnan(o32[e]),
                                         "%s: O[%zu][%zu][%zu][%zu] = %.9g, reference NaN", what, b,
                                         h, i, d, (double)got);
                            continue;
                        }
                        const double err = fabs((double)got - (double)want),
                                     lim = tol * (1.0 + fabs((double)want));
                        TU_CHECK_MSG(isfinite(got) && err <= lim,
                                     "%s: O[%zu][%zu][%zu][%zu] = %.9g, reference %.9g", what, b, h,
                                     i, d, (double)got, (double)want);
                        if (err / lim > worst[isas[x]][tri])
                            worst[isas[x]][tri] = err / lim;
                        /* Exactly the F32 computation, rounded to nearest even. */
                        unsigned char want_bits[4];
                        put(want_bits, 0, ot, o32[e]);
                        TU_CHECK_MSG(dots || memcmp(o1 + e * esize(ot), want_bits, esize(ot)) == 0,
                                     "%s: O[%zu][%zu][%zu][%zu] = %.9g is not %.9g (F32) "
                                     "rounded",
                                     what, b, h, i, d, (double)got, (double)o32[e]);
                        /* The typed reference: one rounding of the float one. */
                        const double rr = get(ref_o, e, ot);
                        TU_CHECK_MSG(fabs(rr - want) <= t_out(ot) * fabs(want) + 0x1p-24,
                                     "%s: reference O in %s %.9g, in float %.9g", what, dname(ot),
                                     rr, (double)want);
                    }
                    const size_t li = (b * s->heads_q + h) * s->len_q + i;
                    TU_CHECK_MSG(tu_close(l1[li], rlse[li], tol), "%s: lse[%zu] = %.9g, ref %.9g",
                                 what, li, (double)l1[li], (double)rlse[li]);
                }
    }
    free(o1);
    free(o2);
    free(o32);
    free(l1);
    free(l2);
    free(l32);
    free(ref);
    free(rlse);
    free(ref_o);
    free(q);
    free(k);
    free(v);
    dcase_free(&c);
}

/* Triple _i = 9 q + 3 kv + o (spattn_dtype values), over its cases. */
START_TEST(every_triple_every_isa)
{
    const int n = tu_cases(10);
    for (int i = 0; i < n; i++)
        check_case(_i, 0xd7e50000ull + (uint64_t)_i * 1000u + (uint64_t)i, 0);
}
END_TEST

/* bf16 Q, K and V (o_dtype _i) in the shapes where AVX512-BF16 pairs both products, on every
   ISA. */
START_TEST(bf16_pair_shapes_every_isa)
{
    const int n = tu_cases(12);
    for (int i = 0; i < n; i++)
        check_case(9 * SPATTN_DTYPE_BF16 + 3 * SPATTN_DTYPE_BF16 + _i,
                   0xbf160000ull + (uint64_t)_i * 1000u + (uint64_t)i, 1);
}
END_TEST

/* `cases` cases of the triple (q, kv, o) = t in the shape set `pairs` (dcase_make). */
static void check_triple(const int t[3], uint64_t seed, int cases, int pairs)
{
    for (int i = 0; i < tu_cases(cases); i++)
        check_case(9 * t[0] + 3 * t[1] + t[2], seed + (uint64_t)i, pairs);
}

/* The 16-bit (q, kv, o) triples of the staged shapes' tests below: f16 throughout, the
   llama.cpp case, bf16 Q and K/V with float O, float Q and O over bf16 K/V. */
static const int kv16_triples[4][3] = {{SPATTN_DTYPE_F16, SPATTN_DTYPE_F16, SPATTN_DTYPE_F16},
                                       {SPATTN_DTYPE_F32, SPATTN_DTYPE_F16, SPATTN_DTYPE_F32},
                                       {SPATTN_DTYPE_BF16, SPATTN_DTYPE_BF16, SPATTN_DTYPE_F32},
                                       {SPATTN_DTYPE_F32, SPATTN_DTYPE_BF16, SPATTN_DTYPE_BF16}};

/* check_triple with the V stage of the row-major P V forced on, then off
   (spattn__set_v16_stage: the CPU picks one), then left to the CPU again. */
static void check_triple_both_stages(const int t[3], uint64_t seed, int cases, int pairs)
{
    for (int stage = 0; stage < 2; stage++) {
        spattn__set_v16_stage(stage);
        check_triple(t, seed, cases, pairs);
    }
    spattn__set_v16_stage(-1);
}

/* 16-bit K/V in the shapes where AVX-512 and AVX2 widen K (and V) ahead of the FMAs (staged_*
   sets; FULL tiles, pairs of them, and random masks with poisoned keys), on every ISA, with the
   V stage on and off: still the F32 computation's bits, and the same for 1 and 2 threads. */
START_TEST(kv16_staged_shapes_every_isa)
{
    check_triple_both_stages(kv16_triples[_i], 0x57a60000ull + (uint64_t)_i * 1000u, 3, 2);
}
END_TEST

/* 16-bit K/V where a pair of query tiles widens each V tile once for both (pstage_* set), on
   every ISA, with that stage on and off: still the F32 computation's bits, and the same for 1
   and 2 threads. */
START_TEST(kv16_pair_stage_every_isa)
{
    check_triple_both_stages(kv16_triples[_i], 0x51de0000ull + (uint64_t)_i * 1000u, 5, 5);
}
END_TEST

/* The (q, kv, o) triples of the gather path's tests below: float32, f16 throughout, the
   llama.cpp case (f32 Q and O over f16 K/V), bf16 throughout. */
static const int gather_triples[4][3] = {{SPATTN_DTYPE_F32, SPATTN_DTYPE_F32, SPATTN_DTYPE_F32},
                                         {SPATTN_DTYPE_F16, SPATTN_DTYPE_F16, SPATTN_DTYPE_F16},
                                         {SPATTN_DTYPE_F32, SPATTN_DTYPE_F16, SPATTN_DTYPE_F32},
                                         {SPATTN_DTYPE_BF16, SPATTN_DTYPE_BF16, SPATTN_DTYPE_BF16}};

/* 16-bit and float K/V on strided masks through the gather path's residue blocks (widened
   into float blocks), on every ISA: the F32 computation's bits, and the same for 1 and 2
   threads. */
START_TEST(strided_rows_every_isa)
{
    check_triple(gather_triples[_i], 0x5d1d0000ull + (uint64_t)_i * 1000u, 2, 3);
}
END_TEST

/* 16-bit and float K/V on narrow causal windows through the gather path, whose rows read
   16-bit K and V from the stage (widened once per sub-batch, gather.h), some rows beside it:
   on every ISA the F32 computation's bits, and the same for 1 and 2 threads. */
START_TEST(window_rows_every_isa)
{
    check_triple(gather_triples[_i], 0x3d1d0000ull + (uint64_t)_i * 1000u, 2, 4);
}
END_TEST

/* spattn_probs reads Q and K of any type: the same as on their F32 copies. */
START_TEST(probs_any_type)
{
    const spattn_dtype qt = (spattn_dtype)(_i / 3), kvt = (spattn_dtype)(_i % 3);
    for (int rep = 0; rep < 4; rep++) {
        dcase c;
        dcase_make(&c, 0x9b0b0000ull + (uint64_t)(_i * 16 + rep), qt, kvt, 0);
        void *q = typed(c.q, c.tq.n, qt), *k = typed(c.k, c.tk.n, kvt);
        const spattn_mask *ml[1] = {c.mask};
        spattn_plan *p = NULL;
        ck_assert_int_eq(spattn_plan_create(&c.s, ml, 1, NULL, &p), SPATTN_OK);
        const uint64_t np = spattn_plan_probs_len(p);
        const size_t nc = c.s.batch * c.s.heads_q * c.s.len_k;
        float *p1 = malloc((np + 1) * sizeof(float)), *p2 = malloc((np + 1) * sizeof(float));
        float *c1 = malloc(nc * sizeof(float)), *c2 = malloc(nc * sizeof(float));
        ck_assert(p1 && p2 && c1 && c2);
        spattn_args a = dargs(&c, q, k, NULL, NULL, NULL, qt, kvt, SPATTN_DTYPE_F32);
        ck_assert_int_eq(spattn_probs(p, &a, p1, c1), SPATTN_OK);
        a = dargs(&c, c.q, c.k, NULL, NULL, NULL, SPATTN_DTYPE_F32, SPATTN_DTYPE_F32,
                  SPATTN_DTYPE_F32);
        ck_assert_int_eq(spattn_probs(p, &a, p2, c2), SPATTN_OK);
        for (uint64_t i = 0; i < np; i++)
            TU_CHECK_MSG(tu_close(p1[i], p2[i], TU_TOL), "q %s kv %s: probs[%llu] %.9g vs %.9g",
                         dname(qt), dname(kvt), (unsigned long long)i, (double)p1[i],
                         (double)p2[i]);
        for (size_t i = 0; i < nc; i++)
            ck_assert_msg(tu_close(c1[i], c2[i], TU_TOL), "col_sums[%zu]", i);
        free(p1);
        free(p2);
        free(c1);
        free(c2);
        free(q);
        free(k);
        spattn_plan_free(p);
        dcase_free(&c);
    }
}
END_TEST

/* Printed on request: the worst error against tolerance of each ISA and triple. */
static void report(void)
{
    const char *env = getenv("SPATTN_TEST_DTYPE_REPORT");
    if (env == NULL || *env == '\0')
        return;
    for (int isa = 0; isa < TU_MAX_ISAS; isa++) {
        double any = 0.0;
        for (int t = 0; t < 27; t++)
            any += worst[isa][t];
        if (any == 0.0)
            continue;
        printf("dtypes %s worst error / tolerance (q kv o):", spattn_isa_name((spattn_isa)isa));
        for (int t = 0; t < 27; t++)
            printf("%s %s/%s/%s %.2g", t % 3 == 0 ? "\n " : "", dname((spattn_dtype)(t / 9)),
                   dname((spattn_dtype)(t / 3 % 3)), dname((spattn_dtype)(t % 3)), worst[isa][t]);
        printf("\n");
    }
}

/* f16 Q (every fourth case float32 Q), K and V with every mantissa bit used, against the
   reference, on the ISAs that take them as bf16 hi and lo tile products (tu_isa_half_dots): the
   split keeps 16 or more bits of every operand, so the error stays far inside the contract's f16
   tolerance (2e-3): within 1e-4 here, where dropping any one of the three products (an error of
   2^-9 of an operand) would not be. A sharp scale makes one key carry most of a row, so that such
   an error is not averaged away. Rows that meet an Inf in Q or in an allowed K row: the reference's
   Inf or NaN. 1 and 2 threads bitwise equal. */
/* n values uniform in [-1, 1). */
static void fill_pm1(tu_rng *r, float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        x[i] = (float)(2 * tu_uniform(r) - 1);
}

/* Arguments of one batch, heads_q query heads on one f16 K/V head, dense bhtd layouts; o,
   lse, scale and the rest zero. */
static void f16kv_args(spattn_args *a, spattn_shape s, const void *q, spattn_dtype qdt,
                       const uint16_t *kh, const uint16_t *vh)
{
    memset(a, 0, sizeof *a);
    a->shape = s;
    a->q = q;
    a->k = kh;
    a->v = vh;
    a->q_dtype = qdt;
    a->kv_dtype = SPATTN_DTYPE_F16;
    a->q_layout = spattn_layout_bhtd(s.heads_q, s.len_q, s.dim_qk);
    a->k_layout = spattn_layout_bhtd(1, s.len_k, s.dim_qk);
    a->v_layout = spattn_layout_bhtd(1, s.len_k, s.dim_v);
    a->o_layout = spattn_layout_bhtd(s.heads_q, s.len_q, s.dim_v);
}

START_TEST(f16_split_products)
{
    static const size_t dims[][2] = {{32, 64}, {64, 64}, {128, 128}, {64, 40}, {96, 128}};
    spattn_isa isas[TU_MAX_ISAS];
    const int n_isas = tu_isas(isas);
    tu_rng r = {0xf16f16};
    for (int c = 0; c < tu_cases(10); c++) {
        const size_t dq = dims[c % 5][0], dv = dims[c % 5][1];
        const size_t lq = tu_range(&r, 17, 70), lk = tu_range(&r, 60, 200), hq = 2 + c % 3;
        const spattn_shape s = {1, hq, 1, lq, lk, dq, dv};
        const size_t nq = hq * lq * dq, nk = lk * dq, nv = lk * dv, no = hq * lq * dv;
        float *q = malloc(nq * 4), *k = malloc(nk * 4), *v = malloc(nv * 4);
        uint16_t *qh = malloc(nq * 2), *kh = malloc(nk * 2), *vh = malloc(nv * 2);
        float *ref = malloc(no * 4), *o1 = malloc(no * 4), *o2 = malloc(no * 4);
        float *rl = malloc(hq * lq * 4), *l1 = malloc(hq * lq * 4), *l2 = malloc(hq * lq * 4);
        ck_assert(q && k && v && qh && kh && vh && ref && o1 && o2 && rl && l1 && l2);
        fill_pm1(&r, q, nq);
        fill_pm1(&r, k, nk);
        fill_pm1(&r, v, nv);
        if (c % 3 == 2) {
            /* Rare paths: +Inf in one Q row, whose dim d is negative in every key (its scores
               all -Inf: a row the reference gives zeros, which a lo part multiplied by the Inf
               would turn NaN), and -Inf in one K row at another dim. */
            const size_t qi = tu_range(&r, 0, nq - 1), d = qi % dq;
            q[qi] = INFINITY;
            for (size_t j = 0; j < lk; j++)
                k[j * dq + d] = -fabsf(k[j * dq + d]) - 0.01f;
            k[tu_range(&r, 0, lk - 1) * dq + (d + 1) % dq] = -INFINITY;
        }
        spattn_f32_to_f16(q, qh, nq);
        spattn_f32_to_f16(k, kh, nk);
        spattn_f32_to_f16(v, vh, nv);
        spattn_mask *m = NULL;
        if (c % 2 == 0)
            ck_assert_int_eq(spattn_mask_causal(lq, lk, &m), SPATTN_OK);
        else
            ck_assert_int_eq(spattn_mask_window(lq, lk, lk, lk, &m), SPATTN_OK);
        const spattn_mask *ml[1] = {m};
        spattn_args a;
        const spattn_dtype qdt = c % 4 == 3 ? SPATTN_DTYPE_F32 : SPATTN_DTYPE_F16;
        f16kv_args(&a, s, qdt == SPATTN_DTYPE_F32 ? (const void *)q : (const void *)qh, qdt, kh,
                   vh);
        a.scale = c % 2 ? 4.0f : 0.0f;
        a.o = ref;
        a.lse = rl;
        ck_assert_int_eq(spattn_reference_forward(&a, ml, 1), SPATTN_OK);
        for (int x = 0; x < n_isas; x++) {
            if (!tu_isa_half_dots(isas[x], qdt, SPATTN_DTYPE_F16, dq))
                continue;
            const spattn_options o = {isas[x], 1}, o_2 = {isas[x], 2};
            a.o = o1;
            a.lse = l1;
            ck_assert_int_eq(spattn_forward(&a, ml, 1, &o), SPATTN_OK);
            a.o = o2;
            a.lse = l2;
            ck_assert_int_eq(spattn_forward(&a, ml, 1, &o_2), SPATTN_OK);
            ck_assert_msg(memcmp(o1, o2, no * 4) == 0 && memcmp(l1, l2, hq * lq * 4) == 0,
                          "%s case %d: 1 and 2 threads differ", spattn_isa_name(isas[x]), c);
            for (size_t i = 0; i < no; i++)
                if (!tu_close(o1[i], ref[i], 1e-4))
                    ck_abort_msg("%s case %d (dims %zu/%zu, len %zu x %zu, scale %g): o[%zu] = "
                                 "%.9g, reference %.9g",
                                 spattn_isa_name(isas[x]), c, dq, dv, lq, lk, (double)a.scale, i,
                                 (double)o1[i], (double)ref[i]);
            for (size_t i = 0; i < hq * lq; i++)
                if (!tu_close(l1[i], rl[i], 1e-4))
                    ck_abort_msg("%s case %d: lse[%zu] = %.9g, reference %.9g",
                                 spattn_isa_name(isas[x]), c, i, (double)l1[i], (double)rl[i]);
        }
        spattn_mask_free(m);
        free(q);
        free(k);
        free(v);
        free(qh);
        free(kh);
        free(vh);
        free(ref);
        free(o1);
        free(o2);
        free(rl);
        free(l1);
        free(l2);
    }
}
END_TEST

/* float32 Q over f16 K/V with finite Q elements beyond bf16's range (|q| > 0x1.fep127, up to
   FLT_MAX): every ISA gives the reference's finite result. Each such element sits at dim d0,
   where the keys hold distinct values in (0, 1/4], so the element picks one key per row by a
   wide margin (rows of a positive one the last allowed key, of a negative one the first). On
   avx512amx, splitting Q into bf16 parts rounded such an element to an Inf hi part. */
START_TEST(f32_q_beyond_bf16_range)
{
    spattn_isa isas[TU_MAX_ISAS];
    const int n_isas = tu_isas(isas);
    tu_rng r = {0xb16f32};
    const size_t hq = 2, lq = 37, lk = 90, dq = 64, dv = 64, d0 = 21;
    const spattn_shape s = {1, hq, 1, lq, lk, dq, dv};
    const size_t nq = hq * lq * dq, nk = lk * dq, nv = lk * dv, no = hq * lq * dv;
    float *q = malloc(nq * 4), *k = malloc(nk * 4), *v = malloc(nv * 4);
    uint16_t *kh = malloc(nk * 2), *vh = malloc(nv * 2);
    float *ref = malloc(no * 4), *o = malloc(no * 4);
    ck_assert(q && k && v && kh && vh && ref && o);
    fill_pm1(&r, q, nq);
    fill_pm1(&r, k, nk);
    fill_pm1(&r, v, nv);
    for (size_t j = 0; j < lk; j++)
        k[j * dq + d0] = (float)(j + 1) / (float)(4 * lk);
    static const float big[] = {0x1.fe8p127f, -0x1.fffffep127f, 0x1.ffp127f, -0x1.fe1p127f};
    for (size_t row = 0; row < hq * lq; row += 3)
        q[row * dq + d0] = big[(row / 3) % 4];
    spattn_f32_to_f16(k, kh, nk);
    spattn_f32_to_f16(v, vh, nv);
    spattn_mask *m = NULL;
    ck_assert_int_eq(spattn_mask_causal(lq, lk, &m), SPATTN_OK);
    const spattn_mask *ml[1] = {m};
    spattn_args a;
    f16kv_args(&a, s, q, SPATTN_DTYPE_F32, kh, vh);
    a.o = ref;
    ck_assert_int_eq(spattn_reference_forward(&a, ml, 1), SPATTN_OK);
    for (size_t i = 0; i < no; i++)
        ck_assert_msg(isfinite(ref[i]), "reference o[%zu] = %g", i, (double)ref[i]);
    for (int x = 0; x < n_isas; x++) {
        const spattn_options opt = {isas[x], 1};
        a.o = o;
        ck_assert_int_eq(spattn_forward(&a, ml, 1, &opt), SPATTN_OK);
        for (size_t i = 0; i < no; i++)
            if (!tu_close(o[i], ref[i], 1e-4))
                ck_abort_msg("%s: o[%zu] (row %zu) = %.9g, reference %.9g",
                             spattn_isa_name(isas[x]), i, i / dv, (double)o[i], (double)ref[i]);
    }
    spattn_mask_free(m);
    free(q);
    free(k);
    free(v);
    free(kh);
    free(vh);
    free(ref);
    free(o);
}
END_TEST

START_TEST(print_report)
{
    report();
}
END_TEST

Suite *suite_dtypes(void);
Suite *suite_dtypes(void)
{
    Suite *s = suite_create("dtypes");
    TCase *tc = tcase_create("convert");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, widen_every_pattern);
    tcase_add_test(tc, narrow_nearest_even);
    suite_add_tcase(s, tc);
    tc = tcase_create("attention");
    tcase_set_timeout(tc, 600);
    tcase_add_loop_test(tc, every_triple_every_isa, 0, 27);
    tcase_add_loop_test(tc, bf16_pair_shapes_every_isa, 0, 3);
    tcase_add_loop_test(tc, kv16_staged_shapes_every_isa, 0, 4);
    tcase_add_loop_test(tc, kv16_pair_stage_every_isa, 0, 4);
    tcase_add_loop_test(tc, strided_rows_every_isa, 0, 4);
    tcase_add_loop_test(tc, window_rows_every_isa, 0, 4);
    tcase_add_loop_test(tc, probs_any_type, 0, 9);
    tcase_add_test(tc, f16_split_products);
    tcase_add_test(tc, f32_q_beyond_bf16_range);
    tcase_add_test(tc, print_report);
    suite_add_tcase(s, tc);
    return s;
}
