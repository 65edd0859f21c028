/* Pattern builders and the fitting of their parameters to a sparsity level. */
#include "bench_masks.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define BB_BLOCK 64 /* BigBird block, the size its paper uses */
#define BB_GLOBAL 1 /* global blocks */
#define SEED 0x5eed5a77e57ull

uint64_t bench_rng(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static double target_density(const bench_case *c)
{
    return 1.0 - c->level / 1000.0;
}

/* Key position of query row i, bottom-right aligned as the library's patterns are. */
static size_t row_pos(const bench_case *c, size_t i)
{
    return i + (c->len_k - c->len_q);
}

static double window_density(const bench_case *c, size_t left)
{
    double pairs = 0;
    for (size_t i = 0; i < c->len_q; i++) {
        size_t p = row_pos(c, i);
        pairs += (double)(p < left ? p : left) + 1.0;
    }
    return pairs / ((double)c->len_q * (double)c->len_k);
}

static double strided_density(const bench_case *c, size_t stride)
{
    double pairs = 0;
    for (size_t i = 0; i < c->len_q; i++) {
        size_t p = row_pos(c, i);
        pairs += (double)(stride < p + 1 ? stride : p + 1) + (double)(p / stride);
    }
    return pairs / ((double)c->len_q * (double)c->len_k);
}

/* Block-level estimate; random blocks are assumed to miss the window and the global blocks,
   which is close enough to choose parameters (the run reports the exact sparsity). */
static double bigbird_density(const bench_case *c, size_t window, size_t random)
{
    size_t nqb = (c->len_q + BB_BLOCK - 1) / BB_BLOCK, nkb = (c->len_k + BB_BLOCK - 1) / BB_BLOCK;
    double blocks = 0;
    for (size_t qb = 0; qb < nqb; qb++) {
        size_t pb = row_pos(c, qb * BB_BLOCK) / BB_BLOCK;
        if (pb < BB_GLOBAL) {
            blocks += (double)nkb;
            continue;
        }
        size_t lo = pb > window ? pb - window : 0, hi = pb + window < nkb ? pb + window : nkb - 1;
        size_t n = lo <= hi ? hi - lo + 1 : 0;
        n += lo > BB_GLOBAL ? BB_GLOBAL : lo; /* global blocks left of the window */
        n += random;
        blocks += (double)(n < nkb ? n : nkb);
    }
    return blocks / ((double)nqb * (double)nkb);
}

/* StreamingLLM: per row the min(p + 1, window) most recent keys, plus the sinks left of them. */
static double streaming_density(const bench_case *c, size_t n_sink, size_t window)
{
    double pairs = 0;
    for (size_t i = 0; i < c->len_q; i++) {
        size_t p = row_pos(c, i), recent = p + 1 < window ? p + 1 : window;
        size_t before = p + 1 - recent;
        pairs += (double)recent + (double)(before < n_sink ? before : n_sink);
    }
    return pairs / ((double)c->len_q * (double)c->len_k);
}

void bench_doc_lens(const bench_case *c, size_t *lens)
{
    /* seeded weights of 1..1000 each, scaled to sum to len_q: lengths vary ~1:1000 at most */
    size_t n = c->param, *w = lens;
    uint64_t s = SEED ^ 0xd0c5ull, total = 0;
    for (size_t d = 0; d < n; d++) {
        w[d] = 1 + (size_t)(bench_rng(&s) % 1000);
        total += w[d];
    }
    size_t prev = 0;
    uint64_t acc = 0;
    for (size_t d = 0; d < n; d++) {
        acc += w[d];
        size_t end = (size_t)(acc * c->len_q / total);
        lens[d] = end - prev;
        prev = end;
    }
}

static double documents_density(const bench_case *c)
{
    size_t *lens = malloc(c->param * sizeof *lens);
    if (!lens)
        return -1;
    bench_doc_lens(c, lens);
    double pairs = 0;
    for (size_t d = 0; d < c->param; d++)
        pairs += (double)lens[d] * ((double)lens[d] + 1.0) / 2.0;
    free(lens);
    return pairs / ((double)c->len_q * (double)c->len_k);
}

/* BP_GPT2HEADS: head h % 12 takes row i' to the keys of one kind, 4 to 32 per row, as the
   per-head maps of a sparse GPT-2 look: strided or diagonal (dilated windows: the key itself
   and `left` more, `step` apart), local (a causal window), or the first tokens plus a short
   window (streaming). */
typedef struct gpt2_head {
    int kind;    /* 0 dilated, 1 window, 2 streaming */
    size_t a, b; /* dilated: left, step; window: left; streaming: sinks, window */
} gpt2_head;
static const gpt2_head gpt2_heads[12] = {
    {0, 15, 64}, {0, 7, 128}, {1, 15, 0},  {1, 3, 0},  {2, 1, 8},  {2, 4, 28},
    {2, 1, 3},   {0, 31, 8},  {0, 11, 16}, {1, 23, 0}, {2, 8, 16}, {0, 3, 256},
};

static size_t gpt2_row_keys(const gpt2_head *g, size_t p)
{
    switch (g->kind) {
    case 0:
        return (p / g->b < g->a ? p / g->b : g->a) + 1;
    case 1:
        return (p < g->a ? p : g->a) + 1;
    default: {
        const size_t recent = p + 1 < g->b ? p + 1 : g->b, before = p + 1 - recent;
        return recent + (before < g->a ? before : g->a);
    }
    }
}

static double gpt2_density(const bench_case *c)
{
    double pairs = 0;
    for (size_t h = 0; h < c->heads_q; h++)
        for (size_t i = 0; i < c->len_q; i++)
            pairs += (double)gpt2_row_keys(&gpt2_heads[h % 12], row_pos(c, i));
    return pairs / ((double)c->heads_q * (double)c->len_q * (double)c->len_k);
}

static spattn_status build_gpt2_head(const bench_case *c, size_t h, spattn_mask **out)
{
    const gpt2_head *g = &gpt2_heads[h % 12];
    switch (g->kind) {
    case 0:
        return spattn_mask_dilated(c->len_q, c->len_k, g->a, 0, g->b, out);
    case 1:
        return spattn_mask_window(c->len_q, c->len_k, g->a, 0, out);
    default:
        return spattn_mask_streaming(c->len_q, c->len_k, g->a, g->b, out);
    }
}

static spattn_status build_param_pattern(const bench_case *c, spattn_mask **out)
{
    static const size_t global[] = {0};
    switch (c->pattern) {
    case BP_FIXED:
        return spattn_mask_fixed(c->len_q, c->len_k, c->param, c->param2, out);
    case BP_LONGFORMER:
        return spattn_mask_longformer(c->len_q, c->len_k, c->param, c->param, global, 1, out);
    case BP_DILATED:
        return spattn_mask_dilated(c->len_q, c->len_k, c->param, 0, c->param2, out);
    default:
        return SPATTN_E_ARG;
    }
}

/* The density of a pattern built from its parameters (-1 if they are refused). */
static double built_density(const bench_case *c)
{
    spattn_mask *m = NULL;
    if (build_param_pattern(c, &m) != SPATTN_OK)
        return -1.0;
    const double d = (double)spattn_mask_nnz(m) / ((double)c->len_q * (double)c->len_k);
    spattn_mask_free(m);
    return d;
}

/* A pattern of given parameters: its level is what they give, to a tenth of a percent. */
static int fixed_level(bench_case *c, double density)
{
    if (density < 0)
        return 0;
    c->level = (int)lround(1000.0 * (1.0 - density));
    return 1;
}

static int close_enough(double got, double want)
{
    return fabs(got - want) <= 0.25 * want;
}

int bench_masks_fit(bench_case *c)
{
    if (c->fixed) {
        switch (c->pattern) {
        case BP_WINDOW:
            return fixed_level(c, window_density(c, c->param));
        case BP_STRIDED:
            return c->param > 0 && fixed_level(c, strided_density(c, c->param));
        case BP_GPT2HEADS:
            return fixed_level(c, gpt2_density(c));
        case BP_STREAMING:
            return fixed_level(c, streaming_density(c, c->param, c->param2));
        case BP_DOCUMENTS:
            return c->len_q == c->len_k && c->param > 0 && fixed_level(c, documents_density(c));
        case BP_FIXED:
        case BP_LONGFORMER:
        case BP_DILATED:
            return fixed_level(c, built_density(c));
        default:
            return 0;
        }
    }
    double d = target_density(c);
    c->param = c->param2 = 0;
    switch (c->pattern) {
    case BP_DENSE:
        return c->level == 0;
    case BP_BLOCKS64:
    case BP_ELEMENTS:
        return c->level > 0;
    case BP_FEWKEYS:
        return c->level >= 900 && d * (double)c->len_k >= 1.0; /* "few": a tenth or less */
    case BP_CAUSAL:
        return c->level == 500;
    case BP_WINDOW: {
        /* density grows with left: bisect for the closest */
        size_t lo = 0, hi = c->len_k - 1;
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if (window_density(c, mid) < d)
                lo = mid + 1;
            else
                hi = mid;
        }
        if (lo > 0 && fabs(window_density(c, lo - 1) - d) < fabs(window_density(c, lo) - d))
            lo--;
        c->param = lo;
        return close_enough(window_density(c, lo), d);
    }
    case BP_STRIDED: {
        /* density falls then rises with the stride; take the rising branch (the local band
           wider than the strided part, as the paper's settings have it) */
        size_t lo = (size_t)ceil(sqrt((double)c->len_k)), hi = c->len_k;
        if (lo < 1)
            lo = 1;
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if (strided_density(c, mid) < d)
                lo = mid + 1;
            else
                hi = mid;
        }
        if (lo > 1 && fabs(strided_density(c, lo - 1) - d) < fabs(strided_density(c, lo) - d))
            lo--;
        c->param = lo;
        return close_enough(strided_density(c, lo), d);
    }
    case BP_BIGBIRD: {
        size_t nkb = (c->len_k + BB_BLOCK - 1) / BB_BLOCK;
        double best = INFINITY;
        for (size_t w = 0; w <= 3; w++)
            for (size_t r = 0; r <= nkb; r++) {
                double e = fabs(bigbird_density(c, w, r) - d);
                if (e < best) {
                    best = e;
                    c->param = w;
                    c->param2 = r;
                }
            }
        return close_enough(bigbird_density(c, c->param, c->param2), d);
    }
    case BP_STREAMING:
    case BP_DOCUMENTS: /* only with given parameters */
    case BP_GPT2HEADS:
    case BP_FIXED:
    case BP_LONGFORMER:
    case BP_DILATED:
    case BP_COUNT:
        break;
    }
    return 0;
}

