/* The bandwidth a streaming read gets here, next to the decode runs it bounds, and a read of
   rows in random order, next to the gather path it bounds. */
#define _POSIX_C_SOURCE 200809L /* posix_memalign */
#include <stdlib.h>

#include "bench_case.h"
#include "bench_masks.h"
#include "bench_probe.h"

void bench_run_membw(const bench_case *c, spb_state *st)
{
    size_t n = c->bytes / sizeof(uint64_t);
    uint64_t *p = NULL;
    if (posix_memalign((void **)&p, 4096, n * sizeof *p) != 0) {
        spb_skip(st, "out of memory");
        return;
    }
#pragma omp parallel for num_threads(c->threads) schedule(static)
    for (size_t i = 0; i < n; i++)
        p[i] = i;
    /* rows: 16 reads per row of the buffer, uniform and independent (repeats allowed), as
       16 random keys per query row read K */
    const size_t n_rows = n / 32, n_reads = c->rows ? 16 * n_rows : 0;
    uint32_t *order = n_reads ? malloc(n_reads * sizeof *order) : NULL;
    if (n_reads && order == NULL) {
        free(p);
        spb_skip(st, "out of memory");
        return;
    }
    uint64_t seed = 7;
    for (size_t i = 0; i < n_reads; i++)
        order[i] = (uint32_t)(bench_rng(&seed) % n_rows);
    volatile uint64_t sink = 0;
    double total = 0;
    while (spb_keep_running(st)) {
        double t0 = bench_now();
        sink += order ? bench_read_rows(p, order, n_reads) : bench_read_words(p, n, c->threads);
        double t = bench_now() - t0;
        total += t;
    }
    (void)sink;
    int64_t iters = spb_iterations(st);
    const double bytes = order ? (double)n_reads * 256 : (double)n * sizeof *p;
    if (iters > 0)
        spb_counter(st, "bytes/s", bytes * (double)iters / total, SPB_PLAIN);
    free(order);
    free(p);
}
