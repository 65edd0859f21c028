/*
 * spattn-pair-ab: two builds of libspattn.so timed call by call in one process.
 *
 *   spattn-pair-ab LIB_A LIB_B [--pattern P] [--sparsity S] [--len N] [--dim D] [--heads H]
 *                  [--kv-heads G]
 *                  [--dtype T] [--isa NAME] [--dtype-b T] [--isa-b NAME] [--threads N]
 *                  [--pairs N]
 *
 * Both libraries are loaded with dlopen (RTLD_LOCAL: each keeps its own symbols and state) and
 * given the same problem, each through its own plan. Then A and B execute alternately, the
 * order swapped every pair, and each pair gives the ratio B / A of its two calls. On a shared
 * machine a neighbour that slows the core for a while slows both calls of a pair alike, so
 * the median of the ratios (with its quartiles) is a far steadier figure than two separate
 * runs' times: what tools/bench_ab.py cannot give when whole runs drift. The outputs of the
 * two libraries are compared too (largest difference), so a change meant to keep the bits
 * shows whether it did.
 *
 * The problem is one of the benchmark suite's (bench/bench_masks.c builds its masks, fitted
 * to --sparsity as the suite fits them, in this program's own copy of the library); each
 * library gets those masks through its spattn_mask_from_csr. Patterns and types are the
 * suite's names (dense, causal, blocks64, fewkeys, strided, ...; f32, bf16, f16, f32-f16kv
 * for Q and K/V; O is float32 here, so that two types' outputs compare). --dtype-b and --isa-b give
 * B another type or ISA than A (LIB_B may then be LIB_A itself), so that two ISAs or two types of
 * one build are compared the same way. Inputs and outputs are 64-byte aligned, as the suite's.
 */
#define _POSIX_C_SOURCE 200809L
#include <dlfcn.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_case.h"
#include "bench_masks.h"
#include "spattn.h"

/* The public functions this program calls, from one library. */
typedef struct lib {
    const char *path;
    void *h;
    spattn_status (*mask_from_csr)(size_t, size_t, const int64_t *, const int32_t *,
                                   spattn_mask **);
    void (*mask_free)(spattn_mask *);
    spattn_status (*plan_create)(const spattn_shape *, const spattn_mask *const *, size_t,
                                 const spattn_options *, spattn_plan **);
    spattn_status (*plan_execute)(const spattn_plan *, const spattn_args *);
    void (*plan_free)(spattn_plan *);
    size_t (*isas_compiled)(spattn_isa *, size_t);
    const char *(*isa_name)(spattn_isa);
    const char *(*status_string)(spattn_status);
    const char *(*version)(void);
    spattn_isa (*plan_isa)(const spattn_plan *);
    spattn_mask **masks; /* n_masks of them, this library's copies of the problem's */
    spattn_plan *plan;
} lib;

static void *sym(lib *l, const char *name)
{
    void *p = dlsym(l->h, name);
    if (p == NULL) {
        fprintf(stderr, "spattn-pair-ab: %s has no %s\n", l->path, name);
        exit(2);
    }
    return p;
}

static void lib_open(lib *l, const char *path)
{
    memset(l, 0, sizeof *l);
    l->path = path;
    l->h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (l->h == NULL) {
        fprintf(stderr, "spattn-pair-ab: %s\n", dlerror());
        exit(2);
    }
    /* Function pointers from dlsym's object pointers: POSIX guarantees the conversion. */
#define SYM(field, name) *(void **)(&l->field) = sym(l, name)
    SYM(mask_from_csr, "spattn_mask_from_csr");
    SYM(mask_free, "spattn_mask_free");
    SYM(plan_create, "spattn_plan_create");
    SYM(plan_execute, "spattn_plan_execute");
    SYM(plan_free, "spattn_plan_free");
    SYM(isas_compiled, "spattn_isas_compiled");
    SYM(isa_name, "spattn_isa_name");
    SYM(status_string, "spattn_status_string");
    SYM(version, "spattn_version");
    SYM(plan_isa, "spattn_plan_isa");
#undef SYM
}

