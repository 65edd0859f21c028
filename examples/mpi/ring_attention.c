/*
 * Ring (sequence-parallel) attention over MPI with spattn.
 *
 * A sequence of `len` tokens is cut into chunks and every rank holds the rows of Q, K and V of
 * its chunks: with --layout contiguous, chunk r of P for rank r; with --layout zigzag (the
 * default), chunks r and 2P - 1 - r of 2P, so that under a causal mask every rank has about
 * the same number of allowed pairs (a contiguous rank r has 2r + 1 times rank 0's). The K/V
 * chunks travel round the ring (each step sends the ones in hand to the next rank while the
 * previous rank's arrive, overlapped with the computation), and every rank computes each of
 * its query chunks against each key chunk with the partial results recipe of spattn.h:
 *
 *   - the mask of query rows [q0, q1) against keys [k0, k1) is spattn_mask_slice(m, q0, q1,
 *     k0, k1);
 *   - spattn_forward on those K and V rows with pos_offset = (len - k1) - (len - q1), so that
 *     ALiBi sees global positions, and the attention sinks passed in the call of the chunk
 *     holding key 0 only;
 *   - the chunks' (o, lse) are merged with spattn_merge, accumulating in place.
 *
 * A key chunk whose slice allows no pair is skipped without computing (except the one that
 * carries the sinks). Then the program checks itself: every rank recomputes its ring in one
 * process (same chunks, same order) and must get the same bits, and rank 0 gathers the result
 * and compares it with one spattn_forward of the whole problem, within spattn's accuracy
 * (2e-5 * (1 + |ref|)). It exits non-zero on any mismatch. The time printed is the slowest
 * rank's, the best of --reps runs of the ring (the checks not included).
 *
 *   mpirun -np 4 spattn-ring-attention [--len N] [--heads H] [--kv-heads H] [--dim D]
 *          [--mask causal|window|bigbird|blocks|all] [--mods off|on|both]
 *          [--layout zigzag|contiguous] [--threads T] [--reps R] [--no-check]
 *
 * docs/distributed.md describes the recipe and runs across machines.
 */
#include <math.h>
#include <mpi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spattn.h"

typedef struct config {
    size_t len, heads, kv_heads, dim;
    const char *mask; /* a kind, or "all" */
    int mods;         /* 0: plain, 1: sinks, ALiBi and softcap, 2: both runs */
    int zigzag;       /* each rank holds chunks r and 2 P - 1 - r of 2 P, not chunk r of P */
    int threads, reps, check;
} config;

typedef struct world {
    int rank, size;
    int per_rank; /* chunks per rank: 1, or 2 with zigzag */
} world;

/* The sequence is cut into size * per_rank chunks; the first token of chunk g (g may be the
   number of chunks: the end). */
static size_t chunk_lo(const config *c, const world *w, size_t g)
{
    return c->len * g / ((size_t)w->size * (size_t)w->per_rank);
}

static size_t chunk_len(const config *c, const world *w, size_t g)
{
    return chunk_lo(c, w, g + 1) - chunk_lo(c, w, g);
}

/* Chunk i of rank r. Zigzag pairs an early chunk with a late one, so that every rank gets
   about the same number of causal pairs. */
static size_t chunk_of(const world *w, int r, int i)
{
    return i == 0 ? (size_t)r : 2 * (size_t)w->size - 1 - (size_t)r;
}

/* ---- the problem: values every rank can make for any token ------------------------------ */

