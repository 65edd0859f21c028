/* The bandwidth a streaming read gets here, next to the decode runs it bounds. */
#define _POSIX_C_SOURCE 200809L /* posix_memalign */
#include <stdlib.h>

#include "bench_case.h"
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
    volatile uint64_t sink = 0;
    double total = 0;
    while (spb_keep_running(st)) {
        double t0 = bench_now();
        sink += bench_read_words(p, n, c->threads);
        double t = bench_now() - t0;
        total += t;
    }
    (void)sink;
    int64_t iters = spb_iterations(st);
    if (iters > 0)
        spb_counter(st, "bytes/s", (double)n * sizeof *p * (double)iters / total, SPB_PLAIN);
    free(p);
}
