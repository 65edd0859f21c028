/*
 * spattn-pair-ab: two builds of libspattn.so timed call by call in one process.
 *
 *   spattn-pair-ab LIB_A LIB_B [--pattern P] [--len N] [--dim D] [--heads H] [--kv-heads G]
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
 * Patterns: dense, causal, window:W (W keys back, causal), blocks:P (64x64 blocks, P percent
 * of them at random, the diagonal added), fewkeys:K (K random keys per row), strided:S.
 * Types (Q, K/V; O is float32): f32, bf16, f16, f32-f16kv. --dtype-b and --isa-b give B
 * another type or ISA than A (LIB_B may then be LIB_A itself), so that two ISAs or two types
 * of one build are compared the same way.
 */
#define _POSIX_C_SOURCE 200809L
#include <dlfcn.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "spattn.h"

/* The public functions this program calls, from one library. */
typedef struct lib {
    const char *path;
    void *h;
    spattn_status (*mask_causal)(size_t, size_t, spattn_mask **);
    spattn_status (*mask_window)(size_t, size_t, size_t, size_t, spattn_mask **);
    spattn_status (*mask_from_blocks)(size_t, size_t, size_t, size_t, const uint8_t *,
                                      spattn_mask **);
    spattn_status (*mask_from_csr)(size_t, size_t, const int64_t *, const int32_t *,
                                   spattn_mask **);
    spattn_status (*mask_strided)(size_t, size_t, size_t, spattn_mask **);
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
    void (*f32_to_bf16)(const float *, uint16_t *, size_t);
    void (*f32_to_f16)(const float *, uint16_t *, size_t);
    spattn_mask *mask;
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
    SYM(mask_causal, "spattn_mask_causal");
    SYM(mask_window, "spattn_mask_window");
    SYM(mask_from_blocks, "spattn_mask_from_blocks");
    SYM(mask_from_csr, "spattn_mask_from_csr");
    SYM(mask_strided, "spattn_mask_strided");
    SYM(mask_free, "spattn_mask_free");
    SYM(plan_create, "spattn_plan_create");
    SYM(plan_execute, "spattn_plan_execute");
    SYM(plan_free, "spattn_plan_free");
    SYM(isas_compiled, "spattn_isas_compiled");
    SYM(isa_name, "spattn_isa_name");
    SYM(status_string, "spattn_status_string");
    SYM(version, "spattn_version");
    SYM(plan_isa, "spattn_plan_isa");
    SYM(f32_to_bf16, "spattn_f32_to_bf16");
    SYM(f32_to_f16, "spattn_f32_to_f16");
#undef SYM
}

static void check(const lib *l, spattn_status st, const char *what)
{
    if (st != SPATTN_OK) {
        fprintf(stderr, "spattn-pair-ab: %s: %s: %s\n", l->path, what, l->status_string(st));
        exit(1);
    }
}

