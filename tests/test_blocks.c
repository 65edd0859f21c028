/*
 * Sparse 64x64 block masks on the tile path, where most query tiles have one or two key tiles
 * and many none: the kernels ask for the next non-empty query tile's Q, K and V while a tile
 * computes, and widen 16-bit Q with vector loads before packing it. Neither may change a bit:
 * with bf16 or f16 inputs O must equal, bit for bit, O of the same values given as float32,
 * with 1 and 2 threads, on every ISA (except the AVX512-BF16 pair dot products of bf16 Q.K,
 * whose sums differ by design, see docs/kernels.md).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "test_util.h"

/* len_q x len_k blocks of 64, about one block in six set, every fourth block row empty. */
static spattn_mask *block_mask(tu_rng *r, size_t lq, size_t lk)
{
    const size_t nqb = (lq + 63) / 64, nkb = (lk + 63) / 64;
    uint8_t *layout = calloc(nqb * nkb, 1);
    ck_assert_ptr_nonnull(layout);
    for (size_t i = 0; i < nqb; i++)
        for (size_t j = 0; j < nkb; j++)
            layout[i * nkb + j] = i % 4 != 1 && (tu_range(r, 0, 5) == 0 || j == i % nkb);
    spattn_mask *m = NULL;
    ck_assert_int_eq(spattn_mask_from_blocks(lq, lk, 64, 64, layout, &m), SPATTN_OK);
    free(layout);
    return m;
}

static spattn_status run(const spattn_args *a, const spattn_mask *m, spattn_isa isa, int threads)
{
    const spattn_mask *ml[1] = {m};
    spattn_options opt = {isa, threads};
    return spattn_forward(a, ml, 1, &opt);
}

START_TEST(half_inputs_give_float_bits)
{
    const size_t heads = 2, lq = 455, lk = 300, dq = 80, dv = 48;
    tu_rng r = {0xb10c5ull};
    spattn_mask *m = block_mask(&r, lq, lk);
    const size_t nq = heads * lq * dq, nk = heads * lk * dq, nv = heads * lk * dv,
                 no = heads * lq * dv;
    float *q = malloc(nq * sizeof(float)), *k = malloc(nk * sizeof(float)),
          *v = malloc(nv * sizeof(float)), *o32 = malloc(no * sizeof(float)),
          *o1 = malloc(no * sizeof(float)), *o2 = malloc(no * sizeof(float));
    uint16_t *hq = malloc(nq * 2), *hk = malloc(nk * 2), *hv = malloc(nv * 2);
    ck_assert(q && k && v && o32 && o1 && o2 && hq && hk && hv);
    spattn_isa isas[TU_MAX_ISAS];
    const int n_isas = tu_isas(isas);
    for (int t = 0; t < 2; t++) {
        const spattn_dtype ty = t == 0 ? SPATTN_DTYPE_BF16 : SPATTN_DTYPE_F16;
        /* Values exact in the 16-bit type, so the float32 call sees the same inputs. */
        float *x[3] = {q, k, v};
        uint16_t *h[3] = {hq, hk, hv};
        const size_t n[3] = {nq, nk, nv};
        for (int a = 0; a < 3; a++) {
            for (size_t i = 0; i < n[a]; i++)
                x[a][i] = 2.0f * tu_normal(&r);
            if (ty == SPATTN_DTYPE_BF16) {
                spattn_f32_to_bf16(x[a], h[a], n[a]);
                spattn_bf16_to_f32(h[a], x[a], n[a]);
            } else {
                spattn_f32_to_f16(x[a], h[a], n[a]);
                spattn_f16_to_f32(h[a], x[a], n[a]);
            }
        }
        spattn_args a;
        memset(&a, 0, sizeof a);
        a.shape = (spattn_shape){1, heads, heads, lq, lk, dq, dv};
        a.q_layout = spattn_layout_bhtd(heads, lq, dq);
        a.k_layout = spattn_layout_bhtd(heads, lk, dq);
        a.v_layout = spattn_layout_bhtd(heads, lk, dv);
        a.o_layout = spattn_layout_bhtd(heads, lq, dv);
        for (int i = 0; i < n_isas; i++) {
            a.q = q;
            a.k = k;
            a.v = v;
            a.o = o32;
            a.q_dtype = a.kv_dtype = a.o_dtype = SPATTN_DTYPE_F32;
            ck_assert_int_eq(run(&a, m, isas[i], 1), SPATTN_OK);
            a.q = hq;
            a.k = hk;
            a.v = hv;
            a.q_dtype = a.kv_dtype = ty;
            a.o = o1;
            ck_assert_int_eq(run(&a, m, isas[i], 1), SPATTN_OK);
            a.o = o2;
            ck_assert_int_eq(run(&a, m, isas[i], 2), SPATTN_OK);
            ck_assert_msg(memcmp(o1, o2, no * sizeof(float)) == 0, "%s %s: 1 and 2 threads differ",
                          spattn_isa_name(isas[i]), t == 0 ? "bf16" : "f16");
            /* the 16-bit dot-product tiers round their sums differently, by design */
            if (tu_isa_half_dots(isas[i], ty, ty, a.shape.dim_qk))
                continue;
            ck_assert_msg(memcmp(o1, o32, no * sizeof(float)) == 0,
                          "%s %s: O differs from the float32 call's", spattn_isa_name(isas[i]),
                          t == 0 ? "bf16" : "f16");
        }
    }
    free(q);
    free(k);
    free(v);
    free(o32);
    free(o1);
    free(o2);
    free(hq);
    free(hk);
    free(hv);
    spattn_mask_free(m);
}
END_TEST

