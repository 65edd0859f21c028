/* spattn_plan_backward: plan and forward once outside the timed loop (o and lse as training
   has them), time the backward. Useful GFLOP/s count 10 x pairs x dim (S, dP, dV, dK and dQ:
   2.5 times the forward's 4 x pairs x dim), whatever the kernels recompute. */
#define _POSIX_C_SOURCE 200809L /* posix_memalign */
#include <stdio.h>
#include <stdlib.h>

#include "bench_case.h"
#include "bench_masks.h"
#include "bench_probe.h"

static float *aligned_floats(size_t n, float fill_step)
{
    float *p = NULL;
    if (posix_memalign((void **)&p, 64, (n ? n : 1) * sizeof *p) != 0)
        return NULL;
    for (size_t i = 0; i < n; i++)
        p[i] = fill_step * (float)((int)(i % 97) - 48);
    return p;
}

static void report(const bench_case *c, spb_state *st, double t, uint64_t pairs, int threads)
{
    const double gflops = 10.0 * (double)pairs * (double)c->dim / t / 1e9;
    const double all = (double)c->len_q * (double)c->len_k * (double)(c->batch * c->heads_q);
    const double peak = bench_peak_gflops(c->isa);
    spb_counter(st, "GFLOP/s", gflops, SPB_PLAIN);
    spb_counter(st, "sparsity_actual", 100.0 * (1.0 - (double)pairs / all), SPB_PLAIN);
    if (peak > 0)
        spb_counter(st, "pct_peak", 100.0 * gflops / (peak * threads), SPB_PLAIN);
    char key[256], impl[32];
    snprintf(impl, sizeof impl, "backward-%s", spattn_isa_name(c->isa));
    bench_time_key(key, sizeof key, impl, c, 0);
    bench_times_put(key, t);
    bench_time_key(key, sizeof key, impl, c, 1);
    const double dense = bench_times_get(key);
    if (dense > 0) {
        spb_counter(st, "speedup_dense", dense / t, SPB_PLAIN);
        /* dense time x density / time: 1 when the cost follows the allowed pairs exactly */
        spb_counter(st, "efficiency", dense * ((double)pairs / all) / t, SPB_PLAIN);
    }
}

void bench_run_bwd(const bench_case *c, spb_state *st)
{
    if (!spattn_isa_available(c->isa)) {
        const char *why = spattn_isa_unavailable_reason(c->isa);
        spb_skip(st, why ? why : "ISA not available");
        return;
    }
    spattn_mask **masks;
    size_t n;
    if (bench_masks_build(c, &masks, &n) != SPATTN_OK) {
        spb_skip(st, "mask");
        return;
    }
    spattn_args args;
    const size_t nq = c->batch * c->heads_q * c->len_q * c->dim;
    const size_t nk = c->batch * c->heads_kv * c->len_k * c->dim;
    float *lse = aligned_floats(c->batch * c->heads_q * c->len_q, 0.0f);
    float *d_o = aligned_floats(nq, 1.0f / 64.0f), *dq = aligned_floats(nq, 0.0f);
    float *dk = aligned_floats(nk, 0.0f), *dv = aligned_floats(nk, 0.0f);
    spattn_plan *plan = NULL;
    const char *fail = NULL;
    if (!lse || !d_o || !dq || !dk || !dv || !bench_data_args(c, &args))
        fail = "out of memory";
    spattn_options opt = {c->isa, c->threads};
    if (!fail && spattn_plan_create(&args.shape, (const spattn_mask *const *)masks, n, &opt,
                                    &plan) != SPATTN_OK)
        fail = "plan";
    spattn_grads g = {0};
    if (!fail) {
        args.lse = lse;
        g.d_o = d_o;
        g.d_o_layout = args.o_layout;
        g.d_q = dq;
        g.d_q_layout = args.q_layout;
        g.d_k = dk;
        g.d_k_layout = args.k_layout;
        g.d_v = dv;
        g.d_v_layout = args.v_layout;
        /* the forward, then one untimed backward: threads started, pages touched */
        if (spattn_plan_execute(plan, &args) != SPATTN_OK ||
            spattn_plan_backward(plan, &args, &g) != SPATTN_OK)
            fail = "forward or backward";
    }
    if (fail) {
        spb_skip(st, fail);
    } else {
        double total = 0;
        while (spb_keep_running(st)) {
            const double t0 = bench_now();
            spattn_plan_backward(plan, &args, &g);
            total += bench_now() - t0;
        }
        const int64_t iters = spb_iterations(st);
        if (iters > 0)
            report(c, st, total / (double)iters, bench_masks_pairs(c, masks, n),
                   spattn_plan_threads(plan));
    }
    spattn_plan_free(plan);
    bench_masks_free(masks, n);
    free(lse);
    free(d_o);
    free(dq);
    free(dk);
    free(dv);
}
