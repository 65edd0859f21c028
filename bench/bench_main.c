/* spattn-bench: the benchmark grid, run through Google Benchmark.
 *
 *   spattn-bench [--quick | --full] [any --benchmark_* flag]
 *
 * Without --quick or --full it runs the default grid (about ten minutes on two cores). Before
 * the first benchmark it measures what the counters are judged against: the FMA peak of every
 * ISA this machine can run, and its read bandwidth from DRAM; both go into the context.
 * SPATTN_BENCH_PROGRESS=FILE appends a line to FILE as each repetition starts (gbench_shim.cc);
 * tools/bench-report.sh reads it to show how far a run has come. */
#define _POSIX_C_SOURCE 200809L /* getenv */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_case.h"
#include "bench_grid.h"
#include "bench_probe.h"
#include "kernels/kernel.h"

static const spattn_kernel_table *const tables[] = {
#define SPATTN_KERNEL(isa, table, cpu_bits, auto_bits) &table,
#include "kernels/kernels.inc"
#undef SPATTN_KERNEL
};
#define NTABLES (sizeof tables / sizeof tables[0])

/* Google Benchmark warns when its own library was built without optimisation (Debian's is);
 * the context says how spattn was built, so that the two are not confused. */
#ifndef SPATTN_BENCH_BUILD_TYPE
#define SPATTN_BENCH_BUILD_TYPE ""
#endif

#define DRAM_PROBE_BYTES ((size_t)512 << 20) /* far beyond any last-level cache */

static void context_f(const char *key, const char *fmt, double v)
{
    char buf[64];
    snprintf(buf, sizeof buf, fmt, v);
    spb_context(key, buf);
}

static void probe_machine(void)
{
    char key[64];
    for (size_t i = 0; i < NTABLES; i++) {
        const char *name = spattn_isa_name(tables[i]->isa);
        snprintf(key, sizeof key, "peak_gflops_1t_%s", name);
        if (!spattn_isa_available(tables[i]->isa)) {
            const char *why = spattn_isa_unavailable_reason(tables[i]->isa);
            spb_context(key, why ? why : "not available");
            continue;
        }
        double g = bench_probe_fma(tables[i]);
        bench_probe_set_peak(tables[i]->isa, g);
        if (g > 0)
            context_f(key, "%.1f", g);
        else
            spb_context(key, "no fma_probe in this kernel table");
    }
    int all = bench_all_threads();
    double bw1 = bench_probe_read(DRAM_PROBE_BYTES, 1);
    bench_probe_set_dram(1, bw1);
    context_f("dram_read_gbps_1t", "%.1f", bw1);
    if (all > 1) {
        double bwn = bench_probe_read(DRAM_PROBE_BYTES, all);
        bench_probe_set_dram(all, bwn);
        snprintf(key, sizeof key, "dram_read_gbps_%dt", all);
        context_f(key, "%.1f", bwn);
    }
}

int main(int argc, char **argv)
{
    bench_blas_fix_core(argv);
    bench_mode mode = BM_DEFAULT;
    int listing = 0, out = 1;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0) {
            mode = BM_QUICK;
        } else if (strcmp(argv[i], "--full") == 0) {
            mode = BM_FULL;
        } else {
            if (strncmp(argv[i], "--benchmark_list_tests", 22) == 0 &&
                strcmp(argv[i], "--benchmark_list_tests=false") != 0)
                listing = 1;
            argv[out++] = argv[i];
        }
    }
    argv[out] = NULL;
    argc = out;

    spb_context("spattn_version", spattn_version());
    spb_context("spattn_build_type", SPATTN_BENCH_BUILD_TYPE[0] ? SPATTN_BENCH_BUILD_TYPE
                                                                : "none (CMAKE_BUILD_TYPE unset)");
    spb_context("grid", mode == BM_QUICK ? "quick" : mode == BM_FULL ? "full" : "default");
    spb_context("isa_auto", spattn_isa_name(spattn_isa_selected()));
    spb_context("attn_shape", "batch 1, heads 2 (decode: 32 query / 8 KV heads), dim_qk = dim_v");
    context_f("threads_all", "%.0f", bench_all_threads());
    char core[160];
    const char *forced = getenv("SPATTN_BENCH_OPENBLAS_FORCED");
    if (forced)
        snprintf(core, sizeof core, "%s (OPENBLAS_CORETYPE set: it detected %s)", bench_blas_core(),
                 forced);
    else
        snprintf(core, sizeof core, "%s", bench_blas_core());
    spb_context("openblas", core);
    if (!listing)
        probe_machine();
    bench_grid_register(mode);
    return spb_run(&argc, argv);
}