/* The tile path's Q pack transposes 16 rows at a time in registers: head dims around its
   16-dim steps and the 64-dim widening blocks, every row count of a last query tile, Q rows far
   apart (a token stride of thousands of floats, NaN between the rows), GQA, against the
   reference on every ISA. Query tile t allows key tile t (the first also the last), so each
   call asks for a different next key tile while it computes. */
START_TEST(q_pack_shapes_match_reference)
{
    static const size_t dims[] = {1, 5, 16, 17, 63, 64, 65, 128, 300};
    const size_t hq = 4, hkv = 2, lk = 256, gap = 1000;
    tu_rng r = {0x9ac4ull};
    spattn_isa isas[TU_MAX_ISAS];
    const int n_isas = tu_isas(isas);
    /* every last-tile row count in full runs; 1, 6, 11 and 16 in shrunk ones (SPATTN_TEST_SCALE
       below 1: memcheck, sanitizers, qemu), whose emulation made this sweep the longest suite */
    const size_t row_step = tu_cases(16) < 16 ? 5 : 1;
    for (size_t di = 0; di < sizeof dims / sizeof dims[0]; di++) {
        const size_t d = dims[di];
        for (size_t rows = 1; rows <= 16; rows += row_step) {
            const size_t lq = 48 + rows;
            uint8_t layout[16] = {0};
            for (size_t i = 0; i < 4; i++)
                layout[i * 4 + i] = 1;
            layout[3] = 1;
            spattn_mask *m = NULL;
            ck_assert_int_eq(spattn_mask_from_blocks(lq, lk, 16, 64, layout, &m), SPATTN_OK);
            spattn_args a;
            memset(&a, 0, sizeof a);
            a.shape = (spattn_shape){1, hq, hkv, lq, lk, d, d};
            a.q_layout.token = (ptrdiff_t)(d + gap);
            a.q_layout.head = (ptrdiff_t)lq * a.q_layout.token;
            a.q_layout.batch = (ptrdiff_t)hq * a.q_layout.head;
            a.k_layout = spattn_layout_bhtd(hkv, lk, d);
            a.v_layout = spattn_layout_bhtd(hkv, lk, d);
            a.o_layout = spattn_layout_bhtd(hq, lq, d);
            const size_t nq = (size_t)a.q_layout.batch, nk = hkv * lk * d, no = hq * lq * d;
            float *q = malloc(nq * sizeof(float)), *k = malloc(nk * sizeof(float)),
                  *v = malloc(nk * sizeof(float)), *o = malloc(no * sizeof(float)),
                  *ro = malloc(no * sizeof(float));
            ck_assert(q && k && v && o && ro);
            for (size_t i = 0; i < nq; i++)
                q[i] = (size_t)((ptrdiff_t)i % a.q_layout.token) < d ? tu_normal(&r) : NAN;
            for (size_t i = 0; i < nk; i++) {
                k[i] = tu_normal(&r);
                v[i] = tu_normal(&r);
            }
            a.q = q;
            a.k = k;
            a.v = v;
            a.q_dtype = a.kv_dtype = a.o_dtype = SPATTN_DTYPE_F32;
            const spattn_mask *ml[1] = {m};
            a.o = ro;
            ck_assert_int_eq(spattn_reference_forward(&a, ml, 1), SPATTN_OK);
            a.o = o;
            for (int i = 0; i < n_isas; i++) {
                ck_assert_int_eq(run(&a, m, isas[i], 1), SPATTN_OK);
                for (size_t e = 0; e < no; e++)
                    TU_CHECK_MSG(tu_close(o[e], ro[e], TU_TOL),
                                 "%s dim %zu rows %zu: o[%zu] = %.9g, reference %.9g",
                                 spattn_isa_name(isas[i]), d, rows, e, (double)o[e], (double)ro[e]);
            }
            free(q);
            free(k);
            free(v);
            free(o);
            free(ro);
            spattn_mask_free(m);
        }
    }
}
END_TEST

Suite *suite_blocks(void);
Suite *suite_blocks(void)
{
    Suite *s = suite_create("blocks");
    TCase *tc = tcase_create("blocks");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, half_inputs_give_float_bits);
    tcase_add_test(tc, q_pack_shapes_match_reference);
    suite_add_tcase(s, tc);
    return s;
}
