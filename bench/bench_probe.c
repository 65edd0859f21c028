/* FMA peak and memory bandwidth, measured by the suite itself so that percentages are of
   this machine, today, and not of a data sheet. */
#define _POSIX_C_SOURCE 200809L
#include "bench_probe.h"

#include <omp.h>
#include <stdlib.h>
#include <time.h>

#include "bench_case.h"

#define PROBE_SECONDS 0.02 /* per timed probe; long enough to reach full clock */
#define PROBE_REPEATS 5

static double peaks[8];
static double dram[2]; /* [0] one thread, [1] all threads */

double bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int bench_all_threads(void)
{
    int n = omp_get_num_procs();
    return n > 0 ? n : 1;
}

size_t bench_probe_fma_iters(const spattn_kernel_table *table, double seconds, double *gflops)
{
    volatile float sink = 0;
    size_t iters = 1024;
    double flops = 0, t = 0;
    /* grow until one call is long enough to time, which also warms the clock up */
    for (;;) {
        double t0 = bench_now();
        sink += table->fma_probe(iters, &flops);
        t = bench_now() - t0;
        if (t >= seconds || iters > ((size_t)1 << 40))
            break;
        iters *= 2;
    }
    (void)sink;
    if (gflops != NULL)
        *gflops = t > 0 ? flops / t / 1e9 : 0;
    return iters;
}

double bench_probe_fma(const spattn_kernel_table *table)
{
    if (!table->fma_probe)
        return 0;
    double best;
    const size_t iters = bench_probe_fma_iters(table, PROBE_SECONDS, &best);
    volatile float sink = 0;
    for (int r = 0; r < PROBE_REPEATS; r++) {
        double flops = 0, t0 = bench_now();
        sink += table->fma_probe(iters, &flops);
        const double g = flops / (bench_now() - t0) / 1e9;
        if (g > best)
            best = g;
    }
    (void)sink;
    return best;
}

/* Each thread sums its own contiguous part of p into four independent accumulators, so that
   the loop is bound by the loads and not by one chain of adds: one accumulator (what a plain
   `sum += p[i]` compiles to) held a cache-resident read here to a third of what the cache
   delivers, which made the L2 figure a floor and not a ceiling. The accumulators are 64-byte
   GNU vectors; on x86 the loop is compiled for AVX-512, AVX2 and the baseline and the loader
   picks the widest the CPU runs (target_clones): one thread reads DRAM measurably faster with
   wide loads, and the kernels these figures are compared with use them. */
#define READ_LANES 32 /* words per step: four accumulators of eight */

typedef uint64_t read_vec __attribute__((vector_size(64), aligned(8), may_alias));

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define READ_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define READ_CLONES
#endif

/* n steps of 256 bytes, step i at p + READ_LANES (rows ? rows[i] : i): a contiguous part, or
   rows in the order rows gives (the gather path's reads), the same four accumulators across
   steps so that they overlap. */
READ_CLONES static uint64_t read_steps(const uint64_t *p, const uint32_t *rows, size_t n)
{
    read_vec a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};
    for (size_t i = 0; i < n; i++) {
        const read_vec *r =
            (const read_vec *)(const void *)(p + (size_t)(rows ? rows[i] : i) * READ_LANES);
        a0 += r[0];
        a1 += r[1];
        a2 += r[2];
        a3 += r[3];
    }
    const read_vec t = (a0 + a1) + (a2 + a3);
    uint64_t sum = 0;
    for (int l = 0; l < 8; l++)
        sum += t[l];
    return sum;
}

/* n words from p: whole steps, then the rest one by one. */
static uint64_t read_part(const uint64_t *p, size_t n)
{
    uint64_t sum = read_steps(p, NULL, n / READ_LANES);
    for (size_t i = n / READ_LANES * READ_LANES; i < n; i++)
        sum += p[i];
    return sum;
}

uint64_t bench_read_rows(const uint64_t *p, const uint32_t *rows, size_t n)
{
    return read_steps(p, rows, n);
}

uint64_t bench_read_words(const uint64_t *p, size_t n, int threads)
{
    /* whole steps per thread, the last takes the remainder */
    const size_t steps = n / READ_LANES;
    uint64_t sum = 0;
#pragma omp parallel num_threads(threads) reduction(+ : sum)
    {
        const size_t t = (size_t)omp_get_thread_num(), nt = (size_t)omp_get_num_threads();
        const size_t b = steps * t / nt * READ_LANES;
        const size_t e = t + 1 == nt ? n : steps * (t + 1) / nt * READ_LANES;
        sum += read_part(p + b, e - b);
    }
    return sum;
}

double bench_probe_read(size_t bytes, int threads)
{
    size_t n = bytes / sizeof(uint64_t);
    uint64_t *p = NULL;
    if (posix_memalign((void **)&p, 4096, n * sizeof *p) != 0)
        return 0;
        /* first touch by the threads that read, so pages sit near them */
#pragma omp parallel for num_threads(threads) schedule(static)
    for (size_t i = 0; i < n; i++)
        p[i] = i;
    volatile uint64_t sink = 0;
    double best = 0;
    for (int r = 0; r < PROBE_REPEATS; r++) {
        double t0 = bench_now();
        sink += bench_read_words(p, n, threads);
        double t = bench_now() - t0;
        if ((double)bytes / t > best)
            best = (double)bytes / t;
    }
    (void)sink;
    free(p);
    return best / 1e9;
}

void bench_probe_set_peak(spattn_isa isa, double gflops)
{
    if ((unsigned)isa < sizeof peaks / sizeof peaks[0])
        peaks[isa] = gflops;
}

void bench_probe_set_dram(int threads, double gbps)
{
    dram[threads > 1] = gbps;
}

double bench_peak_gflops(spattn_isa isa)
{
    return (unsigned)isa < sizeof peaks / sizeof peaks[0] ? peaks[isa] : 0;
}

double bench_dram_gbps(int threads)
{
    return dram[threads > 1];
}