/* Exactly round(d * blocks) blocks: the diagonal ones first (spread evenly when there is not
   room for all of them), then random others. */
static spattn_status build_blocks(const bench_case *c, spattn_mask **out)
{
    size_t nqb = (c->len_q + 63) / 64, nkb = (c->len_k + 63) / 64, total = nqb * nkb;
    size_t want = (size_t)llround(target_density(c) * (double)total);
    if (want < 1)
        want = 1;
    uint8_t *layout = calloc(total, 1);
    size_t *free_idx = malloc(total * sizeof *free_idx);
    if (!layout || !free_idx) {
        free(layout);
        free(free_idx);
        return SPATTN_E_NOMEM;
    }
    size_t ndiag = want < nqb ? want : nqb, have = 0;
    for (size_t t = 0; t < ndiag; t++) {
        size_t r = t * nqb / ndiag;
        size_t kb = row_pos(c, r * 64) / 64;
        if (kb >= nkb)
            kb = nkb - 1;
        if (!layout[r * nkb + kb]) {
            layout[r * nkb + kb] = 1;
            have++;
        }
    }
    size_t nfree = 0;
    for (size_t i = 0; i < total; i++)
        if (!layout[i])
            free_idx[nfree++] = i;
    uint64_t s = SEED ^ c->len_k;
    for (size_t t = 0; have < want && t < nfree; t++, have++) {
        size_t j = t + (size_t)(bench_rng(&s) % (nfree - t));
        size_t tmp = free_idx[t];
        free_idx[t] = free_idx[j];
        free_idx[j] = tmp;
        layout[free_idx[t]] = 1;
    }
    spattn_status st = spattn_mask_from_blocks(c->len_q, c->len_k, 64, 64, layout, out);
    free(layout);
    free(free_idx);
    return st;
}

