/*
 * Ring (sequence-parallel) attention over MPI with spattn.
 *
 * A sequence of `len` tokens is cut into one contiguous shard per rank; rank r holds the rows
 * [lo(r), lo(r + 1)) of Q, K and V. The K/V shards travel round the ring (each step sends the
 * shard in hand to the next rank while the previous rank's arrives, overlapped with the
 * computation), and every rank computes its query block against each shard with the partial
 * results recipe of spattn.h:
 *
 *   - the mask of the block against the shard is spattn_mask_slice(m, q0, q1, k0, k1);
 *   - spattn_forward on the shard's K and V with pos_offset = (len - k1) - (len - q1), so that
 *     ALiBi sees global positions, and the attention sinks passed for shard 0 only;
 *   - the shards' (o, lse) are merged with spattn_merge, accumulating in place.
 *
 * A shard whose slice allows no pair for the block is skipped without computing (except the
 * one that carries the sinks). Then the program checks itself: every rank recomputes its ring
 * in one process (same shards, same order) and must get the same bits, and rank 0 gathers the
 * result and compares it with one spattn_forward of the whole problem, within spattn's
 * accuracy (2e-5 * (1 + |ref|)). It exits non-zero on any mismatch.
 *
 *   mpirun -np 4 spattn-ring-attention [--len N] [--heads H] [--kv-heads H] [--dim D]
 *          [--mask causal|window|bigbird|blocks|all] [--mods off|on|both] [--threads T]
 *          [--reps R] [--no-check]
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
    int threads, reps, check;
} config;

typedef struct world {
    int rank, size;
} world;

/* The first token of rank r's shard (r may be size: the end). */
static size_t shard_lo(const config *c, const world *w, int r)
{
    return c->len * (size_t)r / (size_t)w->size;
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
    size_t q0, q1, max_k; /* the query block; the longest shard */
    const float *q;       /* [heads][q1 - q0][dim] */
    float slopes[256], sinks[256];
    int mods;
} block;

/* Attention of the block on K/V shard `src`, held in kv as [kv_heads][max_k][dim] K then
   the same for V, merged into (o, lse) (have: whether they hold a result yet). Returns 0 on
   success, prints and returns 1 on an error status. */
static int shard_step(const block *b, int src, const float *kv, float *o, float *lse,
                      float *part_o, float *part_l, int *have)
{
    const config *c = b->c;
    const size_t k0 = shard_lo(c, b->w, src), k1 = shard_lo(c, b->w, src + 1);
    const size_t nq = b->q1 - b->q0;
    if (k1 == k0)
        return 0;
    spattn_mask *sm;
    spattn_status st = spattn_mask_slice(b->m, b->q0, b->q1, k0, k1, &sm);
    if (st != SPATTN_OK) {
        fprintf(stderr, "rank %d: spattn_mask_slice: %s\n", b->w->rank, spattn_status_string(st));
        return 1;
    }
    const int sinks_here = b->mods && src == 0;
    if (spattn_mask_nnz(sm) == 0 && !sinks_here) {
        spattn_mask_free(sm); /* this block sees nothing of the shard */
        return 0;
    }
    spattn_args a;
    memset(&a, 0, sizeof a);
    a.shape = (spattn_shape){1, c->heads, c->kv_heads, nq, k1 - k0, c->dim, c->dim};
    a.q = b->q;
    a.q_layout = spattn_layout_bhtd(c->heads, nq, c->dim);
    a.k = kv;
    a.k_layout = spattn_layout_bhtd(c->kv_heads, b->max_k, c->dim);
    a.v = kv + c->kv_heads * b->max_k * c->dim;
    a.v_layout = a.k_layout;
    float *to_o = *have ? part_o : o, *to_l = *have ? part_l : lse;
    a.o = to_o;
    a.o_layout = spattn_layout_bhtd(c->heads, nq, c->dim);
    a.lse = to_l;
    a.pos_offset = (ptrdiff_t)(c->len - k1) - (ptrdiff_t)(c->len - b->q1);
    if (b->mods) {
        a.alibi_slopes = b->slopes;
        a.softcap = 30.0f;
        a.sinks = sinks_here ? b->sinks : NULL;
    }
    const spattn_mask *ms[1] = {sm};
    spattn_options opt = {SPATTN_ISA_AUTO, c->threads};
    st = spattn_forward(&a, ms, 1, &opt);
    spattn_mask_free(sm);
    if (st == SPATTN_OK && *have) {
        const float *op[2] = {o, part_o}, *lp[2] = {lse, part_l};
        st = spattn_merge(2, c->heads * nq, c->dim, op, lp, o, lse);
    }
    if (st != SPATTN_OK) {
        fprintf(stderr, "rank %d: shard %d: %s\n", b->w->rank, src, spattn_status_string(st));
        return 1;
    }
    *have = 1;
    return 0;
}

