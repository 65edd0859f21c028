/* What a C programmer writes without spattn: S = Q K^T with sgemm, a masked softmax loop over
   every row, O = P V with sgemm. Every pair is computed; the mask only zeroes entries. Rows go
   in blocks so that S stays a few MiB at any length. */
#define _POSIX_C_SOURCE 200809L /* setenv, execv */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench_case.h"
#include "bench_masks.h"
#include "bench_probe.h"

#ifdef SPATTN_BENCH_HAVE_OPENBLAS
#include <cblas.h>

#define ROW_BLOCK 256

char *openblas_get_corename(void); /* OpenBLAS extension, not in every cblas.h */

const char *bench_blas_core(void)
{
    return openblas_get_corename();
}

void bench_blas_fix_core(char **argv)
{
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    const char *core = openblas_get_corename();
    if (getenv("OPENBLAS_CORETYPE") || !core ||
        (strcmp(core, "Prescott") != 0 && strcmp(core, "Core2") != 0 &&
         strcmp(core, "Nehalem") != 0 && strcmp(core, "Sandybridge") != 0))
        return;
    const char *want = NULL;
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl"))
        want = "SkylakeX";
    else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        want = "Haswell";
    if (!want)
        return;
    /* the core is chosen when the library loads: only a restart can change it */
    setenv("OPENBLAS_CORETYPE", want, 1);
    setenv("SPATTN_BENCH_OPENBLAS_FORCED", core, 1);
    execv("/proc/self/exe", argv);
#else
    (void)argv;
#endif
}

typedef struct blas_problem {
    const bench_case *c;
    const spattn_args *a;
    uint8_t **allowed; /* NULL = every pair; else one dense mask per entry of masks */
    size_t n_allowed;
    float *s; /* ROW_BLOCK x len_k */
} blas_problem;

static void softmax_row(float *s, const uint8_t *allow, size_t n)
{
    float m = -INFINITY;
    for (size_t j = 0; j < n; j++)
        if (!allow || allow[j])
            m = s[j] > m ? s[j] : m;
    if (m == -INFINITY) {
        memset(s, 0, n * sizeof *s);
        return;
    }
    float sum = 0;
    for (size_t j = 0; j < n; j++) {
        float e = (!allow || allow[j]) ? expf(s[j] - m) : 0.0f;
        s[j] = e;
        sum += e;
    }
    float inv = 1.0f / sum;
    for (size_t j = 0; j < n; j++)
        s[j] *= inv;
}

static void blas_forward(const blas_problem *p)
{
    const bench_case *c = p->c;
    const spattn_args *a = p->a;
    size_t d = c->dim, lk = c->len_k, group = c->heads_q / c->heads_kv;
    float scale = 1.0f / sqrtf((float)d);
    for (size_t b = 0; b < c->batch; b++)
        for (size_t h = 0; h < c->heads_q; h++) {
            const float *q = (const float *)a->q + b * a->q_layout.batch + h * a->q_layout.head;
            const float *k =
                (const float *)a->k + b * a->k_layout.batch + (h / group) * a->k_layout.head;
            const float *v =
                (const float *)a->v + b * a->v_layout.batch + (h / group) * a->v_layout.head;
            float *o = (float *)a->o + b * a->o_layout.batch + h * a->o_layout.head;
            const uint8_t *mask = p->allowed ? p->allowed[p->n_allowed == 1 ? 0 : h] : NULL;
            for (size_t r0 = 0; r0 < c->len_q; r0 += ROW_BLOCK) {
                size_t rb = c->len_q - r0 < ROW_BLOCK ? c->len_q - r0 : ROW_BLOCK;
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)rb, (int)lk, (int)d,
                            scale, q + r0 * d, (int)d, k, (int)d, 0.0f, p->s, (int)lk);
#pragma omp parallel for num_threads(c->threads) schedule(static)
                for (size_t i = 0; i < rb; i++)
                    softmax_row(p->s + i * lk, mask ? mask + (r0 + i) * lk : NULL, lk);
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)rb, (int)d, (int)lk,
                            1.0f, p->s, (int)lk, v, (int)d, 0.0f, o + r0 * d, (int)d);
            }
        }
}

void bench_run_blas(const bench_case *c, spb_state *st)
{
    spattn_mask **masks;
    size_t n;
    if (bench_masks_build(c, &masks, &n) != SPATTN_OK) {
        spb_skip(st, "mask could not be built");
        return;
    }
    spattn_args args;
    blas_problem p = {c, &args, NULL, n, NULL};
    int ok = bench_data_args(c, &args);
    p.s = ok ? malloc(ROW_BLOCK * c->len_k * sizeof *p.s) : NULL;
    if (ok && n > 0) {
        p.allowed = calloc(n, sizeof *p.allowed);
        for (size_t i = 0; p.allowed && i < n; i++) {
            p.allowed[i] = malloc(c->len_q * c->len_k);
            if (!p.allowed[i] ||
                spattn_mask_to_dense(masks[i], p.allowed[i], c->len_k) != SPATTN_OK)
                ok = 0;
        }
        ok = ok && p.allowed;
    }
    if (ok && p.s) {
        openblas_set_num_threads(c->threads);
        blas_forward(&p); /* untimed: OpenBLAS starts its threads, pages get touched */
        double total = 0;
        while (spb_keep_running(st)) {
            double t0 = bench_now();
            blas_forward(&p);
            double t = bench_now() - t0;
            total += t;
        }
        int64_t iters = spb_iterations(st);
        if (iters > 0)
            bench_report_attn(c, st, "openblas", bench_peak_gflops(spattn_isa_selected()),
                              total / (double)iters, bench_masks_pairs(c, masks, n), c->threads,
                              bench_kv_bytes(c, masks, n));
    } else {
        spb_skip(st, "out of memory");
    }
    for (size_t i = 0; p.allowed && i < n; i++)
        free(p.allowed[i]);
    free(p.allowed);
    free(p.s);
    bench_masks_free(masks, n);
}

#else

const char *bench_blas_core(void)
{
    return "not found at build time";
}

void bench_blas_fix_core(char **argv)
{
    (void)argv;
}

void bench_run_blas(const bench_case *c, spb_state *st)
{
    (void)c;
    spb_skip(st, "OpenBLAS not found when spattn-bench was built (Debian: libopenblas-dev)");
}

#endif