/* Each pair independently with probability d, by hashing (i, j): one pass, no dense buffer. */
static spattn_status build_elements(const bench_case *c, spattn_mask **out)
{
    double d = target_density(c);
    uint64_t thresh = d >= 1.0 ? UINT64_MAX : (uint64_t)(d * 18446744073709551616.0);
    size_t cap = (size_t)((double)c->len_q * (double)c->len_k * d * 1.05) + 1024;
    int64_t *row_ptr = malloc((c->len_q + 1) * sizeof *row_ptr);
    int32_t *col = malloc(cap * sizeof *col);
    if (!row_ptr || !col) {
        free(row_ptr);
        free(col);
        return SPATTN_E_NOMEM;
    }
    size_t n = 0;
    row_ptr[0] = 0;
    for (size_t i = 0; i < c->len_q; i++) {
        for (size_t j = 0; j < c->len_k; j++) {
            uint64_t s = SEED ^ ((uint64_t)i << 32) ^ j;
            if (bench_rng(&s) < thresh) {
                if (n == cap) {
                    cap *= 2;
                    int32_t *grown = realloc(col, cap * sizeof *col);
                    if (!grown) {
                        free(row_ptr);
                        free(col);
                        return SPATTN_E_NOMEM;
                    }
                    col = grown;
                }
                col[n++] = (int32_t)j;
            }
        }
        row_ptr[i + 1] = (int64_t)n;
    }
    spattn_status st = spattn_mask_from_csr(c->len_q, c->len_k, row_ptr, col, out);
    free(row_ptr);
    free(col);
    return st;
}

