/* Names of grid parameters, and the table of finished runs' times. */
#include "bench_case.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *bench_pattern_name(bench_pattern p)
{
    static const char *const names[BP_COUNT] = {
        "dense",   "blocks64",  "elements",  "causal",    "window", "strided",    "bigbird",
        "fewkeys", "streaming", "documents", "gpt2heads", "fixed",  "longformer", "dilated"};
    return (unsigned)p < BP_COUNT ? names[p] : "unknown";
}

const char *bench_mod_name(bench_mod m)
{
    static const char *const names[BMOD_COUNT] = {"", "sinks", "alibi"};
    return (unsigned)m < BMOD_COUNT ? names[m] : "unknown";
}

const char *bench_dtype_name(bench_dtype d)
{
    static const char *const names[BD_COUNT] = {"f32", "bf16", "f16", "f32-f16kv"};
    return (unsigned)d < BD_COUNT ? names[d] : "unknown";
}

void bench_dtypes(bench_dtype d, spattn_dtype *q, spattn_dtype *kv, spattn_dtype *o)
{
    *q = *kv = *o = SPATTN_DTYPE_F32;
    if (d == BD_BF16)
        *q = *kv = *o = SPATTN_DTYPE_BF16;
    else if (d == BD_F16)
        *q = *kv = *o = SPATTN_DTYPE_F16;
    else if (d == BD_F32_F16KV)
        *kv = SPATTN_DTYPE_F16;
}

void bench_level_str(int level, char *buf, size_t n)
{
    if (level % 10 == 0)
        snprintf(buf, n, "%d", level / 10);
    else
        snprintf(buf, n, "%d.%d", level / 10, level % 10);
}

/* A small list is enough: a run has a few hundred entries. */
typedef struct time_entry {
    char key[192];
    double seconds;
} time_entry;
static time_entry *times;
static size_t ntimes, captimes;

void bench_times_put(const char *key, double seconds)
{
    for (size_t i = 0; i < ntimes; i++)
        if (strcmp(times[i].key, key) == 0) {
            times[i].seconds = seconds;
            return;
        }
    if (ntimes == captimes) {
        size_t cap = captimes ? 2 * captimes : 64;
        time_entry *t = realloc(times, cap * sizeof *t);
        if (!t)
            return; /* the speedup counters of later runs are then just absent */
        times = t;
        captimes = cap;
    }
    strncpy(times[ntimes].key, key, sizeof times[ntimes].key - 1);
    times[ntimes].key[sizeof times[ntimes].key - 1] = 0;
    times[ntimes].seconds = seconds;
    ntimes++;
}

double bench_times_get(const char *key)
{
    for (size_t i = 0; i < ntimes; i++)
        if (strcmp(times[i].key, key) == 0)
            return times[i].seconds;
    return 0;
}

void bench_time_key(char *buf, size_t n, const char *impl, const bench_case *c, int dense)
{
    snprintf(buf, n, "%s|%s/%d/%zu/%zu/%zu/%zu/%zu/%zu/%d/%s/%s", impl,
             bench_pattern_name(dense ? BP_DENSE : c->pattern), dense ? 0 : c->level, c->len_q,
             c->len_k, c->dim, c->heads_q, c->heads_kv, c->batch, c->threads,
             bench_mod_name(c->mod), bench_dtype_name(c->dtype));
}
