// The only C++ in spattn: it adapts Google Benchmark's C++ API to bench_shim.h so that the
// benchmarks themselves stay in C.
#include "bench_shim.h"

#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstdlib>
#include <string>

struct spb_state {
    benchmark::State *s;
};

// Progress for tools/bench-report.sh. Google Benchmark prints a benchmark only once all its
// repetitions are done, and with random interleaving most finish near the end of the run, so
// its output cannot tell how far a run has come. With SPATTN_BENCH_PROGRESS=FILE, one line
// "<k> <name>" is appended to FILE as the k-th repetition of the run starts. Google Benchmark
// (1.7) calls a benchmark with growing iteration counts until its first repetition is long
// enough, then once per later repetition with the count found; so a call starts a repetition
// unless it follows a call of the same benchmark with fewer iterations. Were a later version to
// do otherwise, only this count would be off.
namespace
{
struct progress {
    std::FILE *f = nullptr;
    long started = 0;
    int last_id = -1;
    int64_t last_iters = 0;

    void call(int id, const std::string &name, int64_t iters)
    {
        if (f == nullptr)
            return;
        bool same_repetition = id == last_id && iters > last_iters;
        last_id = id;
        last_iters = iters;
        if (same_repetition)
            return;
        std::fprintf(f, "%ld %s\n", ++started, name.c_str());
        std::fflush(f);
    }
};
progress run_progress;
int n_registered;
} // namespace

extern "C" void spb_register(const char *name, spb_fn fn, void *user, unsigned flags)
{
    int id = n_registered++;
    std::string copy(name);
    benchmark::internal::Benchmark *b =
        benchmark::RegisterBenchmark(name, [fn, user, id, copy](benchmark::State &gs) {
            run_progress.call(id, copy, static_cast<int64_t>(gs.max_iterations));
            spb_state st{&gs};
            fn(&st, user);
        });
    if (flags & SPB_MANUAL_TIME)
        b->UseManualTime();
    else if (flags & SPB_REAL_TIME)
        b->UseRealTime();
    if (flags & SPB_UNIT_MS)
        b->Unit(benchmark::kMillisecond);
    else if (flags & SPB_UNIT_US)
        b->Unit(benchmark::kMicrosecond);
}

extern "C" int spb_keep_running(spb_state *st)
{
    return st->s->KeepRunning() ? 1 : 0;
}

extern "C" void spb_pause(spb_state *st)
{
    st->s->PauseTiming();
}

extern "C" void spb_resume(spb_state *st)
{
    st->s->ResumeTiming();
}

extern "C" void spb_iteration_time(spb_state *st, double seconds)
{
    st->s->SetIterationTime(seconds);
}

extern "C" int64_t spb_iterations(const spb_state *st)
{
    return static_cast<int64_t>(st->s->iterations());
}

extern "C" void spb_counter(spb_state *st, const char *name, double value, unsigned flags)
{
    benchmark::Counter::Flags f =
        (flags & SPB_RATE) ? benchmark::Counter::kIsRate : benchmark::Counter::kDefaults;
    st->s->counters[name] = benchmark::Counter(value, f);
}

extern "C" void spb_skip(spb_state *st, const char *message)
{
    st->s->SkipWithError(message);
}

extern "C" void spb_context(const char *key, const char *value)
{
    benchmark::AddCustomContext(key, value);
}

extern "C" int spb_run(int *argc, char **argv)
{
    benchmark::Initialize(argc, argv);
    if (benchmark::ReportUnrecognizedArguments(*argc, argv))
        return 1;
    const char *path = std::getenv("SPATTN_BENCH_PROGRESS");
    if (path != nullptr && *path != '\0') {
        run_progress.f = std::fopen(path, "a");
        if (run_progress.f == nullptr)
            std::perror(path);
    }
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    if (run_progress.f != nullptr)
        std::fclose(run_progress.f);
    return 0;
}
