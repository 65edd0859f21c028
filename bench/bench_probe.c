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
   delivers, which made the L2 figure a floor and not a ceiling. */
#define READ_LANES 32 /* words per step: four accumulators of eight */

static uint64_t read_words_part(const uint64_t *p, size_t n)
{
    uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        s0 += p[i];
        s1 += p[i + 1];
        s2 += p[i + 2];
        s3 += p[i + 3];
    }
    for (; i < n; i++)
        s0 += p[i];
    return s0 + s1 + s2 + s3;
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

/* Wide loads: one thread reads DRAM measurably faster with them, and the kernels these
   figures are compared with use them. */
__attribute__((target("avx2"))) static uint64_t read_words_part_avx2(const uint64_t *p, size_t n)
{
    __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        a0 = _mm256_add_epi64(a0, _mm256_loadu_si256((const __m256i *)(p + i)));
        a1 = _mm256_add_epi64(a1, _mm256_loadu_si256((const __m256i *)(p + i + 4)));
        a2 = _mm256_add_epi64(a2, _mm256_loadu_si256((const __m256i *)(p + i + 8)));
        a3 = _mm256_add_epi64(a3, _mm256_loadu_si256((const __m256i *)(p + i + 12)));
    }
    uint64_t w[4];
    _mm256_storeu_si256((__m256i *)w,
                        _mm256_add_epi64(_mm256_add_epi64(a0, a1), _mm256_add_epi64(a2, a3)));
    return w[0] + w[1] + w[2] + w[3] + read_words_part(p + i, n - i);
}

__attribute__((target("avx512f"))) static uint64_t read_words_part_avx512(const uint64_t *p,
                                                                          size_t n)
{
    __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0;
    size_t i = 0;
    for (; i + READ_LANES <= n; i += READ_LANES) {
        a0 = _mm512_add_epi64(a0, _mm512_loadu_si512(p + i));
        a1 = _mm512_add_epi64(a1, _mm512_loadu_si512(p + i + 8));
        a2 = _mm512_add_epi64(a2, _mm512_loadu_si512(p + i + 16));
        a3 = _mm512_add_epi64(a3, _mm512_loadu_si512(p + i + 24));
    }
    return (uint64_t)_mm512_reduce_add_epi64(
               _mm512_add_epi64(_mm512_add_epi64(a0, a1), _mm512_add_epi64(a2, a3))) +
           read_words_part(p + i, n - i);
}

/* Rows of 256 bytes (one step of the loop above each) in the order rows gives, the same four
   accumulators across rows, so that rows overlap as the gather path's do. */
__attribute__((target("avx512f"))) static uint64_t read_rows_avx512(const uint64_t *p,
                                                                    const uint32_t *rows, size_t n)
{
    __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0;
    for (size_t i = 0; i < n; i++) {
        const uint64_t *r = p + (size_t)rows[i] * READ_LANES;
        a0 = _mm512_add_epi64(a0, _mm512_loadu_si512(r));
        a1 = _mm512_add_epi64(a1, _mm512_loadu_si512(r + 8));
        a2 = _mm512_add_epi64(a2, _mm512_loadu_si512(r + 16));
        a3 = _mm512_add_epi64(a3, _mm512_loadu_si512(r + 24));
    }
    return (uint64_t)_mm512_reduce_add_epi64(
        _mm512_add_epi64(_mm512_add_epi64(a0, a1), _mm512_add_epi64(a2, a3)));
}
#endif

static uint64_t read_part(const uint64_t *p, size_t n)
{
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    if (__builtin_cpu_supports("avx512f"))
        return read_words_part_avx512(p, n);
    if (__builtin_cpu_supports("avx2"))
        return read_words_part_avx2(p, n);
#endif
    return read_words_part(p, n);
}

uint64_t bench_read_rows(const uint64_t *p, const uint32_t *rows, size_t n)
{
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    if (__builtin_cpu_supports("avx512f"))
        return read_rows_avx512(p, rows, n);
#endif
    uint64_t sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += read_part(p + (size_t)rows[i] * READ_LANES, READ_LANES);
    return sum;
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