static int cmp_i32(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

/* k keys per row: the row's own position plus random others, all distinct. */
static spattn_status build_fewkeys(const bench_case *c, uint64_t seed, spattn_mask **out)
{
    size_t k = (size_t)llround(target_density(c) * (double)c->len_k);
    if (k < 1)
        k = 1;
    if (k > c->len_k)
        k = c->len_k;
    int64_t *row_ptr = malloc((c->len_q + 1) * sizeof *row_ptr);
    int32_t *col = malloc(c->len_q * k * sizeof *col);
    int32_t *tmp = malloc(k * sizeof *tmp);
    if (!row_ptr || !col || !tmp) {
        free(row_ptr);
        free(col);
        free(tmp);
        return SPATTN_E_NOMEM;
    }
    uint64_t s = seed;
    row_ptr[0] = 0;
    for (size_t i = 0; i < c->len_q; i++) {
        size_t n = 0, p = row_pos(c, i);
        if (p < c->len_k)
            tmp[n++] = (int32_t)p;
        while (n < k) {
            size_t m = n;
            for (; m < k; m++)
                tmp[m] = (int32_t)(bench_rng(&s) % c->len_k);
            qsort(tmp, m, sizeof *tmp, cmp_i32);
            n = 0;
            for (size_t t = 0; t < m; t++)
                if (n == 0 || tmp[t] != tmp[n - 1])
                    tmp[n++] = tmp[t];
        }
        memcpy(col + i * k, tmp, k * sizeof *tmp);
        row_ptr[i + 1] = (int64_t)((i + 1) * k);
    }
    spattn_status st = spattn_mask_from_csr(c->len_q, c->len_k, row_ptr, col, out);
    free(row_ptr);
    free(col);
    free(tmp);
    return st;
}

spattn_status bench_masks_build(const bench_case *c, spattn_mask ***masks, size_t *n)
{
    *masks = NULL;
    *n = 0;
    if (c->pattern == BP_DENSE)
        return SPATTN_OK;
    size_t count = c->pattern == BP_FEWKEYS || c->pattern == BP_GPT2HEADS ? c->heads_q : 1;
    spattn_mask **m = calloc(count, sizeof *m);
    if (!m)
        return SPATTN_E_NOMEM;
    spattn_status st = SPATTN_OK;
    size_t group = c->heads_q / c->heads_kv;
    for (size_t h = 0; h < count && st == SPATTN_OK; h++) {
        switch (c->pattern) {
        case BP_BLOCKS64:
            st = build_blocks(c, &m[h]);
            break;
        case BP_ELEMENTS:
            st = build_elements(c, &m[h]);
            break;
        case BP_CAUSAL:
            st = spattn_mask_causal(c->len_q, c->len_k, &m[h]);
            break;
        case BP_WINDOW:
            st = spattn_mask_window(c->len_q, c->len_k, c->param, 0, &m[h]);
            break;
        case BP_STRIDED:
            st = spattn_mask_strided(c->len_q, c->len_k, c->param, &m[h]);
            break;
        case BP_BIGBIRD:
            st = spattn_mask_bigbird(c->len_q, c->len_k, BB_BLOCK, c->param, BB_GLOBAL, c->param2,
                                     SEED, &m[h]);
            break;
        case BP_FEWKEYS:
            /* the same seed within a GQA group: its heads share keys, as KV-cache selection does */
            st = build_fewkeys(c, SEED + 7919 * (h / group), &m[h]);
            break;
        case BP_STREAMING:
            st = spattn_mask_streaming(c->len_q, c->len_k, c->param, c->param2, &m[h]);
            break;
        case BP_GPT2HEADS:
            st = build_gpt2_head(c, h, &m[h]);
            break;
        case BP_FIXED:
        case BP_LONGFORMER:
        case BP_DILATED:
            st = build_param_pattern(c, &m[h]);
            break;
        case BP_DOCUMENTS: {
            size_t *lens = malloc(c->param * sizeof *lens);
            if (!lens) {
                st = SPATTN_E_NOMEM;
                break;
            }
            bench_doc_lens(c, lens);
            st = spattn_mask_documents(lens, c->param, 1, &m[h]);
            free(lens);
            break;
        }
        default:
            st = SPATTN_E_ARG;
        }
    }
    if (st != SPATTN_OK) {
        bench_masks_free(m, count);
        return st;
    }
    *masks = m;
    *n = count;
    return SPATTN_OK;
}

void bench_masks_free(spattn_mask **masks, size_t n)
{
    if (!masks)
        return;
    for (size_t i = 0; i < n; i++)
        spattn_mask_free(masks[i]);
    free(masks);
}

uint64_t bench_masks_pairs(const bench_case *c, spattn_mask *const *masks, size_t n)
{
    uint64_t per_batch = 0;
    if (n == 0)
        per_batch = (uint64_t)c->len_q * c->len_k * c->heads_q;
    else if (n == 1)
        per_batch = spattn_mask_nnz(masks[0]) * c->heads_q;
    else
        for (size_t h = 0; h < n; h++)
            per_batch += spattn_mask_nnz(masks[h]);
    return per_batch * c->batch;
}
