/*
 * The pattern builders (causal, window, strided, fixed, Longformer, BigBird, dilated,
 * callback, streaming, packed documents) with extreme parameters, each checked against its
 * documented set computed pair by pair here, then and/or of two of them.
 */
#include <stdint.h>
#include <string.h>

#include "fuzz_mask_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum {
    P_CAUSAL,
    P_WINDOW,
    P_STRIDED,
    P_FIXED,
    P_LONGFORMER,
    P_BIGBIRD,
    P_DILATED,
    P_FN,
    P_STREAMING,
    P_DOCS, /* spattn_mask_documents when len_q == len_k, else spattn_mask_documents_kv */
    P_COUNT
};

#define FZ_MAX_DOCS 6

typedef struct pattern {
    int kind;
    size_t a, b, c, d, e; /* parameters, meaning per kind */
    uint64_t seed;
    size_t global[6];
    size_t n_global;
    uint8_t fn_bits[64];
    size_t q_lens[FZ_MAX_DOCS], k_lens[FZ_MAX_DOCS], n_docs; /* P_DOCS */
    int causal, same;                                        /* P_DOCS */
} pattern;

/* Document of row i (of lens, summing to more than i) and its index inside it. */
static size_t doc_of(const size_t *lens, size_t n, size_t i, size_t *local)
{
    size_t d = 0;
    while (d + 1 < n && i >= lens[d])
        i -= lens[d++];
    *local = i;
    return d;
}

/* |d| within `lim` on its side of the diagonal: the band test without size_t overflow. */
static int in_band(int64_t d, size_t left, size_t right)
{
    return d <= 0 ? (uint64_t)(-d) <= left : (uint64_t)d <= right;
}

