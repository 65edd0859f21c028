/* spattn_merge of c->param parts of c->len_q rows by c->dim, far larger than the caches: the
   merge is on the critical path of ring attention, and its speed is that of reading the parts
   (bytes/s counts the parts' o and lse read and the output written; pct_dram compares that
   with the one-thread read bandwidth, the merge running on the calling thread). */
#define _POSIX_C_SOURCE 200809L /* posix_memalign */
#include <stdlib.h>

#include "bench_case.h"
#include "bench_probe.h"

static float *buffer(size_t n)
{
    float *p = NULL;
    return posix_memalign((void **)&p, 4096, n * sizeof(float)) == 0 ? p : NULL;
}

void bench_run_merge(const bench_case *c, spb_state *st)
{
    const size_t parts = c->param, rows = c->len_q, dim = c->dim;
    float *o[64] = {NULL}, *l[64] = {NULL};
    float *out = buffer(rows * dim), *out_l = buffer(rows);
    int ok = parts >= 1 && parts <= 64 && out != NULL && out_l != NULL;
    for (size_t s = 0; ok && s < parts; s++) {
        o[s] = buffer(rows * dim);
        l[s] = buffer(rows);
        ok = o[s] != NULL && l[s] != NULL;
        for (size_t i = 0; ok && i < rows; i++) {
            l[s][i] = (float)((i * 7 + s * 13) % 17) * 0.25f;
            for (size_t d = 0; d < dim; d++)
                o[s][i * dim + d] = (float)((i + d + s) % 11) * 0.1f - 0.5f;
        }
    }
    const float *const *op = (const float *const *)o, *const *lp = (const float *const *)l;
    if (!ok || spattn_merge(parts, rows, dim, op, lp, out, out_l) != SPATTN_OK) {
        spb_skip(st, ok ? "spattn_merge failed" : "out of memory");
    } else {
        double total = 0;
        while (spb_keep_running(st)) {
            double t0 = bench_now();
            spattn_merge(parts, rows, dim, op, lp, out, out_l);
            total += bench_now() - t0;
        }
        int64_t iters = spb_iterations(st);
        if (iters > 0) {
            double bytes = (double)(parts + 1) * (double)rows * (double)(dim + 1) * sizeof(float);
            double rate = bytes * (double)iters / total;
            spb_counter(st, "bytes/s", rate, SPB_PLAIN);
            double bw = bench_dram_gbps(1);
            if (bw > 0)
                spb_counter(st, "pct_dram", 100.0 * rate / (bw * 1e9), SPB_PLAIN);
        }
    }
    for (size_t s = 0; s < parts && s < 64; s++) {
        free(o[s]);
        free(l[s]);
    }
    free(out);
    free(out_l);
}
