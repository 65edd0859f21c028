/* Start-up measurements every counter is judged against: FMA peak per ISA, read bandwidth. */
#ifndef SPATTN_BENCH_PROBE_H
#define SPATTN_BENCH_PROBE_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/kernel.h"

double bench_now(void); /* monotonic seconds */

/* Iterations that make one table->fma_probe call last at least `seconds` (found by doubling,
   which also brings the clock up); *gflops (unless NULL) gets the rate of that last call. */
size_t bench_probe_fma_iters(const spattn_kernel_table *table, double seconds, double *gflops);

/* Best-of-several GFLOP/s of table->fma_probe on the calling thread; 0 without a probe. */
double bench_probe_fma(const spattn_kernel_table *table);

/* Sums n words with `threads` threads (so that the reads cannot be optimised away). */
uint64_t bench_read_words(const uint64_t *p, size_t n, int threads);

/* Sums n rows of 256 bytes (32 words), row rows[i] of p for i < n, on the calling thread: the
   gather path's reads of K and V rows in the order its keys give. */
uint64_t bench_read_rows(const uint64_t *p, const uint32_t *rows, size_t n);

/* Best-of-several read bandwidth in GB/s over a buffer of `bytes`, with `threads` threads. */
double bench_probe_read(size_t bytes, int threads);

/* Records what the probes found, for bench_peak_gflops / bench_dram_gbps. */
void bench_probe_set_peak(spattn_isa isa, double gflops);
void bench_probe_set_dram(int threads, double gbps);

#endif
