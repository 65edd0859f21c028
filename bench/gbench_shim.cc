// The only C++ in spattn: it adapts Google Benchmark's C++ API to bench_shim.h so that the
// benchmarks themselves stay in C.
#include "bench_shim.h"

#include <benchmark/benchmark.h>

#include <string>

struct spb_state {
    benchmark::State *s;
};

extern "C" void spb_register(const char *name, spb_fn fn, void *user, unsigned flags)
{
    benchmark::internal::Benchmark *b =
        benchmark::RegisterBenchmark(name, [fn, user](benchmark::State &gs) {
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
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