static void check(const lib *l, spattn_status st, const char *what)
{
    if (st != SPATTN_OK) {
        fprintf(stderr, "spattn-pair-ab: %s: %s: %s\n", l->path, what, l->status_string(st));
        exit(1);
    }
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int by_value(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* The problem's masks (n of them, built by bench_masks_build in this program's copy of the
   library) as library l's masks, through CSR. */
static void copy_masks(lib *l, spattn_mask *const *src, size_t n)
{
    l->masks = calloc(n ? n : 1, sizeof *l->masks);
    if (l->masks == NULL)
        exit(3);
    for (size_t i = 0; i < n; i++) {
        const size_t lq = spattn_mask_len_q(src[i]);
        int64_t *rp = malloc((lq + 1) * sizeof *rp);
        int32_t *ci = malloc((size_t)spattn_mask_nnz(src[i]) * sizeof *ci + 1);
        if (rp == NULL || ci == NULL || spattn_mask_to_csr(src[i], rp, ci) != SPATTN_OK)
            exit(3);
        check(l, l->mask_from_csr(lq, spattn_mask_len_k(src[i]), rp, ci, &l->masks[i]), "mask");
        free(rp);
        free(ci);
    }
}

static spattn_isa isa_by_name(const lib *l, const char *name)
{
    spattn_isa all[32];
    const size_t n = l->isas_compiled(all, 32);
    for (size_t i = 0; i < n && i < 32; i++)
        if (strcmp(l->isa_name(all[i]), name) == 0)
            return all[i];
    if (strcmp(name, "auto") == 0)
        return SPATTN_ISA_AUTO;
    fprintf(stderr, "spattn-pair-ab: %s has no ISA named %s\n", l->path, name);
    exit(2);
}

/* The suite's value of a name among its n (pattern or type), or -1. */
static int by_name(const char *name, const char *(*name_of)(int), int n)
{
    for (int i = 0; i < n; i++)
        if (strcmp(name, name_of(i)) == 0)
            return i;
    return -1;
}

static const char *pattern_name(int p)
{
    return bench_pattern_name((bench_pattern)p);
}

static const char *dtype_name(int d)
{
    return bench_dtype_name((bench_dtype)d);
}

static const char *const known[] = {"--pattern", "--sparsity", "--len",   "--len-q", "--dim",
                                    "--heads",   "--kv-heads", "--dtype", "--isa",   "--dtype-b",
                                    "--isa-b",   "--threads",  "--pairs", "--param", "--param2"};

/* 1 when every option (argv[3], argv[5], ...) is one of `known`, else 0 with a message: a
   misspelt option would otherwise leave its default in place unnoticed. */
static int options_known(int argc, char **argv)
{
    for (int i = 3; i < argc; i += 2) {
        size_t k = 0;
        while (k < sizeof known / sizeof known[0] && strcmp(argv[i], known[k]) != 0)
            k++;
        if (k == sizeof known / sizeof known[0]) {
            fprintf(stderr, "spattn-pair-ab: unknown option %s\n", argv[i]);
            return 0;
        }
    }
    return 1;
}

static const char *opt(int argc, char **argv, const char *name, const char *dflt)
{
    for (int i = 3; i + 1 < argc; i += 2)
        if (strcmp(argv[i], name) == 0)
            return argv[i + 1];
    return dflt;
}

/* bytes on a 64-byte boundary, as the suite's inputs and the README's layouts ask (malloc's
   16-byte alignment costs the gather path 1.2-1.6x, docs/kernels.md). */
static void *alloc64(size_t bytes)
{
    void *p = NULL;
    return posix_memalign(&p, 64, bytes > 0 ? bytes : 1) == 0 ? p : NULL;
}

/* n values uniform in [-1, 1) (multiples of 1/64, exact in every type) as a new buffer of
   type t. */
static void *inputs(size_t n, spattn_dtype t, uint64_t seed)
{
    float *x = alloc64(n * sizeof *x);
    if (x == NULL)
        exit(3);
    for (size_t i = 0; i < n; i++)
        x[i] = (float)((int)(bench_rng(&seed) % 128) - 64) / 64.0f;
    if (t == SPATTN_DTYPE_F32)
        return x;
    uint16_t *h = alloc64(n * sizeof *h);
    if (h == NULL)
        exit(3);
    if (t == SPATTN_DTYPE_BF16)
        spattn_f32_to_bf16(x, h, n);
    else
        spattn_f32_to_f16(x, h, n);
    free(x);
    return h;
}

int main(int argc, char **argv)
{
    if (argc < 3 || argc % 2 == 0) {
        fprintf(stderr, "usage: spattn-pair-ab LIB_A LIB_B [--pattern P] [--sparsity S] "
                        "[--len N] [--len-q M] [--dim D] [--heads H] [--kv-heads G] "
                        "[--dtype f32|bf16|f16|f32-f16kv] [--isa NAME] [--dtype-b T] "
                        "[--isa-b NAME] [--threads N] [--pairs N] [--param P [--param2 Q]]\n");
        return 2;
    }
    if (!options_known(argc, argv))
        return 2;
    const char *pattern = opt(argc, argv, "--pattern", "dense");
    const char *sparsity = opt(argc, argv, "--sparsity", "0");
    const char *dtype[2], *isa_s[2];
    dtype[0] = opt(argc, argv, "--dtype", "f32");
    dtype[1] = opt(argc, argv, "--dtype-b", dtype[0]);
    isa_s[0] = opt(argc, argv, "--isa", "auto");
    isa_s[1] = opt(argc, argv, "--isa-b", isa_s[0]);
    const size_t n = (size_t)atol(opt(argc, argv, "--len", "4096"));
    /* Query rows, the last len_q positions of the n keys (1: decode); n by default. */
    const size_t lq = (size_t)atol(opt(argc, argv, "--len-q", opt(argc, argv, "--len", "4096")));
    const size_t d = (size_t)atol(opt(argc, argv, "--dim", "64"));
    const size_t hq = (size_t)atol(opt(argc, argv, "--heads", "2"));
    const size_t hk = (size_t)atol(opt(argc, argv, "--kv-heads", opt(argc, argv, "--heads", "2")));
    const int threads = atoi(opt(argc, argv, "--threads", "1"));
    const int pairs = atoi(opt(argc, argv, "--pairs", "20"));
    if (n == 0 || lq == 0 || lq > n || d == 0 || hq == 0 || hk == 0 || hq % hk != 0 || pairs < 1 ||
        threads < 0) {
        fprintf(stderr, "spattn-pair-ab: bad sizes\n");
        return 2;
    }
    /* The suite's case: its pattern fitted to the sparsity (in tenths of a percent). */
    bench_case c;
    memset(&c, 0, sizeof c);
    c.kind = BK_ATTN;
    c.batch = 1;
    c.heads_q = hq;
    c.heads_kv = hk;
    c.len_q = lq;
    c.len_k = n;
    c.dim = d;
    c.level = (int)lround(10.0 * atof(sparsity));
    const int pat = by_name(pattern, pattern_name, BP_COUNT);
    if (pat < 0 || c.level < 0 || c.level > 999) {
        fprintf(stderr, "spattn-pair-ab: unknown pattern %s or sparsity %s\n", pattern, sparsity);
        return 2;
    }
    c.pattern = (bench_pattern)pat;
    c.fixed = c.pattern == BP_GPT2HEADS; /* its heads' key counts set its sparsity */
    /* The pattern's own parameters (the suite's fixed, longformer and dilated entries) instead
       of those fitted to the sparsity. */
    const char *param = opt(argc, argv, "--param", NULL);
    if (param == NULL && opt(argc, argv, "--param2", NULL) != NULL) {
        fprintf(stderr, "spattn-pair-ab: --param2 needs --param\n");
        return 2;
    }
    if (param != NULL) {
        c.fixed = 1;
        c.param = (size_t)atol(param);
        c.param2 = (size_t)atol(opt(argc, argv, "--param2", "0"));
    }
    if (!bench_masks_fit(&c)) {
        fprintf(stderr, "spattn-pair-ab: %s cannot reach sparsity %s at len %zu\n", pattern,
                sparsity, n);
        return 2;
    }
    spattn_mask **src = NULL;
    size_t n_masks = 0;
    if (bench_masks_build(&c, &src, &n_masks) != SPATTN_OK)
        return 3;
    spattn_dtype qt[2], kvt[2], ot;
    for (int i = 0; i < 2; i++) {
        const int dt = by_name(dtype[i], dtype_name, BD_COUNT);
        if (dt < 0) {
            fprintf(stderr, "spattn-pair-ab: unknown type %s\n", dtype[i]);
            return 2;
        }
        bench_dtypes((bench_dtype)dt, &qt[i], &kvt[i], &ot);
    }

    /* One library may be given twice (to compare two ISAs or types of it): dlopen then hands
       back the same one, and each side still has its own masks and plan. */
    const size_t nq = hq * lq * d, nk = hk * n * d;
    const spattn_shape shape = {1, hq, hk, lq, n, d, d};
    float *o[2] = {alloc64(nq * sizeof(float)), alloc64(nq * sizeof(float))};
    if (o[0] == NULL || o[1] == NULL)
        return 3;
    lib l[2];
    spattn_args a[2];
    void *in[2][3];
    for (int i = 0; i < 2; i++) {
        lib_open(&l[i], argv[1 + i]);
        in[i][0] = inputs(nq, qt[i], 1);
        in[i][1] = inputs(nk, kvt[i], 2);
        in[i][2] = inputs(nk, kvt[i], 3);
        memset(&a[i], 0, sizeof a[i]);
        a[i].shape = shape;
        a[i].q = in[i][0];
        a[i].k = in[i][1];
        a[i].v = in[i][2];
        a[i].o = o[i];
        a[i].q_dtype = qt[i];
        a[i].kv_dtype = kvt[i];
        a[i].o_dtype = SPATTN_DTYPE_F32;
        a[i].q_layout = spattn_layout_bhtd(hq, lq, d);
        a[i].k_layout = spattn_layout_bhtd(hk, n, d);
        a[i].v_layout = a[i].k_layout;
        a[i].o_layout = a[i].q_layout;
        copy_masks(&l[i], src, n_masks);
        const spattn_options op = {isa_by_name(&l[i], isa_s[i]), threads};
        check(&l[i],
              l[i].plan_create(&shape, (const spattn_mask *const *)l[i].masks, n_masks, &op,
                               &l[i].plan),
              "plan");
    }
    bench_masks_free(src, n_masks);

    double *t[2] = {malloc((size_t)pairs * sizeof(double)), malloc((size_t)pairs * sizeof(double))};
    double *ratio = malloc((size_t)pairs * sizeof(double));
    if (t[0] == NULL || t[1] == NULL || ratio == NULL)
        return 3;
    for (int i = 0; i < 2; i++) /* warm-up: first-touch, caches, thread start */
        check(&l[i], l[i].plan_execute(l[i].plan, &a[i]), "execute");
    for (int p = 0; p < pairs; p++)
        for (int s = 0; s < 2; s++) {
            const int i = (p & 1) ? 1 - s : s;
            const double t0 = now_s();
            check(&l[i], l[i].plan_execute(l[i].plan, &a[i]), "execute");
            t[i][p] = now_s() - t0;
        }
    for (int p = 0; p < pairs; p++)
        ratio[p] = t[1][p] / t[0][p];
    double diff = 0.0;
    for (size_t i = 0; i < nq; i++) {
        const double e = fabs((double)o[0][i] - (double)o[1][i]);
        if (e > diff || e != e)
            diff = e;
    }
    const int bitwise = memcmp(o[0], o[1], nq * sizeof(float)) == 0;

    printf("problem: %s at sparsity %s, len %zu (%zu query rows), dim %zu, heads %zu/%zu, %d "
           "thread(s), %d pairs\n",
           pattern, sparsity, n, lq, d, hq, hk, threads, pairs);
    for (int i = 0; i < 2; i++) {
        qsort(t[i], (size_t)pairs, sizeof(double), by_value);
        printf("%c: %s (spattn %s, %s, %s): fastest %.4g ms, median %.4g ms\n", 'A' + i, l[i].path,
               l[i].version(), l[i].isa_name(l[i].plan_isa(l[i].plan)), dtype[i], 1e3 * t[i][0],
               1e3 * t[i][pairs / 2]);
    }
    qsort(ratio, (size_t)pairs, sizeof(double), by_value);
    printf("B / A per pair: median %.4f, quartiles %.4f - %.4f\n", ratio[pairs / 2],
           ratio[pairs / 4], ratio[(3 * pairs) / 4]);
    printf("outputs: %s (largest difference %.3g)\n", bitwise ? "bitwise equal" : "differ", diff);

    for (int i = 0; i < 2; i++) {
        l[i].plan_free(l[i].plan);
        for (size_t m = 0; m < n_masks; m++)
            l[i].mask_free(l[i].masks[m]);
        free(l[i].masks);
        /* No dlclose: unloading would unload the OpenMP runtime the libraries brought, whose
           start-up allocations valgrind then reports as lost. */
    }
    free(o[0]);
    free(o[1]);
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 3; j++)
            free(in[i][j]);
    free(t[0]);
    free(t[1]);
    free(ratio);
    return 0;
}