static uint64_t mix(uint64_t x)
{
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

/* Element d of token t of head h of tensor `which` (0 Q, 1 K, 2 V): uniform with unit
   variance, a function of its global position only. */
static float value(int which, size_t h, size_t t, size_t d)
{
    uint64_t x = mix(((uint64_t)which << 60) ^ ((uint64_t)h << 44) ^ ((uint64_t)t << 16) ^ d);
    return (float)(((double)(x >> 11) / 9007199254740992.0 * 2.0 - 1.0) * 1.7320508075688772);
}

/* Tokens [t0, t1) of every head of one tensor, as [head][token][dim] with `stride` tokens
   per head. */
static void fill_rows(float *p, int which, size_t heads, size_t t0, size_t t1, size_t dim,
                      size_t stride)
{
    for (size_t h = 0; h < heads; h++)
        for (size_t t = t0; t < t1; t++)
            for (size_t d = 0; d < dim; d++)
                p[(h * stride + (t - t0)) * dim + d] = value(which, h, t, d);
}

static spattn_status make_mask(const char *kind, size_t len, spattn_mask **m)
{
    if (strcmp(kind, "causal") == 0)
        return spattn_mask_causal(len, len, m);
    if (strcmp(kind, "window") == 0)
        return spattn_mask_window(len, len, len / 8 + 1, 0, m);
    if (strcmp(kind, "bigbird") == 0)
        return spattn_mask_bigbird(len, len, 64, 1, 1, 2, 42, m);
    if (strcmp(kind, "blocks") == 0) {
        /* 64 x 64 blocks, each allowed with probability 1/8, and the diagonal. */
        size_t nb = (len + 63) / 64;
        uint8_t *layout = malloc(nb * nb);
        if (layout == NULL)
            return SPATTN_E_NOMEM;
        for (size_t r = 0; r < nb; r++)
            for (size_t c = 0; c < nb; c++)
                layout[r * nb + c] = r == c || mix(r * nb + c + 7) % 8 == 0;
        spattn_status st = spattn_mask_from_blocks(len, len, 64, 64, layout, m);
        free(layout);
        return st;
    }
    return SPATTN_E_ARG;
}

/* ---- one rank's ring -------------------------------------------------------------------- */

typedef struct block {
    const config *c;
    const world *w;
    const spattn_mask *m;
    size_t max_c;      /* the longest chunk */
    size_t kv_floats;  /* a rank's K/V: per chunk, K as [kv_heads][max_c][dim], then V */
    const float *q[2]; /* chunk i's rows, [heads][its length][dim] */
    float slopes[256], sinks[256];
    int mods;
} block;

typedef struct result {
    float *o[2], *lse[2]; /* per chunk of the rank, [heads][its length][dim] and [heads][...] */
    int have[2];          /* whether they hold a result yet */
    float *part_o, *part_l;
} result;

/* Attention of query chunk qi of this rank on K/V chunk kg (held at kv), merged into r.
   Returns 0 on success, prints and returns 1 on an error status. */
static int chunk_step(const block *b, int qi, size_t kg, const float *kv, result *r)
{
    const config *c = b->c;
    const size_t qg = chunk_of(b->w, b->w->rank, qi);
    const size_t q0 = chunk_lo(c, b->w, qg), q1 = chunk_lo(c, b->w, qg + 1);
    const size_t k0 = chunk_lo(c, b->w, kg), k1 = chunk_lo(c, b->w, kg + 1);
    if (q1 == q0 || k1 == k0)
        return 0;
    spattn_mask *sm;
    spattn_status st = spattn_mask_slice(b->m, q0, q1, k0, k1, &sm);
    if (st != SPATTN_OK) {
        fprintf(stderr, "rank %d: spattn_mask_slice: %s\n", b->w->rank, spattn_status_string(st));
        return 1;
    }
    const int sinks_here = b->mods && kg == 0;
    if (spattn_mask_nnz(sm) == 0 && !sinks_here) {
        spattn_mask_free(sm); /* this query chunk sees nothing of the key chunk */
        return 0;
    }
    const size_t nq = q1 - q0;
    spattn_args a;
    memset(&a, 0, sizeof a);
    a.shape = (spattn_shape){1, c->heads, c->kv_heads, nq, k1 - k0, c->dim, c->dim};
    a.q = b->q[qi];
    a.q_layout = spattn_layout_bhtd(c->heads, nq, c->dim);
    a.k = kv;
    a.k_layout = spattn_layout_bhtd(c->kv_heads, b->max_c, c->dim);
    a.v = kv + c->kv_heads * b->max_c * c->dim;
    a.v_layout = a.k_layout;
    float *o = r->o[qi], *lse = r->lse[qi];
    a.o = r->have[qi] ? r->part_o : o;
    a.o_layout = spattn_layout_bhtd(c->heads, nq, c->dim);
    a.lse = r->have[qi] ? r->part_l : lse;
    a.pos_offset = (ptrdiff_t)(c->len - k1) - (ptrdiff_t)(c->len - q1);
    if (b->mods) {
        a.alibi_slopes = b->slopes;
        a.softcap = 30.0f;
        a.sinks = sinks_here ? b->sinks : NULL;
    }
    const spattn_mask *ms[1] = {sm};
    spattn_options opt = {SPATTN_ISA_AUTO, c->threads};
    st = spattn_forward(&a, ms, 1, &opt);
    spattn_mask_free(sm);
    if (st == SPATTN_OK && r->have[qi]) {
        const float *op[2] = {o, r->part_o}, *lp[2] = {lse, r->part_l};
        st = spattn_merge(2, c->heads * nq, c->dim, op, lp, o, lse);
    }
    if (st != SPATTN_OK) {
        fprintf(stderr, "rank %d: chunk %zu: %s\n", b->w->rank, kg, spattn_status_string(st));
        return 1;
    }
    r->have[qi] = 1;
    return 0;
}

/* Every query chunk of this rank against the K/V chunks of rank src, held at kv. */
static int shard_step(const block *b, int src, const float *kv, result *r)
{
    const size_t per_chunk = b->kv_floats / (size_t)b->w->per_rank;
    int err = 0;
    for (int qi = 0; qi < b->w->per_rank && !err; qi++)
        for (int kj = 0; kj < b->w->per_rank && !err; kj++)
            err = chunk_step(b, qi, chunk_of(b->w, src, kj), kv + (size_t)kj * per_chunk, r);
    return err;
}

static int result_new(const block *b, result *r)
{
    const config *c = b->c;
    memset(r, 0, sizeof *r);
    int bad = 0;
    for (int i = 0; i < b->w->per_rank; i++) {
        const size_t n = chunk_len(c, b->w, chunk_of(b->w, b->w->rank, i));
        r->o[i] = malloc(c->heads * n * c->dim * sizeof(float) + 1);
        r->lse[i] = malloc(c->heads * n * sizeof(float) + 1);
        bad |= r->o[i] == NULL || r->lse[i] == NULL;
    }
    r->part_o = malloc(c->heads * b->max_c * c->dim * sizeof(float));
    r->part_l = malloc(c->heads * b->max_c * sizeof(float));
    return bad || r->part_o == NULL || r->part_l == NULL;
}

/* Rows that saw no key chunk: O = 0 and lse = -inf, as spattn gives them. */
static void result_finish(const block *b, result *r)
{
    for (int i = 0; i < b->w->per_rank; i++) {
        if (r->have[i])
            continue;
        const size_t rows = b->c->heads * chunk_len(b->c, b->w, chunk_of(b->w, b->w->rank, i));
        memset(r->o[i], 0, rows * b->c->dim * sizeof(float));
        for (size_t x = 0; x < rows; x++)
            r->lse[i][x] = -INFINITY;
    }
}

static void result_free(result *r)
{
    for (int i = 0; i < 2; i++) {
        free(r->o[i]);
        free(r->lse[i]);
    }
    free(r->part_o);
    free(r->part_l);
}

/* The K/V shards arrive in the order src = rank, rank - 1, ... (mod size): at step t the shard
   in hand goes to the next rank while the next one arrives from the previous rank, overlapped
   with the computation (MPI lets a pending send's buffer be read). The rank's own shard stays
   in kv_own for the next call. */
static int ring(const block *b, const float *kv_own, result *r)
{
    const world *w = b->w;
    const size_t n = b->kv_floats;
    float *recv[2] = {malloc(n * sizeof(float)), malloc(n * sizeof(float))};
    int err = recv[0] == NULL || recv[1] == NULL;
    r->have[0] = r->have[1] = 0;
    const int next = (w->rank + 1) % w->size, prev = (w->rank + w->size - 1) % w->size;
    for (int t = 0; t < w->size && !err; t++) {
        const float *hand = t == 0 ? kv_own : recv[(t - 1) % 2];
        MPI_Request rq[2];
        const int more = t + 1 < w->size;
        if (more) {
            MPI_Irecv(recv[t % 2], (int)n, MPI_FLOAT, prev, t, MPI_COMM_WORLD, &rq[0]);
            MPI_Isend(hand, (int)n, MPI_FLOAT, next, t, MPI_COMM_WORLD, &rq[1]);
        }
        err = shard_step(b, (w->rank + w->size - t) % w->size, hand, r);
        if (more)
            MPI_Waitall(2, rq, MPI_STATUSES_IGNORE);
    }
    result_finish(b, r);
    free(recv[0]);
    free(recv[1]);
    return err;
}

/* A rank's K/V chunks into kv (b->kv_floats). */
static void fill_kv(const block *b, int rank, float *kv)
{
    const config *c = b->c;
    const size_t per_chunk = b->kv_floats / (size_t)b->w->per_rank;
    for (int i = 0; i < b->w->per_rank; i++) {
        const size_t g = chunk_of(b->w, rank, i), t0 = chunk_lo(c, b->w, g);
        const size_t t1 = chunk_lo(c, b->w, g + 1);
        float *k = kv + (size_t)i * per_chunk;
        fill_rows(k, 1, c->kv_heads, t0, t1, c->dim, b->max_c);
        fill_rows(k + per_chunk / 2, 2, c->kv_heads, t0, t1, c->dim, b->max_c);
    }
}

/* The same ring in this process, each shard made locally: must give the same bits. */
static int ring_local(const block *b, result *r)
{
    float *kv = calloc(b->kv_floats, sizeof(float));
    int err = kv == NULL;
    r->have[0] = r->have[1] = 0;
    for (int t = 0; t < b->w->size && !err; t++) {
        const int src = (b->w->rank + b->w->size - t) % b->w->size;
        fill_kv(b, src, kv);
        err = shard_step(b, src, kv, r);
    }
    result_finish(b, r);
    free(kv);
    return err;
}

/* ---- checks ----------------------------------------------------------------------------- */

static int close_to(float got, float want)
{
    if (isinf(want) || isinf(got))
        return got == want;
    return fabs((double)got - (double)want) <= 2e-5 * (1.0 + fabs((double)want));
}

/* Rank 0: the whole problem in one spattn_forward, against the gathered rows. */
static int check_whole(const block *b, const float *o_all, const float *l_all)
{
    const config *c = b->c;
    const size_t L = c->len, H = c->heads, D = c->dim;
    float *q = malloc(H * L * D * sizeof(float)), *k = malloc(c->kv_heads * L * D * sizeof(float));
    float *v = malloc(c->kv_heads * L * D * sizeof(float)), *o = malloc(H * L * D * sizeof(float));
    float *lse = malloc(H * L * sizeof(float));
    int bad = q == NULL || k == NULL || v == NULL || o == NULL || lse == NULL;
    if (!bad) {
        fill_rows(q, 0, H, 0, L, D, L);
        fill_rows(k, 1, c->kv_heads, 0, L, D, L);
        fill_rows(v, 2, c->kv_heads, 0, L, D, L);
        spattn_args a;
        memset(&a, 0, sizeof a);
        a.shape = (spattn_shape){1, H, c->kv_heads, L, L, D, D};
        a.q = q;
        a.q_layout = spattn_layout_bhtd(H, L, D);
        a.k = k;
        a.k_layout = spattn_layout_bhtd(c->kv_heads, L, D);
        a.v = v;
        a.v_layout = a.k_layout;
        a.o = o;
        a.o_layout = a.q_layout;
        a.lse = lse;
        if (b->mods) {
            a.alibi_slopes = b->slopes;
            a.sinks = b->sinks;
            a.softcap = 30.0f;
        }
        const spattn_mask *ms[1] = {b->m};
        spattn_options opt = {SPATTN_ISA_AUTO, c->threads};
        spattn_status st = spattn_forward(&a, ms, 1, &opt);
        if (st != SPATTN_OK) {
            fprintf(stderr, "whole problem: %s\n", spattn_status_string(st));
            bad = 1;
        }
    }
    size_t wrong = 0;
    for (size_t x = 0; !bad && x < H * L; x++) {
        wrong += !close_to(l_all[x], lse[x]);
        for (size_t d = 0; d < D; d++)
            wrong += !close_to(o_all[x * D + d], o[x * D + d]);
    }
    if (wrong)
        fprintf(stderr, "%zu values differ from one spattn_forward of the whole problem\n", wrong);
    free(q);
    free(k);
    free(v);
    free(o);
    free(lse);
    return bad || wrong != 0;
}

/* Rank 0 collects every rank's chunks, [head][token][dim] each, into [head][len][dim]. */
static int gather_rows(const block *b, const result *r, float *o_all, float *l_all)
{
    const config *c = b->c;
    const world *w = b->w;
    const size_t D = c->dim;
    if (w->rank != 0) {
        for (int i = 0; i < w->per_rank; i++) {
            const size_t n = chunk_len(c, w, chunk_of(w, w->rank, i));
            MPI_Send(r->o[i], (int)(c->heads * n * D), MPI_FLOAT, 0, 100, MPI_COMM_WORLD);
            MPI_Send(r->lse[i], (int)(c->heads * n), MPI_FLOAT, 0, 101, MPI_COMM_WORLD);
        }
        return 0;
    }
    float *bo = malloc(c->heads * b->max_c * D * sizeof(float));
    float *bl = malloc(c->heads * b->max_c * sizeof(float));
    int bad = bo == NULL || bl == NULL;
    for (int src = 0; src < w->size; src++)
        for (int i = 0; i < w->per_rank; i++) {
            const size_t g = chunk_of(w, src, i), t0 = chunk_lo(c, w, g), n = chunk_len(c, w, g);
            const float *so = r->o[i], *sl = r->lse[i];
            if (src != 0) {
                MPI_Recv(bo, (int)(c->heads * n * D), MPI_FLOAT, src, 100, MPI_COMM_WORLD,
                         MPI_STATUS_IGNORE);
                MPI_Recv(bl, (int)(c->heads * n), MPI_FLOAT, src, 101, MPI_COMM_WORLD,
                         MPI_STATUS_IGNORE);
                so = bo;
                sl = bl;
            }
            for (size_t h = 0; h < c->heads && !bad; h++) {
                memcpy(o_all + (h * c->len + t0) * D, so + h * n * D, n * D * sizeof(float));
                memcpy(l_all + h * c->len + t0, sl + h * n, n * sizeof(float));
            }
        }
    free(bo);
    free(bl);
    return bad;
}

/* ---- one run: a mask kind, with or without modifiers -------------------------------------- */

static int run(const config *c, const world *w, const char *kind, int mods)
{
    block b;
    memset(&b, 0, sizeof b);
    b.c = c;
    b.w = w;
    b.mods = mods;
    for (size_t g = 0; g < (size_t)w->size * (size_t)w->per_rank; g++)
        b.max_c = chunk_len(c, w, g) > b.max_c ? chunk_len(c, w, g) : b.max_c;
    b.kv_floats = (size_t)w->per_rank * 2 * c->kv_heads * b.max_c * c->dim;
    spattn_mask *m = NULL;
    spattn_status st = make_mask(kind, c->len, &m);
    if (st == SPATTN_OK)
        st = spattn_alibi_slopes(c->heads, b.slopes);
    if (st != SPATTN_OK) {
        fprintf(stderr, "rank %d: mask %s: %s\n", w->rank, kind, spattn_status_string(st));
        spattn_mask_free(m);
        return 1;
    }
    b.m = m;
    for (size_t h = 0; h < c->heads; h++)
        b.sinks[h] = (float)(h % 4) - 1.0f;

    float *q[2] = {NULL, NULL};
    float *kv = calloc(b.kv_floats, sizeof(float));
    result r;
    int err = result_new(&b, &r) || kv == NULL;
    for (int i = 0; i < w->per_rank && !err; i++) {
        const size_t g = chunk_of(w, w->rank, i), n = chunk_len(c, w, g);
        q[i] = malloc(c->heads * n * c->dim * sizeof(float) + 1);
        err = q[i] == NULL;
        if (!err)
            fill_rows(q[i], 0, c->heads, chunk_lo(c, w, g), chunk_lo(c, w, g + 1), c->dim, n);
        b.q[i] = q[i];
    }
    if (!err)
        fill_kv(&b, w->rank, kv);

    double best = INFINITY;
    for (int rep = 0; rep < c->reps && !err; rep++) {
        MPI_Barrier(MPI_COMM_WORLD);
        double t = MPI_Wtime();
        err = ring(&b, kv, &r);
        t = MPI_Wtime() - t;
        double slowest;
        MPI_Allreduce(&t, &slowest, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
        best = slowest < best ? slowest : best;
    }
    MPI_Allreduce(MPI_IN_PLACE, &err, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);

    int bad = 0;
    if (!err && c->check) {
        /* The same chunks in the same order in this process: the same bits. */
        result l;
        bad = result_new(&b, &l) || ring_local(&b, &l);
        for (int i = 0; i < w->per_rank && !bad; i++) {
            const size_t n = chunk_len(c, w, chunk_of(w, w->rank, i));
            bad = memcmp(l.o[i], r.o[i], c->heads * n * c->dim * sizeof(float)) != 0 ||
                  memcmp(l.lse[i], r.lse[i], c->heads * n * sizeof(float)) != 0;
        }
        if (bad)
            fprintf(stderr, "rank %d: the ring differs from the same chunks in one process\n",
                    w->rank);
        result_free(&l);
        float *o_all = NULL, *l_all = NULL;
        if (w->rank == 0) {
            o_all = malloc(c->heads * c->len * c->dim * sizeof(float));
            l_all = malloc(c->heads * c->len * sizeof(float));
        }
        int gerr = gather_rows(&b, &r, o_all, l_all);
        if (w->rank == 0)
            bad |= gerr || o_all == NULL || l_all == NULL || check_whole(&b, o_all, l_all);
        free(o_all);
        free(l_all);
        MPI_Allreduce(MPI_IN_PLACE, &bad, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    }
    if (w->rank == 0)
        printf("ring_attention: %d rank%s (%s), %s%s, len %zu, heads %zu/%zu, dim %zu, "
               "%d thread%s per rank: %.3f ms%s\n",
               w->size, w->size == 1 ? "" : "s", c->zigzag ? "zigzag" : "contiguous", kind,
               mods ? " + sinks, ALiBi, softcap" : "", c->len, c->heads, c->kv_heads, c->dim,
               c->threads, c->threads == 1 ? "" : "s", best * 1e3,
               err         ? ", FAILED"
               : !c->check ? ""
               : bad       ? ", check FAILED"
                           : ", check passed");
    free(q[0]);
    free(q[1]);
    free(kv);
    result_free(&r);
    spattn_mask_free(m);
    return err || bad;
}

static int parse(int argc, char **argv, config *c)
{
    *c = (config){4096, 8, 2, 64, "all", 2, 1, 1, 1, 1};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--no-check") == 0) {
            c->check = 0;
            continue;
        }
        if (v == NULL)
            return 1;
        i++;
        if (strcmp(a, "--len") == 0)
            c->len = strtoul(v, NULL, 10);
        else if (strcmp(a, "--heads") == 0)
            c->heads = strtoul(v, NULL, 10);
        else if (strcmp(a, "--kv-heads") == 0)
            c->kv_heads = strtoul(v, NULL, 10);
        else if (strcmp(a, "--dim") == 0)
            c->dim = strtoul(v, NULL, 10);
        else if (strcmp(a, "--mask") == 0)
            c->mask = v;
        else if (strcmp(a, "--mods") == 0)
            c->mods = strcmp(v, "off") == 0    ? 0
                      : strcmp(v, "on") == 0   ? 1
                      : strcmp(v, "both") == 0 ? 2
                                               : -1;
        else if (strcmp(a, "--layout") == 0)
            c->zigzag = strcmp(v, "zigzag") == 0 ? 1 : strcmp(v, "contiguous") == 0 ? 0 : -1;
        else if (strcmp(a, "--threads") == 0)
            c->threads = atoi(v);
        else if (strcmp(a, "--reps") == 0)
            c->reps = atoi(v);
        else
            return 1;
    }
    return c->mods < 0 || c->zigzag < 0 || c->len == 0 || c->heads == 0 || c->heads > 256 ||
           c->kv_heads == 0 || c->heads % c->kv_heads != 0 || c->dim == 0 || c->threads < 0 ||
           c->reps < 1;
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    world w;
    MPI_Comm_rank(MPI_COMM_WORLD, &w.rank);
    MPI_Comm_size(MPI_COMM_WORLD, &w.size);
    config c;
    if (parse(argc, argv, &c)) {
        if (w.rank == 0)
            fprintf(stderr,
                    "usage: %s [--len N] [--heads H] [--kv-heads H] [--dim D] "
                    "[--mask causal|window|bigbird|blocks|all] [--mods off|on|both] "
                    "[--layout zigzag|contiguous] [--threads T] [--reps R] [--no-check]\n",
                    argv[0]);
        MPI_Finalize();
        return 2;
    }
    w.per_rank = c.zigzag ? 2 : 1;
    /* One message carries a rank's K/V. */
    if (2.0 * (double)c.kv_heads * (double)(c.len / (size_t)w.size + 2) * (double)c.dim >
        2147483647.0) {
        if (w.rank == 0)
            fprintf(stderr, "a K/V shard is too large for one message: use more ranks\n");
        MPI_Finalize();
        return 2;
    }
    static const char *kinds[] = {"causal", "window", "bigbird", "blocks"};
    int failed = 0;
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        if (strcmp(c.mask, "all") != 0 && strcmp(c.mask, kinds[k]) != 0)
            continue;
        for (int mods = 0; mods < 2; mods++)
            if (c.mods == 2 || c.mods == mods)
                failed |= run(&c, &w, kinds[k], mods);
    }
    int known = strcmp(c.mask, "all") == 0;
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++)
        known |= strcmp(c.mask, kinds[k]) == 0;
    if (!known && w.rank == 0)
        fprintf(stderr, "unknown mask kind '%s'\n", c.mask);
    MPI_Finalize();
    return failed || !known ? 1 : 0;
}
