/* Input tensors, kept between cases: filling 256 MiB of KV cache for every decode point
   would cost more than running it. */
#define _POSIX_C_SOURCE 200809L /* posix_memalign */
#include <stdlib.h>
#include <string.h>

#include "bench_case.h"
#include "bench_masks.h"

static struct {
    spattn_shape shape;
    float *q, *k, *v, *o;
} cache;

static float *new_filled(size_t n, uint64_t seed)
{
    float *p = NULL;
    if (posix_memalign((void **)&p, 64, (n ? n : 1) * sizeof *p) != 0)
        return NULL;
    for (size_t i = 0; i < n; i++)
        p[i] = (float)((double)(bench_rng(&seed) >> 11) * 0x1p-52 - 1.0);
    return p;
}

static void drop(void)
{
    free(cache.q);
    free(cache.k);
    free(cache.v);
    free(cache.o);
    memset(&cache, 0, sizeof cache);
}

int bench_data_args(const bench_case *c, spattn_args *args)
{
    spattn_shape s = {c->batch, c->heads_q, c->heads_kv, c->len_q, c->len_k, c->dim, c->dim};
    if (!cache.q || memcmp(&s, &cache.shape, sizeof s) != 0) {
        drop();
        size_t nq = s.batch * s.heads_q * s.len_q * s.dim_qk;
        size_t nk = s.batch * s.heads_kv * s.len_k * s.dim_qk;
        cache.q = new_filled(nq, 1);
        cache.k = new_filled(nk, 2);
        cache.v = new_filled(nk, 3);
        cache.o = new_filled(nq, 4);
        if (!cache.q || !cache.k || !cache.v || !cache.o) {
            drop();
            return 0;
        }
        cache.shape = s;
    }
    memset(args, 0, sizeof *args);
    args->shape = s;
    args->q = cache.q;
    args->k = cache.k;
    args->v = cache.v;
    args->o = cache.o;
    args->q_layout = args->o_layout = spattn_layout_bhtd(s.heads_q, s.len_q, s.dim_qk);
    args->k_layout = args->v_layout = spattn_layout_bhtd(s.heads_kv, s.len_k, s.dim_qk);
    return 1;
}