/* Rows with no result (the block saw no shard): O = 0 and lse = -inf, as spattn gives them. */
static void no_result(const block *b, float *o, float *lse)
{
    const size_t rows = b->c->heads * (b->q1 - b->q0);
    memset(o, 0, rows * b->c->dim * sizeof(float));
    for (size_t i = 0; i < rows; i++)
        lse[i] = -INFINITY;
}

/* The shards arrive in the order src = rank, rank - 1, ... (mod size): at step t the shard
   in hand goes to the next rank while the next one arrives from the previous rank, overlapped
   with the computation (MPI lets a pending send's buffer be read). The rank's own shard stays
   in kv_own for the next call. */
static int ring(const block *b, const float *kv_own, float *o, float *lse)
{
    const config *c = b->c;
    const world *w = b->w;
    const size_t kv_floats = 2 * c->kv_heads * b->max_k * c->dim, nq = b->q1 - b->q0;
    float *recv[2] = {malloc(kv_floats * sizeof(float)), malloc(kv_floats * sizeof(float))};
    float *part_o = malloc(c->heads * nq * c->dim * sizeof(float) + 1);
    float *part_l = malloc(c->heads * nq * sizeof(float) + 1);
    int err = !recv[0] || !recv[1] || !part_o || !part_l, have = 0;
    const int next = (w->rank + 1) % w->size, prev = (w->rank + w->size - 1) % w->size;
    for (int t = 0; t < w->size && !err; t++) {
        const float *hand = t == 0 ? kv_own : recv[(t - 1) % 2];
        MPI_Request rq[2];
        const int more = t + 1 < w->size;
        if (more) {
            MPI_Irecv(recv[t % 2], (int)kv_floats, MPI_FLOAT, prev, t, MPI_COMM_WORLD, &rq[0]);
            MPI_Isend(hand, (int)kv_floats, MPI_FLOAT, next, t, MPI_COMM_WORLD, &rq[1]);
        }
        err = shard_step(b, (w->rank + w->size - t) % w->size, hand, o, lse, part_o, part_l,
                         &have);
        if (more)
            MPI_Waitall(2, rq, MPI_STATUSES_IGNORE);
    }
    if (!have)
        no_result(b, o, lse);
    free(recv[0]);
    free(recv[1]);
    free(part_o);
    free(part_l);
    return err;
}

