/* What the analysis costs: plan_create time, and the memory masks and plans hold. */
#define _GNU_SOURCE /* mallinfo2 */
#include <malloc.h>
#include <stdio.h>

#include "bench_case.h"
#include "bench_masks.h"
#include "bench_probe.h"
#include "mask/mask_impl.h"
#include "plan/test_hooks.h"

static double heap_in_use(void)
{
    struct mallinfo2 mi = mallinfo2();
    return (double)mi.uordblks + (double)mi.hblkhd;
}

/* The canonical mask's own arrays (mask_impl.h), excluding malloc overhead. */
static double mask_bytes(const spattn_mask *m)
{
    return (double)sizeof *m + (double)(m->nqt + 1) * sizeof(size_t) +
           (double)m->ntiles * sizeof(spattn_ktile) +
           (double)m->npartial * SPATTN_TQ * sizeof(uint64_t) + (double)m->nqt * sizeof(uint64_t);
}

void bench_run_plan(const bench_case *c, spb_state *st)
{
    if (!spattn_isa_available(c->isa)) {
        const char *why = spattn_isa_unavailable_reason(c->isa);
        spb_skip(st, why ? why : "ISA not available");
        return;
    }
    double t0 = bench_now();
    spattn_mask **masks;
    size_t n;
    spattn_status s = bench_masks_build(c, &masks, &n);
    double t_mask = bench_now() - t0;
    if (s != SPATTN_OK) {
        char msg[128];
        snprintf(msg, sizeof msg, "mask: %s", spattn_status_string(s));
        spb_skip(st, msg);
        return;
    }
    spattn_shape shape = {c->batch, c->heads_q, c->heads_kv, c->len_q, c->len_k, c->dim, c->dim};
    spattn_options opt = {c->isa, c->threads};
    const spattn_mask *const *cm = (const spattn_mask *const *)masks;
    spattn_plan *plan = NULL;
    double before = heap_in_use();
    s = spattn_plan_create(&shape, cm, n, &opt, &plan);
    double plan_bytes = heap_in_use() - before;
    if (s != SPATTN_OK) {
        bench_masks_free(masks, n);
        char msg[128];
        snprintf(msg, sizeof msg, "plan: %s", spattn_status_string(s));
        spb_skip(st, msg);
        return;
    }
    size_t gather = spattn__plan_gather_tiles(plan), listed = 0;
    size_t mixed = spattn__plan_mixed_tiles(plan, &listed);
    spattn_plan_free(plan);

    double t_create = 0;
    while (spb_keep_running(st)) {
        double t1 = bench_now();
        spattn_plan_create(&shape, cm, n, &opt, &plan);
        t_create += bench_now() - t1;
        spb_pause(st);
        spattn_plan_free(plan);
        spb_resume(st);
    }

    double mb = 0, tiles = 0, partial = 0;
    for (size_t i = 0; i < n; i++) {
        mb += mask_bytes(masks[i]);
        tiles += (double)masks[i]->ntiles;
        partial += (double)masks[i]->npartial;
    }
    double pairs = (double)bench_masks_pairs(c, masks, n);
    int64_t iters = spb_iterations(st);
    if (iters > 0)
        spb_counter(st, "create_ms", 1e3 * t_create / (double)iters, SPB_PLAIN);
    spb_counter(st, "mask_build_ms", 1e3 * t_mask, SPB_PLAIN);
    spb_counter(st, "mask_bytes", mb, SPB_PLAIN);
    spb_counter(st, "plan_bytes", plan_bytes, SPB_PLAIN);
    spb_counter(st, "mask_bytes_per_pair", pairs > 0 ? mb / pairs : 0, SPB_PLAIN);
    spb_counter(st, "tiles", tiles, SPB_PLAIN);
    spb_counter(st, "partial_tiles", partial, SPB_PLAIN);
    spb_counter(st, "gather_qtiles", (double)gather, SPB_PLAIN);
    spb_counter(st, "mixed_qtiles", (double)mixed, SPB_PLAIN);
    spb_counter(st, "listed_ktiles", (double)listed, SPB_PLAIN);
    bench_masks_free(masks, n);
}
