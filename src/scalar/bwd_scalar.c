/* The backward in plain C, pair by pair over the allowed pairs of the stored tiles: the
   arithmetic of kernels/bwd.h one lane at a time (scores in log2 units against the pack's
   lse log2(e)), so that every tier computes the same thing the same way. */
#include "scalar/bwd_scalar.h"

#include <math.h>
#include <string.h>

#include "kernels/bwd_pack.h"

#define LOG2E 1.4426950408889634f

/* P and dS (not yet times scale) of row r of the pack against key j. */
static void pair(const spattn_head_job *job, const float *pack, size_t i0, size_t r, size_t j,
                 float *p, float *ds)
{
    const size_t dq = job->dim_qk, dv = job->dim_v;
    const float *kj = (const float *)job->k + (ptrdiff_t)j * job->k_ts,
                *vj = (const float *)job->v + (ptrdiff_t)j * job->v_ts;
    float s = 0.0f, dp = 0.0f;
    for (size_t d = 0; d < dq; d++)
        s += pack[d * 16 + r] * kj[d];
    for (size_t d = 0; d < dv; d++)
        dp += pack[16 * dq + d * 16 + r] * vj[d];
    float z, t = 0.0f;
    if (job->softcap != 0.0f) {
        t = tanhf(s * (job->scale / job->softcap));
        z = t * (job->softcap * LOG2E);
    } else {
        z = s * (job->scale * LOG2E);
    }
    if (job->slopes != NULL) {
        const ptrdiff_t i = (ptrdiff_t)(i0 + r);
        const ptrdiff_t dist = job->pos0 + i * job->pos_step - (ptrdiff_t)j;
        z -= job->slopes[i * job->mod_step] * LOG2E * (float)(dist < 0 ? -dist : dist);
    }
    *p = exp2f(z - pack[spattn__bwd_pack_l2(dq, dv) + r]);
    *ds = *p * (dp - pack[spattn__bwd_pack_d(dq, dv) + r]);
    if (job->softcap != 0.0f)
        *ds *= 1.0f - t * t;
}

size_t spattn__bwd_scratch_scalar(size_t dim_qk, size_t dim_v)
{
    (void)dim_v;
    return 16 * dim_qk; /* dQ rows of one query tile */
}

void spattn__bwd_kv_scalar(const spattn_head_job *job, const spattn_mask *m, const float *packs,
                           const spattn_bwd_entries *en, size_t n, size_t kt, float *dk, float *dv,
                           int fresh, float *ds_keep, size_t ds0, float *dq_out, ptrdiff_t dq_ts,
                           float *scratch)
{
    /* Keeps no dS: bwd_q recomputes every pair (bwd_solo_dq is 0: dq is never given). */
    (void)ds_keep;
    (void)ds0;
    (void)dq_out;
    (void)dq_ts;
    (void)scratch;
    const size_t dq = job->dim_qk, dvv = job->dim_v;
    const size_t ldq = spattn__bwd_round16(dq), ldv = spattn__bwd_round16(dvv);
    const size_t pf = spattn__bwd_pack_floats(dq, dvv);
    if (fresh) {
        memset(dk, 0, SPATTN_TK * ldq * sizeof(float));
        memset(dv, 0, SPATTN_TK * ldv * sizeof(float));
    }
    for (size_t e = 0; e < n; e++) {
        const size_t qt = en->qt[e];
        const float *pack = packs + qt * pf;
        const float *qr = pack + spattn__bwd_pack_qr(dq, dvv);
        const float *dor = pack + spattn__bwd_pack_dor(dq, dvv);
        const spattn_ktile *t = &m->tiles[en->tile[e]];
        for (size_t r = 0; r < SPATTN_TQ; r++)
            for (uint64_t b = spattn__tile_row_bits(m, t, qt, r); b != 0; b &= b - 1) {
                const size_t c = (size_t)__builtin_ctzll(b);
                float p, ds;
                pair(job, pack, qt * SPATTN_TQ, r, kt * SPATTN_TK + c, &p, &ds);
                for (size_t d = 0; d < dq; d++)
                    dk[c * ldq + d] += ds * qr[r * ldq + d];
                for (size_t d = 0; d < dvv; d++)
                    dv[c * ldv + d] += p * dor[r * ldv + d];
            }
    }
}

void spattn__bwd_q_scalar(const spattn_head_job *job, const spattn_mask *m, size_t qt,
                          const float *pack, float *dq, ptrdiff_t dq_ts, const float *ds_keep,
                          const spattn_bwd_slots *sl, size_t tile0, float *scratch)
{
    (void)ds_keep;
    (void)sl;
    (void)tile0;
    const size_t dqk = job->dim_qk, rows = spattn__qt_rows(m, qt), i0 = qt * SPATTN_TQ;
    memset(scratch, 0, 16 * dqk * sizeof(float));
    for (size_t t = m->qt_ptr[qt]; t < m->qt_ptr[qt + 1]; t++) {
        const spattn_ktile *tile = &m->tiles[t];
        for (size_t r = 0; r < rows; r++)
            for (uint64_t b = spattn__tile_row_bits(m, tile, qt, r); b != 0; b &= b - 1) {
                const size_t j = tile->kt * SPATTN_TK + (size_t)__builtin_ctzll(b);
                const float *kj = (const float *)job->k + (ptrdiff_t)j * job->k_ts;
                float p, ds;
                pair(job, pack, i0, r, j, &p, &ds);
                for (size_t d = 0; d < dqk; d++)
                    scratch[r * dqk + d] += ds * kj[d];
            }
    }
    for (size_t r = 0; r < rows; r++) {
        float *out = dq + (ptrdiff_t)(i0 + r) * dq_ts;
        for (size_t d = 0; d < dqk; d++)
            out[d] = scratch[r * dqk + d] * job->scale;
    }
}

void spattn__bwd_cols_of_rows_scalar(const float *rows, size_t ld, size_t n_rows, size_t dim,
                                     float *cols)
{
    for (size_t d = 0; d < dim; d++)
        for (size_t r = 0; r < 16; r++)
            cols[d * 16 + r] = r < n_rows ? rows[r * ld + d] : 0.0f;
}