/* The same ring in this process, each shard made locally: must give the same bits. */
static int ring_local(const block *b, float *o, float *lse)
{
    const config *c = b->c;
    const world *w = b->w;
    const size_t kv_floats = 2 * c->kv_heads * b->max_k * c->dim, nq = b->q1 - b->q0;
    float *kv = calloc(kv_floats, sizeof(float));
    float *part_o = malloc(c->heads * nq * c->dim * sizeof(float) + 1);
    float *part_l = malloc(c->heads * nq * sizeof(float) + 1);
    int err = kv == NULL || part_o == NULL || part_l == NULL, have = 0;
    for (int t = 0; t < w->size && !err; t++) {
        const int src = (w->rank + w->size - t) % w->size;
        const size_t k0 = shard_lo(c, w, src), k1 = shard_lo(c, w, src + 1);
        fill_rows(kv, 1, c->kv_heads, k0, k1, c->dim, b->max_k);
        fill_rows(kv + kv_floats / 2, 2, c->kv_heads, k0, k1, c->dim, b->max_k);
        err = shard_step(b, src, kv, o, lse, part_o, part_l, &have);
    }
    if (!have)
        no_result(b, o, lse);
    free(kv);
    free(part_o);
    free(part_l);
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

/* Rank 0 collects every rank's rows, [head][token][dim] per rank, into [head][len][dim]. */
static int gather_rows(const block *b, const float *o, const float *lse, float *o_all,
                       float *l_all)
{
    const config *c = b->c;
    const world *w = b->w;
    const size_t D = c->dim;
    if (w->rank != 0) {
        MPI_Send(o, (int)(c->heads * (b->q1 - b->q0) * D), MPI_FLOAT, 0, 100, MPI_COMM_WORLD);
        MPI_Send(lse, (int)(c->heads * (b->q1 - b->q0)), MPI_FLOAT, 0, 101, MPI_COMM_WORLD);
        return 0;
    }
    float *bo = malloc(c->heads * b->max_k * D * sizeof(float) + 1);
    float *bl = malloc(c->heads * b->max_k * sizeof(float) + 1);
    if (bo == NULL || bl == NULL)
        return 1;
    for (int r = 0; r < w->size; r++) {
        const size_t t0 = shard_lo(c, w, r), n = shard_lo(c, w, r + 1) - t0;
        if (r == 0) {
            memcpy(bo, o, c->heads * n * D * sizeof(float));
            memcpy(bl, lse, c->heads * n * sizeof(float));
        } else {
            MPI_Recv(bo, (int)(c->heads * n * D), MPI_FLOAT, r, 100, MPI_COMM_WORLD,
                     MPI_STATUS_IGNORE);
            MPI_Recv(bl, (int)(c->heads * n), MPI_FLOAT, r, 101, MPI_COMM_WORLD,
                     MPI_STATUS_IGNORE);
        }
        for (size_t h = 0; h < c->heads; h++) {
            memcpy(o_all + (h * c->len + t0) * D, bo + h * n * D, n * D * sizeof(float));
            memcpy(l_all + h * c->len + t0, bl + h * n, n * sizeof(float));
        }
    }
    free(bo);
    free(bl);
    return 0;
}

/* ---- one run: a mask kind, with or without modifiers -------------------------------------- */

static int run(const config *c, const world *w, const char *kind, int mods)
{
    block b;
    memset(&b, 0, sizeof b);
    b.c = c;
    b.w = w;
    b.mods = mods;
    b.q0 = shard_lo(c, w, w->rank);
    b.q1 = shard_lo(c, w, w->rank + 1);
    for (int r = 0; r < w->size; r++) {
        size_t n = shard_lo(c, w, r + 1) - shard_lo(c, w, r);
        b.max_k = n > b.max_k ? n : b.max_k;
    }
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

    const size_t nq = b.q1 - b.q0, kv_floats = 2 * c->kv_heads * b.max_k * c->dim;
    float *q = malloc(c->heads * nq * c->dim * sizeof(float) + 1);
    float *kv = calloc(kv_floats, sizeof(float));
    float *o = malloc(c->heads * nq * c->dim * sizeof(float) + 1);
    float *lse = malloc(c->heads * nq * sizeof(float) + 1);
    int err = q == NULL || kv == NULL || o == NULL || lse == NULL;
    if (!err) {
        fill_rows(q, 0, c->heads, b.q0, b.q1, c->dim, nq);
        fill_rows(kv, 1, c->kv_heads, b.q0, b.q1, c->dim, b.max_k);
        fill_rows(kv + kv_floats / 2, 2, c->kv_heads, b.q0, b.q1, c->dim, b.max_k);
        b.q = q;
    }

    double best = INFINITY;
    for (int rep = 0; rep < c->reps && !err; rep++) {
        MPI_Barrier(MPI_COMM_WORLD);
        double t = MPI_Wtime();
        err = ring(&b, kv, o, lse);
        t = MPI_Wtime() - t;
        double slowest;
        MPI_Allreduce(&t, &slowest, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
        best = slowest < best ? slowest : best;
    }
    MPI_Allreduce(MPI_IN_PLACE, &err, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);

    int bad = 0;
    if (!err && c->check) {
        /* The same shards in the same order in this process: the same bits. */
        float *lo = malloc(c->heads * nq * c->dim * sizeof(float) + 1);
        float *ll = malloc(c->heads * nq * sizeof(float) + 1);
        bad = lo == NULL || ll == NULL || ring_local(&b, lo, ll) ||
              memcmp(lo, o, c->heads * nq * c->dim * sizeof(float)) != 0 ||
              memcmp(ll, lse, c->heads * nq * sizeof(float)) != 0;
        if (bad)
            fprintf(stderr, "rank %d: the ring differs from the same shards in one process\n",
                    w->rank);
        free(lo);
        free(ll);
        float *o_all = NULL, *l_all = NULL;
        if (w->rank == 0) {
            o_all = malloc(c->heads * c->len * c->dim * sizeof(float));
            l_all = malloc(c->heads * c->len * sizeof(float));
        }
        int gerr = gather_rows(&b, o, lse, o_all, l_all);
        if (w->rank == 0)
            bad |= gerr || o_all == NULL || l_all == NULL || check_whole(&b, o_all, l_all);
        free(o_all);
        free(l_all);
        MPI_Allreduce(MPI_IN_PLACE, &bad, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    }
    if (w->rank == 0)
        printf("ring_attention: %d rank%s, %s%s, len %zu, heads %zu/%zu, dim %zu, %d thread%s "
               "per rank: %.3f ms%s\n",
               w->size, w->size == 1 ? "" : "s", kind, mods ? " + sinks, ALiBi, softcap" : "",
               c->len, c->heads, c->kv_heads, c->dim, c->threads, c->threads == 1 ? "" : "s",
               best * 1e3,
               err ? ", FAILED" : !c->check ? "" : bad ? ", check FAILED" : ", check passed");
    free(q);
    free(kv);
    free(o);
    free(lse);
    spattn_mask_free(m);
    return err || bad;
}

static int parse(int argc, char **argv, config *c)
{
    *c = (config){4096, 8, 2, 64, "all", 2, 1, 1, 1};
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
            c->mods = strcmp(v, "off") == 0 ? 0 : strcmp(v, "on") == 0 ? 1 : strcmp(v, "both") == 0 ? 2 : -1;
        else if (strcmp(a, "--threads") == 0)
            c->threads = atoi(v);
        else if (strcmp(a, "--reps") == 0)
            c->reps = atoi(v);
        else
            return 1;
    }
    return c->mods < 0 || c->len == 0 || c->heads == 0 || c->heads > 256 || c->kv_heads == 0 ||
           c->heads % c->kv_heads != 0 || c->dim == 0 || c->threads < 0 || c->reps < 1;
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
            fprintf(stderr, "usage: %s [--len N] [--heads H] [--kv-heads H] [--dim D] "
                            "[--mask causal|window|bigbird|blocks|all] [--mods off|on|both] "
                            "[--threads T] [--reps R] [--no-check]\n",
                    argv[0]);
        MPI_Finalize();
        return 2;
    }
    /* One message carries a whole K/V shard. */
    if (2.0 * (double)c.kv_heads * (double)(c.len / (size_t)w.size + 1) * (double)c.dim >
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