static uint64_t rng(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
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

/* The pattern's mask from library l; the random ones draw from a fixed seed, so both
   libraries get the same mask. */
static void make_mask(lib *l, const char *pattern, size_t n)
{
    uint64_t seed = 0x9e3779b97f4a7c15u;
    const char *arg = strchr(pattern, ':');
    const double x = arg != NULL ? atof(arg + 1) : 0.0;
    spattn_status st;
    if (strcmp(pattern, "dense") == 0) {
        st = l->mask_window(n, n, n, n, &l->mask);
    } else if (strcmp(pattern, "causal") == 0) {
        st = l->mask_causal(n, n, &l->mask);
    } else if (strncmp(pattern, "window:", 7) == 0 && x >= 1) {
        st = l->mask_window(n, n, (size_t)x - 1, 0, &l->mask);
    } else if (strncmp(pattern, "strided:", 8) == 0 && x >= 1) {
        st = l->mask_strided(n, n, (size_t)x, &l->mask);
    } else if (strncmp(pattern, "blocks:", 7) == 0 && x > 0) {
        const size_t nb = (n + 63) / 64;
        uint8_t *b = malloc(nb * nb);
        if (b == NULL)
            exit(3);
        for (size_t i = 0; i < nb * nb; i++)
            b[i] = (double)(rng(&seed) >> 11) * 0x1p-53 * 100.0 < x;
        for (size_t i = 0; i < nb; i++)
            b[i * nb + i] = 1;
        st = l->mask_from_blocks(n, n, 64, 64, b, &l->mask);
        free(b);
    } else if (strncmp(pattern, "fewkeys:", 8) == 0 && x >= 1 && (size_t)x <= n) {
        const size_t k = (size_t)x;
        int64_t *rp = malloc((n + 1) * sizeof *rp);
        int32_t *ci = malloc(n * k * sizeof *ci);
        uint8_t *seen = calloc(n, 1);
        if (rp == NULL || ci == NULL || seen == NULL)
            exit(3);
        rp[0] = 0;
        for (size_t i = 0; i < n; i++) {
            size_t got = 0;
            while (got < k) {
                const size_t j = (size_t)(rng(&seed) % n);
                if (!seen[j]) {
                    seen[j] = 1;
                    got++;
                }
            }
            size_t w = (size_t)rp[i];
            for (size_t j = 0; j < n; j++)
                if (seen[j]) {
                    ci[w++] = (int32_t)j;
                    seen[j] = 0;
                }
            rp[i + 1] = (int64_t)w;
        }
        st = l->mask_from_csr(n, n, rp, ci, &l->mask);
        free(rp);
        free(ci);
        free(seen);
    } else {
        fprintf(stderr, "spattn-pair-ab: unknown pattern %s\n", pattern);
        exit(2);
    }
    check(l, st, "mask");
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

/* n floats as a new buffer of type t, converted by library l. */
static void *typed(const lib *l, const float *x, size_t n, spattn_dtype t)
{
    if (t == SPATTN_DTYPE_F32) {
        float *p = malloc(n * sizeof *p);
        if (p != NULL)
            memcpy(p, x, n * sizeof *p);
        return p;
    }
    uint16_t *p = malloc(n * sizeof *p);
    if (p != NULL)
        (t == SPATTN_DTYPE_BF16 ? l->f32_to_bf16 : l->f32_to_f16)(x, p, n);
    return p;
}

static const char *const known[] = {"--pattern",  "--len",     "--dim",  "--heads",
                                    "--kv-heads", "--dtype",   "--isa",  "--dtype-b",
                                    "--isa-b",    "--threads", "--pairs"};

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

static int parse_dtype(const char *name, spattn_dtype *q, spattn_dtype *kv)
{
    *q = *kv = SPATTN_DTYPE_F32;
    if (strcmp(name, "bf16") == 0)
        *q = *kv = SPATTN_DTYPE_BF16;
    else if (strcmp(name, "f16") == 0)
        *q = *kv = SPATTN_DTYPE_F16;
    else if (strcmp(name, "f32-f16kv") == 0)
        *kv = SPATTN_DTYPE_F16;
    else if (strcmp(name, "f32") != 0)
        return 0;
    return 1;
}

int main(int argc, char **argv)
{
    if (argc < 3 || argc % 2 == 0) {
        fprintf(stderr, "usage: spattn-pair-ab LIB_A LIB_B [--pattern P] [--len N] [--dim D] "
                        "[--heads H] [--kv-heads G] [--dtype f32|bf16|f16|f32-f16kv] "
                        "[--isa NAME] [--dtype-b T] [--isa-b NAME] [--threads N] "
                        "[--pairs N]\n");
        return 2;
    }
    if (!options_known(argc, argv))
        return 2;
    const char *pattern = opt(argc, argv, "--pattern", "dense");
    const char *dtype[2], *isa_s[2];
    dtype[0] = opt(argc, argv, "--dtype", "f32");
    dtype[1] = opt(argc, argv, "--dtype-b", dtype[0]);
    isa_s[0] = opt(argc, argv, "--isa", "auto");
    isa_s[1] = opt(argc, argv, "--isa-b", isa_s[0]);
    const size_t n = (size_t)atol(opt(argc, argv, "--len", "4096"));
    const size_t d = (size_t)atol(opt(argc, argv, "--dim", "64"));
    const size_t hq = (size_t)atol(opt(argc, argv, "--heads", "2"));
    const size_t hk = (size_t)atol(opt(argc, argv, "--kv-heads", opt(argc, argv, "--heads", "2")));
    const int threads = atoi(opt(argc, argv, "--threads", "1"));
    const int pairs = atoi(opt(argc, argv, "--pairs", "20"));
    if (n == 0 || d == 0 || hq == 0 || hk == 0 || hq % hk != 0 || pairs < 1 || threads < 0) {
        fprintf(stderr, "spattn-pair-ab: bad sizes\n");
        return 2;
    }
    spattn_dtype qt[2], kvt[2];
    for (int i = 0; i < 2; i++)
        if (!parse_dtype(dtype[i], &qt[i], &kvt[i])) {
            fprintf(stderr, "spattn-pair-ab: unknown type %s\n", dtype[i]);
            return 2;
        }

    const size_t nq = hq * n * d, nk = hk * n * d;
    float *x = malloc((nq + 2 * nk) * sizeof *x);
    float *o[2] = {malloc(nq * sizeof(float)), malloc(nq * sizeof(float))};
    if (x == NULL || o[0] == NULL || o[1] == NULL)
        return 3;
    uint64_t seed = 12345;
    for (size_t i = 0; i < nq + 2 * nk; i++)
        x[i] = (float)((int)(rng(&seed) % 128) - 64) / 64.0f;

    /* One library may be given twice (to compare two ISAs or types of it): dlopen then hands
       back the same one, and each side still has its own mask and plan. */
    const spattn_shape shape = {1, hq, hk, n, n, d, d};
    lib l[2];
    spattn_args a[2];
    void *in[2][3];
    for (int i = 0; i < 2; i++) {
        lib_open(&l[i], argv[1 + i]);
        in[i][0] = typed(&l[i], x, nq, qt[i]);
        in[i][1] = typed(&l[i], x + nq, nk, kvt[i]);
        in[i][2] = typed(&l[i], x + nq + nk, nk, kvt[i]);
        if (in[i][0] == NULL || in[i][1] == NULL || in[i][2] == NULL)
            return 3;
        memset(&a[i], 0, sizeof a[i]);
        a[i].shape = shape;
        a[i].q = in[i][0];
        a[i].k = in[i][1];
        a[i].v = in[i][2];
        a[i].o = o[i];
        a[i].q_dtype = qt[i];
        a[i].kv_dtype = kvt[i];
        a[i].o_dtype = SPATTN_DTYPE_F32;
        /* Layouts are plain structs of strides; either library's helper would give these. */
        a[i].q_layout = (spattn_layout){(ptrdiff_t)(hq * n * d), (ptrdiff_t)(n * d), (ptrdiff_t)d};
        a[i].k_layout = (spattn_layout){(ptrdiff_t)(hk * n * d), (ptrdiff_t)(n * d), (ptrdiff_t)d};
        a[i].v_layout = a[i].k_layout;
        a[i].o_layout = a[i].q_layout;
        make_mask(&l[i], pattern, n);
        const spattn_options op = {isa_by_name(&l[i], isa_s[i]), threads};
        const spattn_mask *ms[1] = {l[i].mask};
        check(&l[i], l[i].plan_create(&shape, ms, 1, &op, &l[i].plan), "plan");
    }

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

    printf("problem: %s, len %zu, dim %zu, heads %zu/%zu, %d thread(s), %d pairs\n", pattern, n, d,
           hq, hk, threads, pairs);
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
        l[i].mask_free(l[i].mask);
        /* No dlclose: unloading would unload the OpenMP runtime the libraries brought, whose
           start-up allocations valgrind then reports as lost. */
    }
    free(x);
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