static uint64_t splitmix64(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static void truth_of(const pattern *p, size_t len_q, size_t len_k, uint8_t *t)
{
    int64_t shift = (int64_t)len_k - (int64_t)len_q;
    size_t nkb = 0, nqb = 0;
    uint8_t *rnd = NULL; /* BigBird: rnd[qb * nkb + kb] */
    if (p->kind == P_BIGBIRD) {
        size_t blk = p->a;
        nkb = len_k / blk + (len_k % blk != 0);
        nqb = (len_k - 1) / blk + 1; /* query blocks 0 .. block of the last row */
        rnd = calloc(nqb * nkb, 1);
        uint64_t s = p->seed;
        size_t want = p->d < nkb ? p->d : nkb;
        for (size_t qb = 0; qb < nqb; qb++) {
            for (size_t got = 0; got < want;) {
                size_t kb = (size_t)(splitmix64(&s) % nkb);
                if (!rnd[qb * nkb + kb]) {
                    rnd[qb * nkb + kb] = 1;
                    got++;
                }
            }
        }
    }
    for (size_t i = 0; i < len_q; i++) {
        int64_t ip = (int64_t)i + shift;
        for (size_t j = 0; j < len_k; j++) {
            int64_t jj = (int64_t)j;
            int64_t d = jj - ip;
            int causal = jj <= ip;
            int on = 0;
            switch (p->kind) {
            case P_CAUSAL:
                on = causal;
                break;
            case P_WINDOW:
                on = in_band(d, p->a, p->b);
                break;
            case P_STRIDED:
                on = causal && ((uint64_t)-d < p->a || (uint64_t)-d % p->a == 0);
                break;
            case P_FIXED:
                on = causal && ((uint64_t)jj / p->a == (uint64_t)ip / p->a ||
                                (uint64_t)jj % p->a >= p->a - p->b);
                break;
            case P_LONGFORMER:
                on = in_band(d, p->a, p->b);
                for (size_t g = 0; g < p->n_global; g++)
                    on |= p->global[g] == j || (ip >= 0 && p->global[g] == (uint64_t)ip);
                break;
            case P_BIGBIRD: {
                /* A row standing before key 0 (len_q > len_k) has no query block of its own:
                   it sees the global key blocks only. */
                if (ip < 0) {
                    on = j / p->a < p->c;
                    break;
                }
                size_t qb = (size_t)ip / p->a, kb = j / p->a;
                size_t gap = qb > kb ? qb - kb : kb - qb;
                on = gap <= p->b || kb < p->c || qb < p->c || rnd[qb * nkb + kb];
                break;
            }
            case P_DILATED:
                on = d <= 0 ? (uint64_t)-d % p->c == 0 && (uint64_t)-d / p->c <= p->a
                            : (uint64_t)d % p->c == 0 && (uint64_t)d / p->c <= p->b;
                break;
            case P_FN:
                on = p->fn_bits[(i * 7 + j) % 64] & 1;
                break;
            case P_STREAMING:
                on = causal && (j < p->a || (uint64_t)(ip - jj) < p->b);
                break;
            case P_DOCS: {
                size_t qr, kr, doc = doc_of(p->q_lens, p->n_docs, i, &qr);
                on = doc_of(p->k_lens, p->n_docs, j, &kr) == doc;
                if (on && p->causal)
                    on = (int64_t)kr <=
                         (int64_t)qr + (int64_t)p->k_lens[doc] - (int64_t)p->q_lens[doc];
                break;
            }
            }
            t[i * len_k + j] = (uint8_t)on;
        }
    }
    free(rnd);
}

typedef struct fn_ctx {
    const pattern *p;
    size_t next_i, next_j, len_k;
    int in_order;
} fn_ctx;

static int allow_fn(size_t i, size_t j, void *vctx)
{
    fn_ctx *c = vctx;
    if (i != c->next_i || j != c->next_j)
        c->in_order = 0;
    c->next_j = j + 1;
    c->next_i = i;
    if (c->next_j == c->len_k) {
        c->next_j = 0;
        c->next_i = i + 1;
    }
    return c->p->fn_bits[(i * 7 + j) % 64] & 1 ? 1 + (int)(i % 3) : 0;
}

/* Builds pattern p; returns NULL (having checked the status) when its parameters are invalid. */
static spattn_mask *build(const pattern *p, size_t len_q, size_t len_k)
{
    spattn_mask *m = (spattn_mask *)&m;
    spattn_status st = SPATTN_OK, want = SPATTN_OK;
    fn_ctx ctx = {p, 0, 0, len_k, 1};
    switch (p->kind) {
    case P_CAUSAL:
        st = spattn_mask_causal(len_q, len_k, &m);
        break;
    case P_WINDOW:
        st = spattn_mask_window(len_q, len_k, p->a, p->b, &m);
        break;
    case P_STRIDED:
        want = p->a >= 1 ? SPATTN_OK : SPATTN_E_ARG;
        st = spattn_mask_strided(len_q, len_k, p->a, &m);
        break;
    case P_FIXED:
        want = p->b >= 1 && p->b <= p->a ? SPATTN_OK : SPATTN_E_ARG;
        st = spattn_mask_fixed(len_q, len_k, p->a, p->b, &m);
        break;
    case P_LONGFORMER:
        for (size_t g = 0; g < p->n_global; g++)
            if (p->global[g] >= len_k)
                want = SPATTN_E_ARG;
        st = spattn_mask_longformer(len_q, len_k, p->a, p->b, p->n_global ? p->global : NULL,
                                    p->n_global, &m);
        break;
    case P_BIGBIRD:
        want = p->a >= 1 ? SPATTN_OK : SPATTN_E_ARG;
        st = spattn_mask_bigbird(len_q, len_k, p->a, p->b, p->c, p->d, p->seed, &m);
        break;
    case P_DILATED:
        want = p->c >= 1 ? SPATTN_OK : SPATTN_E_ARG;
        st = spattn_mask_dilated(len_q, len_k, p->a, p->b, p->c, &m);
        break;
    case P_FN:
        st = spattn_mask_from_fn(len_q, len_k, allow_fn, &ctx, &m);
        FZ_CHECK(st != SPATTN_OK || (ctx.in_order && ctx.next_i == len_q),
                 "from_fn: callback not called once per pair in row order");
        break;
    case P_STREAMING:
        st = spattn_mask_streaming(len_q, len_k, p->a, p->b, &m);
        break;
    case P_DOCS: {
        size_t sq = 0, sk = 0;
        for (size_t d = 0; d < p->n_docs; d++) {
            sq += p->q_lens[d] < SPATTN_MAX_LEN ? p->q_lens[d] : SPATTN_MAX_LEN + 1;
            sk += p->k_lens[d] < SPATTN_MAX_LEN ? p->k_lens[d] : SPATTN_MAX_LEN + 1;
        }
        if (sq != len_q || sk != len_k)
            want = SPATTN_E_SHAPE; /* a length made invalid, or no documents */
        if (p->same)
            st = spattn_mask_documents(p->q_lens, p->n_docs, p->causal, &m);
        else
            st = spattn_mask_documents_kv(p->q_lens, p->k_lens, p->n_docs, p->causal, &m);
        break;
    }
    }
    FZ_CHECK(st == want, "pattern %d (%zu, %zu, %zu, %zu) on %zux%zu: %s, expected %s", p->kind,
             p->a, p->b, p->c, p->d, len_q, len_k, spattn_status_string(st),
             spattn_status_string(want));
    FZ_CHECK((st == SPATTN_OK) == (m != NULL), "out not set consistently with the status");
    return m;
}

/* n lengths summing to len, zeros among them: the gaps between sorted cut points. */
static void read_split(fz_in *in, size_t len, size_t n, size_t *lens)
{
    size_t cut[FZ_MAX_DOCS + 1];
    cut[0] = 0;
    for (size_t d = 1; d < n; d++) {
        size_t c = fz_u8(in) & 1 ? fz_range(in, 0, len) : cut[d - 1]; /* often empty */
        size_t at = d;
        while (at > 1 && cut[at - 1] > c) {
            cut[at] = cut[at - 1];
            at--;
        }
        cut[at] = c;
    }
    cut[n] = len;
    for (size_t d = 0; d < n; d++)
        lens[d] = cut[d + 1] - cut[d];
}

static void read_docs(fz_in *in, pattern *p, size_t len_q, size_t len_k)
{
    uint8_t how = fz_u8(in);
    p->n_docs = 1 + how % FZ_MAX_DOCS;
    p->causal = (how >> 3) & 1 ? 1 + (how >> 4) : 0;
    p->same = len_q == len_k && (how & 0x80);
    read_split(in, len_k, p->n_docs, p->k_lens);
    if (p->same)
        memcpy(p->q_lens, p->k_lens, sizeof p->q_lens);
    else
        read_split(in, len_q, p->n_docs, p->q_lens);
    uint8_t bad = fz_u8(in);
    if (bad >= 240) { /* lengths beyond SPATTN_MAX_LEN, sums that wrap, or no document */
        size_t v = fz_edge_size(in, 0), d = fz_u8(in) % p->n_docs;
        if (bad >= 254) {
            p->n_docs = 0;
        } else if (v > SPATTN_MAX_LEN) {
            if (p->same || !(bad & 1))
                p->q_lens[d] = v;
            if (p->same || (bad & 1))
                p->k_lens[d] = v;
        }
    }
}

static void read_pattern(fz_in *in, pattern *p, size_t len_q, size_t len_k)
{
    memset(p, 0, sizeof *p);
    p->kind = fz_u8(in) % P_COUNT;
    p->a = fz_edge_size(in, 70);
    p->b = fz_edge_size(in, 70);
    p->c = fz_edge_size(in, 70);
    p->d = fz_edge_size(in, 8);
    p->seed = fz_u64(in);
    if (p->kind == P_DILATED && p->c == 0 && (fz_u8(in) & 1))
        p->c = 1;
    if (p->kind == P_BIGBIRD) {
        if (p->a == 0 && (fz_u8(in) & 1))
            p->a = 1;
    }
    p->n_global = fz_u8(in) % 7;
    for (size_t g = 0; g < p->n_global; g++) {
        uint8_t b = fz_u8(in);
        p->global[g] = b < 250 ? b % len_k : fz_edge_size(in, len_k + 2);
    }
    for (size_t t = 0; t < 64; t++)
        p->fn_bits[t] = fz_u8(in);
    if (p->kind == P_DOCS)
        read_docs(in, p, len_q, len_k);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_in in = {data, size};
    size_t len_q = fz_range(&in, 1, 100);
    size_t len_k = fz_range(&in, 1, 200);
    pattern p1, p2;
    read_pattern(&in, &p1, len_q, len_k);
    read_pattern(&in, &p2, len_q, len_k);

    uint8_t *t1 = malloc(len_q * len_k), *t2 = malloc(len_q * len_k);
    spattn_mask *m1 = build(&p1, len_q, len_k);
    spattn_mask *m2 = build(&p2, len_q, len_k);
    if (m1) {
        truth_of(&p1, len_q, len_k, t1);
        fz_check_mask(m1, len_q, len_k, t1);
    }
    if (m2) {
        truth_of(&p2, len_q, len_k, t2);
        fz_check_mask(m2, len_q, len_k, t2);
    }
    if (m1 && m2)
        fz_check_and_or(m1, t1, m2, t2, len_q, len_k);
    spattn_mask_free(m1);
    spattn_mask_free(m2);
    free(t1);
    free(t2);
    return 0;
}
