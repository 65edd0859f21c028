/* spattn itself: plan once outside the timed loop, time plan_execute. */
#include <math.h>
#include <stdio.h>

#include "bench_case.h"
#include "bench_masks.h"
#include "bench_probe.h"
#include "plan/test_hooks.h"

static void skip_status(spb_state *st, const char *what, spattn_status s)
{
    char msg[160];
    snprintf(msg, sizeof msg, "%s: %s", what, spattn_status_string(s));
    spb_skip(st, msg);
}

/* K and V bytes the allowed keys need: per KV head the keys its query heads use. For a single
   query row (decode) that is the mask's nnz; the few-keys masks are shared within a group. */
double bench_kv_bytes(const bench_case *c, spattn_mask *const *masks, size_t n)
{
    double keys = 0;
    size_t group = c->heads_q / c->heads_kv;
    for (size_t h = 0; h < c->heads_kv; h++) {
        if (n == 0)
            keys += (double)c->len_k;
        else
            keys += (double)spattn_mask_nnz(masks[n == 1 ? 0 : h * group]);
    }
    spattn_dtype tq, tkv, to;
    bench_dtypes(c->dtype, &tq, &tkv, &to);
    return keys * (double)c->batch * 2.0 * (double)c->dim *
           (tkv == SPATTN_DTYPE_F32 ? sizeof(float) : sizeof(uint16_t));
}

void bench_report_attn(const bench_case *c, spb_state *st, const char *impl, double peak, double t,
                       uint64_t pairs, int threads, double kvb)
{
    double gflops = 2.0 * (double)pairs * 2.0 * (double)c->dim / t / 1e9;
    double all = (double)c->len_q * (double)c->len_k * (double)(c->batch * c->heads_q);
    spb_counter(st, "GFLOP/s", gflops, SPB_PLAIN);
    spb_counter(st, "sparsity_actual", 100.0 * (1.0 - (double)pairs / all), SPB_PLAIN);
    if (peak > 0)
        spb_counter(st, "pct_peak", 100.0 * gflops / (peak * threads), SPB_PLAIN);
    if (c->kind == BK_PATH)
        return;

    char key[256];
    bench_time_key(key, sizeof key, impl, c, 0);
    bench_times_put(key, t);
    if (c->kind == BK_ATTN) {
        bench_time_key(key, sizeof key, impl, c, 1);
        double dense = bench_times_get(key);
        if (dense > 0)
            spb_counter(st, "speedup_dense", dense / t, SPB_PLAIN);
        bench_time_key(key, sizeof key, "openblas", c, 0);
        double blas = bench_times_get(key);
        if (blas <= 0) { /* OpenBLAS computes every pair whatever the mask: its dense run */
            bench_time_key(key, sizeof key, "openblas", c, 1);
            blas = bench_times_get(key);
        }
        if (blas > 0)
            spb_counter(st, "vs_openblas", blas / t, SPB_PLAIN);
    }
    if (c->len_q == 1) {
        spb_counter(st, "bytes/s", kvb / t, SPB_PLAIN);
        double bw = bench_dram_gbps(threads);
        if (bw > 0)
            spb_counter(st, "pct_dram", 100.0 * kvb / t / (bw * 1e9), SPB_PLAIN);
    }
}

/* Points args at c's modifier values (in vals, heads_q floats). Returns 0 when it cannot. */
static int set_mods(const bench_case *c, spattn_args *args, float *vals, size_t cap)
{
    if (c->mod == BMOD_NONE)
        return 1;
    if (c->heads_q > cap)
        return 0;
    if (c->mod == BMOD_ALIBI) {
        if (spattn_alibi_slopes(c->heads_q, vals) != SPATTN_OK)
            return 0;
        args->alibi_slopes = vals;
        return 1;
    }
    /* logits of the size of a row's largest scores (inputs in [-1, 1), dim 64): the sink
       takes a real share of each row, as a learned one does */
    for (size_t h = 0; h < c->heads_q; h++)
        vals[h] = 0.5f + 0.25f * (float)h;
    args->sinks = vals;
    return 1;
}

void bench_run_attn(const bench_case *c, spb_state *st)
{
    if (!spattn_isa_available(c->isa)) {
        const char *why = spattn_isa_unavailable_reason(c->isa);
        spb_skip(st, why ? why : "ISA not available");
        return;
    }
    spattn_mask **masks;
    size_t n;
    spattn_status s = bench_masks_build(c, &masks, &n);
    if (s != SPATTN_OK) {
        skip_status(st, "mask", s);
        return;
    }
    spattn_args args;
    if (!bench_data_args(c, &args)) {
        bench_masks_free(masks, n);
        spb_skip(st, "out of memory for Q, K, V, O");
        return;
    }
    float mod_vals[64];
    if (!set_mods(c, &args, mod_vals, sizeof mod_vals / sizeof mod_vals[0])) {
        bench_masks_free(masks, n);
        spb_skip(st, "score modifiers: too many heads");
        return;
    }
    spattn_options opt = {c->isa, c->threads};
    spattn_plan *plan = NULL;
    const spattn_mask *const *cm = (const spattn_mask *const *)masks;
    if (c->kind == BK_PATH)
        s = spattn__plan_create_path(&args.shape, cm, n, &opt, (spattn_path)c->path, &plan);
    else
        s = spattn_plan_create(&args.shape, cm, n, &opt, &plan);
    if (s != SPATTN_OK) {
        bench_masks_free(masks, n);
        skip_status(st, "plan", s);
        return;
    }
    /* one untimed call: threads started, output pages touched */
    s = spattn_plan_execute(plan, &args);
    if (s != SPATTN_OK) {
        spattn_plan_free(plan);
        bench_masks_free(masks, n);
        skip_status(st, "execute", s);
        return;
    }
    double total = 0;
    while (spb_keep_running(st)) {
        double t0 = bench_now();
        spattn_plan_execute(plan, &args);
        double t = bench_now() - t0;
        total += t;
    }
    int64_t iters = spb_iterations(st);
    if (iters > 0)
        bench_report_attn(c, st, spattn_isa_name(c->isa), bench_peak_gflops(c->isa),
                          total / (double)iters, bench_masks_pairs(c, masks, n),
                          spattn_plan_threads(plan), bench_kv_bytes(c, masks, n));
    /* whether the plan split the keys of decode (split-KV), and in how many segments */
    if (iters > 0 && c->len_q == 1)
        spb_counter(st, "kv_segments", (double)spattn_plan_kv_segments(plan, 0, 0, NULL, 0),
                    SPB_PLAIN);
    spattn_plan_free(plan);
    bench_masks_free(masks, n);
}
