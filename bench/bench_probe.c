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

static uint64_t read_words(const uint64_t *p, size_t n, int threads)
{
    uint64_t sum = 0;
#pragma omp parallel for num_threads(threads) reduction(+ : sum) schedule(static)
    for (size_t i = 0; i < n; i++)
        sum += p[i];
    return sum;
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
/* The same loop in 256-bit vectors: one thread reads DRAM measurably faster with wide loads,
   and the decode kernels it is compared with use them. */
__attribute__((target("avx2"))) static uint64_t read_words_avx2(const uint64_t *p, size_t n,
                                                                int threads)
{
    uint64_t sum = 0;
#pragma omp parallel for num_threads(threads) reduction(+ : sum) schedule(static)
    for (size_t i = 0; i < n; i++)
        sum += p[i];
    return sum;
}
#endif

uint64_t bench_read_words(const uint64_t *p, size_t n, int threads)
{
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    if (__builtin_cpu_supports("avx2"))
        return read_words_avx2(p, n, threads);
#endif
    return read_words(p, n, threads);
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
