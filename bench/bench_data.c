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
    /* 16-bit copies of q, k, v for the current case's types (NULL: none made yet) */
    spattn_dtype tq, tkv;
    uint16_t *hq, *hk, *hv;
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

static void drop_typed(void)
{
    free(cache.hq);
    free(cache.hk);
    free(cache.hv);
    cache.hq = cache.hk = cache.hv = NULL;
    cache.tq = cache.tkv = SPATTN_DTYPE_F32;
}

static uint16_t *narrowed(const float *x, size_t n, spattn_dtype t)
{
    uint16_t *p = NULL;
    if (posix_memalign((void **)&p, 64, (n ? n : 1) * sizeof *p) != 0)
        return NULL;
    if (t == SPATTN_DTYPE_BF16)
        spattn_f32_to_bf16(x, p, n);
    else
        spattn_f32_to_f16(x, p, n);
    return p;
}

static void drop(void)
{
    drop_typed();
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
    spattn_dtype tq, tkv, to;
    bench_dtypes(c->dtype, &tq, &tkv, &to);
    const size_t nq = s.batch * s.heads_q * s.len_q * s.dim_qk;
    const size_t nk = s.batch * s.heads_kv * s.len_k * s.dim_qk;
    if ((tq != SPATTN_DTYPE_F32 && (cache.hq == NULL || cache.tq != tq)) ||
        (tkv != SPATTN_DTYPE_F32 && (cache.hk == NULL || cache.tkv != tkv))) {
        drop_typed();
        if (tq != SPATTN_DTYPE_F32 && !(cache.hq = narrowed(cache.q, nq, tq)))
            return 0;
        if (tkv != SPATTN_DTYPE_F32 &&
            (!(cache.hk = narrowed(cache.k, nk, tkv)) || !(cache.hv = narrowed(cache.v, nk, tkv))))
            return 0;
        cache.tq = tq;
        cache.tkv = tkv;
    }
    memset(args, 0, sizeof *args);
    args->shape = s;
    args->q = tq == SPATTN_DTYPE_F32 ? (const void *)cache.q : cache.hq;
    args->k = tkv == SPATTN_DTYPE_F32 ? (const void *)cache.k : cache.hk;
    args->v = tkv == SPATTN_DTYPE_F32 ? (const void *)cache.v : cache.hv;
    args->o = cache.o; /* floats: room for O of any type */
    args->q_dtype = tq;
    args->kv_dtype = tkv;
    args->o_dtype = to;
    args->q_layout = args->o_layout = spattn_layout_bhtd(s.heads_q, s.len_q, s.dim_qk);
    args->k_layout = args->v_layout = spattn_layout_bhtd(s.heads_kv, s.len_k, s.dim_qk);
    return 1;
}
