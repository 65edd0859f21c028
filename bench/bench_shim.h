/*
 * A C face on Google Benchmark (gbench_shim.cc is the only C++ in the project). Benchmarks
 * register a named C callback; the callback drives the timing loop through an opaque state:
 *
 *     static void run(spb_state *st, void *user) {
 *         ... set up, outside the timed region ...
 *         while (spb_keep_running(st)) { ... timed work ... }
 *         spb_counter(st, "GFLOP/s", gflops, SPB_PLAIN);
 *     }
 *
 * Google Benchmark reports wall and CPU time either way; these flags only change how it picks
 * the iteration count, and add a "/manual_time" or "/real_time" suffix to the name.
 * Every Google Benchmark flag works because spb_run hands argc/argv to it unchanged.
 */
#ifndef SPATTN_BENCH_SHIM_H
#define SPATTN_BENCH_SHIM_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct spb_state spb_state;
typedef void (*spb_fn)(spb_state *st, void *user);

/* Registration flags. */
#define SPB_MANUAL_TIME 1u /* the callback reports each iteration's time (spb_iteration_time) */
#define SPB_REAL_TIME 8u   /* iteration count chosen by wall time, not this thread's CPU time */
#define SPB_UNIT_MS 2u     /* print times in milliseconds (default: nanoseconds) */
#define SPB_UNIT_US 4u     /* print times in microseconds */

/* The name is copied; `user` is passed to every call of fn and must outlive spb_run. */
void spb_register(const char *name, spb_fn fn, void *user, unsigned flags);

/* Nonzero while more iterations are wanted. Call it in a loop until it returns 0. */
int spb_keep_running(spb_state *st);
void spb_pause(spb_state *st);
void spb_resume(spb_state *st);
/* With SPB_MANUAL_TIME: the wall time of the iteration just run, in seconds. */
void spb_iteration_time(spb_state *st, double seconds);
int64_t spb_iterations(const spb_state *st);

/* Counter flags. */
#define SPB_PLAIN 0u /* reported as given */
#define SPB_RATE 1u  /* value divided by the measured time (per second) */
void spb_counter(spb_state *st, const char *name, double value, unsigned flags);

/* Marks the benchmark as skipped with this message (it still appears in every report). After
   this the callback must return without entering the loop. */
void spb_skip(spb_state *st, const char *message);

/* A key/value pair printed in the run's context (console header, JSON "context"). */
void spb_context(const char *key, const char *value);

/* Parses the Google Benchmark flags out of argv, runs the selected benchmarks, and returns 0,
   or 1 when an unrecognised argument is left over. */
int spb_run(int *argc, char **argv);

#ifdef __cplusplus
}
#endif

#endif
