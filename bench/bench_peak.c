/* The FMA probe as a benchmark of the grid. The start-up probe takes a fraction of a second;
   as an entry its repetitions are interleaved with everyone else's, so the peak is sampled
   across the whole run, as the kernels compared with it are. Each table's probe runs its
   widest multiply-add: for avx512bf16 that is the bf16 pair dot product (vdpbf16ps, 4 flops
   per float lane), so peak/isa:avx512bf16 and that tier's pct_peak are of the bf16 ceiling,
   about twice the float FMA peak of avx512. Where the CPU lacks it the entry is skipped with
   the reason. */
#include "bench_case.h"
#include "bench_probe.h"
#include "kernels/dispatch.h"

#define PEAK_CALL_SECONDS                                                                          \
    0.01 /* one timed call: long enough for the clock, short enough to                             \
            take many samples in a repetition */

void bench_run_peak(const bench_case *c, spb_state *st)
{
    const spattn_kernel_table *t = spattn__kernels_for(c->isa);
    if (t == NULL || t->fma_probe == NULL) {
        const char *why = spattn_isa_unavailable_reason(c->isa);
        spb_skip(st, why ? why : "no fma_probe in this kernel table");
        return;
    }
    const size_t iters = bench_probe_fma_iters(t, PEAK_CALL_SECONDS, NULL);
    volatile float sink = 0;
    double flops = 0, total = 0, done = 0;
    while (spb_keep_running(st)) {
        double t0 = bench_now();
        sink += t->fma_probe(iters, &flops);
        total += bench_now() - t0;
        done += flops;
    }
    (void)sink;
    if (total > 0)
        spb_counter(st, "GFLOP/s", done / total / 1e9, SPB_PLAIN);
}
