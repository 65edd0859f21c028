/* The C side of `python -m spattn.bench --overhead`: the time of one spattn_plan_execute and
 * one spattn_forward call on the same small problem (batch 1, one head, len 128, dim 64, causal,
 * one thread, float32): the fastest and the median of 15 rounds of 2000 calls. Arguments: len and
 * heads.
 *
 *   cc -O2 -Iinclude python/bench/call_overhead.c -Lbuild/src -lspattn -o /tmp/call_overhead
 *   LD_LIBRARY_PATH=build/src /tmp/call_overhead [len [heads]] */
#define _POSIX_C_SOURCE 200809L /* clock_gettime */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "spattn.h"

#define DIM 64
#define CALLS 2000
#define ROUNDS 15

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The time of one call in microseconds, in the fastest round (t[0]) and the median one. */
static void time_us(double t[2], const spattn_plan *plan, const spattn_args *args,
                    const spattn_mask *m, const spattn_options *opt)
{
    double r_us[ROUNDS];
    for (int r = 0; r < ROUNDS; r++) {
        double t0 = now();
        for (int i = 0; i < CALLS; i++) {
            spattn_status s =
                plan ? spattn_plan_execute(plan, args) : spattn_forward(args, &m, 1, opt);
            if (s != SPATTN_OK) {
                fprintf(stderr, "%s\n", spattn_status_string(s));
                exit(1);
            }
        }
        r_us[r] = (now() - t0) / CALLS * 1e6;
    }
    qsort(r_us, ROUNDS, sizeof r_us[0], cmp);
    t[0] = r_us[0];
    t[1] = r_us[ROUNDS / 2];
}

int main(int argc, char **argv)
{
    size_t len = argc > 1 ? (size_t)strtoul(argv[1], NULL, 10) : 128;
    size_t heads = argc > 2 ? (size_t)strtoul(argv[2], NULL, 10) : 1;
    size_t n = heads * len * DIM;
    float *buf = malloc(4 * n * sizeof *buf);
    float *lse = malloc(heads * len * sizeof *lse);
    if (!buf || !lse)
        return 1;
    for (size_t i = 0; i < 3 * n; i++)
        buf[i] = (float)((i * 2654435761u) % 1000) / 1000.0f - 0.5f;
    spattn_shape shape = {1, heads, heads, len, len, DIM, DIM};
    spattn_layout lay = spattn_layout_bhtd(heads, len, DIM);
    spattn_args args = {.shape = shape,
                        .q = buf,
                        .q_layout = lay,
                        .k = buf + n,
                        .k_layout = lay,
                        .v = buf + 2 * n,
                        .v_layout = lay,
                        .o = buf + 3 * n,
                        .o_layout = lay,
                        .lse = lse};
    spattn_options opt = {SPATTN_ISA_AUTO, 1};
    spattn_mask *m = NULL;
    spattn_plan *plan = NULL;
    if (spattn_mask_causal(len, len, &m) ||
        spattn_plan_create(&shape, (const spattn_mask *const *)&m, 1, &opt, &plan))
        return 1;
    double pe[2], fw[2];
    time_us(pe, plan, &args, m, &opt);
    time_us(fw, NULL, &args, m, &opt);
    printf("len %zu, %zu head(s), dim %d, causal, 1 thread; us per call, fastest / median "
           "round\n",
           len, heads, DIM);
    printf("%-36s %9.2f %9.2f\n", "spattn_plan_execute", pe[0], pe[1]);
    printf("%-36s %9.2f %9.2f\n", "spattn_forward", fw[0], fw[1]);
    spattn_plan_free(plan);
    spattn_mask_free(m);
    free(buf);
    free(lse);
    return 0;
}
