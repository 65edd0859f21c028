/*
 * The vector vocabulary the kernel template (template.h) is written in. Each ISA header
 * (src/x86/vec_avx512.h, src/x86/vec_avx2.h, src/arm/vec_neon.h) defines every name below and
 * is included before this file; a name it lacks stops the build here, naming it.
 *
 * Two shapes:
 *  - col_t, 16 lanes: one per row of a query tile (SPATTN_TQ = 16) on the tile path, or one
 *    per key of a 16-key block on the gather path. One zmm on AVX-512, two ymm on AVX2, four
 *    q registers on NEON.
 *  - vec_t, VL lanes: the widest register, running along dim (Q, K and V rows) or along the
 *    keys of a softmax row.
 *  cmask_t selects lanes of a col_t, vmask_t lanes of a vec_t; q4_t holds 4 floats.
 *
 * Every operation is lane-wise and exact as IEEE single precision unless said otherwise, so
 * a lane's result never depends on the other lanes: this is what keeps a row's output the
 * same whichever rows share its tile or thread.
 *
 * Tuning constants (each ISA header defines them; docs/kernels.md has the measurements):
 *   QK_NB          keys per register block of S^T (column QK)
 *   QK_NB2         the same when two query tiles share each K broadcast; defining it offers
 *                  tile pairs (attn_tiles2)
 *   QK_DS          independent FMA chains along dim per key
 *   QK_DU          dims per step between key-pointer updates
 *   PV_ROWS        1: P V always row-major (O rows as vectors); 0: transposed O^T columns
 *                  except for tiles of at most PV_ROWS_BELOW rows
 *   PV_RB, PV_NV   rows of O per register block of the row-major P V, and vectors (of dim)
 *                  per row in it (at most 4)
 *   PV_EB, PV_EBM  (PV_ROWS 0 only) output dims per block of the transposed P V, unmasked
 *                  and masked
 *   COL_HALVES     1 when a col_t is two halves and the *_lo ops skip the high one
 *   PV_UNMASK_FINITE  (optional, 0 when undefined) 1: a PARTIAL tile whose V rows are all
 *                  finite takes the unmasked P V (a masked FMA costs an AND or a blend more)
 *   QK_F32_FIXED_DIMS (optional, 0 when undefined) 1: float32 K's column QK also compiled for
 *                  dim_qk 64 and 128 as constants
 *   PROBE_CHAINS   independent FMA chains of the peak probe
 *
 * Operations (p: float pointer; a, b, c: values of the shape named):
 *   col_zero col_set1(x) col_load(p, 64-byte aligned) col_store col_bcast(p: *p in all lanes)
 *   col_add col_sub col_mul col_max(NaN in b wins) col_abs col_fma(a,b,c: a*b+c)
 *   col_fma_bc(a,p,acc: acc + a * *p) col_fma_bc_lo (COL_HALVES: low half only, high half of
 *   acc kept) col_fma_bc_m(a,p,acc,m: lanes outside m keep acc, and a NaN at *p cannot reach
 *   them) cmask_bits(u32: bit r -> lane r) col_select(m,a,b: m ? a : b) col_is_neginf
 *   col_exp2(x: 2^x for x <= 0, SLEEF 1 ULP; x86 flushes results below 2^-125 to 0) col_exp2_lo
 * (high half 0) col_tanh col_hmax col_hsum col_masks_from_rows(rows[16], cm[64]: cm[j] bit r = bit
 * j of rows[r]) col_from_vecs(16/VL vec_t of vec_hsums) col_from_quarters(q4_t lanes 0-3, q4_t
 * lanes 4-7, zeros above) col_store_q4(p, a: lanes 0-3 to p, 16-byte aligned) col_spread_q4(a:
 * lanes 0-3 in every quarter) col_sum_q4(a: (q0 + q2) + (q1 + q3) of its quarters q0-q3, in every
 * quarter) col_store_h8 col_spread_h8 col_sum_h8 (the same for halves: lanes 0-7, 32-byte
 * aligned; lo + hi) vec_zero vec_set1 vec_loadu vec_storeu vec_loadu_m(p,m: lanes outside m
 * are not read and come out 0) vec_storeu_m(p,m,a: lanes outside m are not written) vec_add vec_mul
 *   vec_max vec_fma vec_fma_m(a,b,c,m: c outside m, NaN in a or b cannot reach it)
 *   vec_select vec_exp2 vec_hsum vec_hmax vec_hsums(a[VL]: lane i = sum of a[i])
 *   vec_hsums4(a[4]: q4_t, lane i = sum of a[i]) vmask_bits(u64: low VL bits)
 *   vmask_first(n: lanes < n) vmask_expand16(m[16], bits: m[r] all lanes iff bit r)
 *   vmask_load(p) vec_prefetch_l1(p) vec_prefetch_l2(p) (hints, never fault) q4_zero
 *   vec_loadu_bf16(p: VL bfloat16 values widened to float) vec_loadu_f16(p: VL IEEE
 *   binary16 values widened exactly), and their _m forms (lanes outside m not read, 0)
 *   vec_storeu_bf16(p, a) vec_storeu_f16(p, a) (VL lanes rounded to nearest even, bits those
 *   of spattn__store_row for every input) and their _m forms (p, m, a: lanes outside m not
 *   written)
 *   col_bcast_bf16(p) col_bcast_f16(p) (*p widened, in all lanes) col_fma_lo(a,b,c: a*b+c in
 *   the low half, c kept in the high half when COL_HALVES; col_fma otherwise)
 *   col_transpose_rows(p, ts, rows, w, c, out: out[16 d + r] = p[r ts + d] * c for d < w <= 16,
 *   r < rows; 0 * c from lane `rows` on; reads only the rows' first w elements)
 */
#ifndef SPATTN_KERNELS_VEC_H
#define SPATTN_KERNELS_VEC_H

#include <stddef.h>
#include <stdint.h>

#ifndef VL
#error "vec.h: the ISA header must define VL (lanes of vec_t)"
#endif
#ifndef QK_NB
#error "vec.h: the ISA header must define QK_NB"
#endif
#ifndef QK_DS
#error "vec.h: the ISA header must define QK_DS"
#endif
#ifndef QK_DU
#error "vec.h: the ISA header must define QK_DU"
#endif
#ifndef PV_ROWS
#error "vec.h: the ISA header must define PV_ROWS"
#endif
#ifndef PV_RB
#error "vec.h: the ISA header must define PV_RB"
#endif
#if !defined(PV_NV) || PV_NV < 1 || PV_NV > 4
#error "vec.h: the ISA header must define PV_NV (1 to 4)"
#endif
#ifndef PV_ROWS_BELOW
#error "vec.h: the ISA header must define PV_ROWS_BELOW"
#endif
#if !PV_ROWS && (!defined(PV_EB) || !defined(PV_EBM))
#error "vec.h: an ISA header with PV_ROWS 0 must define PV_EB and PV_EBM"
#endif
#ifndef COL_HALVES
#error "vec.h: the ISA header must define COL_HALVES"
#endif
#ifndef PROBE_CHAINS
#error "vec.h: the ISA header must define PROBE_CHAINS"
#endif
#ifndef SPATTN_ALWAYS_INLINE
#error "vec.h: the ISA header must define SPATTN_ALWAYS_INLINE"
#endif
#if VL > 16 || 16 % VL != 0
#error "vec.h: VL must divide 16"
#endif

/* Each operation with its signature: a missing one is an undeclared name here, a wrong one
   an incompatible initialiser (an error under -Werror). Never called; compiled away. */
#define SPATTN_VEC_REQUIRES(ret, name, args)                                                       \
    static ret(*const spattn_vec_requires_##name) args __attribute__((unused)) = name;
SPATTN_VEC_REQUIRES(col_t, col_zero, (void))
SPATTN_VEC_REQUIRES(col_t, col_set1, (float))
SPATTN_VEC_REQUIRES(col_t, col_load, (const float *))
SPATTN_VEC_REQUIRES(void, col_store, (float *, col_t))
SPATTN_VEC_REQUIRES(col_t, col_bcast, (const float *))
SPATTN_VEC_REQUIRES(col_t, col_bcast_bf16, (const uint16_t *))
SPATTN_VEC_REQUIRES(col_t, col_bcast_f16, (const uint16_t *))
SPATTN_VEC_REQUIRES(col_t, col_fma_lo, (col_t, col_t, col_t))
SPATTN_VEC_REQUIRES(col_t, col_add, (col_t, col_t))
SPATTN_VEC_REQUIRES(col_t, col_sub, (col_t, col_t))
SPATTN_VEC_REQUIRES(col_t, col_mul, (col_t, col_t))
SPATTN_VEC_REQUIRES(col_t, col_max, (col_t, col_t))
SPATTN_VEC_REQUIRES(col_t, col_abs, (col_t))
SPATTN_VEC_REQUIRES(col_t, col_fma, (col_t, col_t, col_t))
SPATTN_VEC_REQUIRES(col_t, col_fma_bc, (col_t, const float *, col_t))
SPATTN_VEC_REQUIRES(col_t, col_fma_bc_lo, (col_t, const float *, col_t))
SPATTN_VEC_REQUIRES(col_t, col_fma_bc_m, (col_t, const float *, col_t, cmask_t))
SPATTN_VEC_REQUIRES(cmask_t, cmask_bits, (uint32_t))
SPATTN_VEC_REQUIRES(col_t, col_select, (cmask_t, col_t, col_t))
SPATTN_VEC_REQUIRES(cmask_t, col_is_neginf, (col_t))
SPATTN_VEC_REQUIRES(col_t, col_exp2, (col_t))
SPATTN_VEC_REQUIRES(col_t, col_exp2_lo, (col_t))
SPATTN_VEC_REQUIRES(col_t, col_tanh, (col_t))
SPATTN_VEC_REQUIRES(float, col_hmax, (col_t))
SPATTN_VEC_REQUIRES(float, col_hsum, (col_t))
SPATTN_VEC_REQUIRES(void, col_masks_from_rows, (const uint64_t *, uint32_t *))
SPATTN_VEC_REQUIRES(col_t, col_from_vecs, (const vec_t *))
SPATTN_VEC_REQUIRES(col_t, col_from_quarters, (q4_t, q4_t))
SPATTN_VEC_REQUIRES(q4_t, q4_zero, (void))
SPATTN_VEC_REQUIRES(void, col_store_q4, (float *, col_t))
SPATTN_VEC_REQUIRES(col_t, col_spread_q4, (col_t))
SPATTN_VEC_REQUIRES(col_t, col_sum_q4, (col_t))
SPATTN_VEC_REQUIRES(void, col_store_h8, (float *, col_t))
SPATTN_VEC_REQUIRES(col_t, col_spread_h8, (col_t))
SPATTN_VEC_REQUIRES(col_t, col_sum_h8, (col_t))
SPATTN_VEC_REQUIRES(vec_t, vec_zero, (void))
SPATTN_VEC_REQUIRES(vec_t, vec_set1, (float))
SPATTN_VEC_REQUIRES(vec_t, vec_loadu, (const float *))
SPATTN_VEC_REQUIRES(void, vec_storeu, (float *, vec_t))
SPATTN_VEC_REQUIRES(vec_t, vec_loadu_m, (const float *, vmask_t))
SPATTN_VEC_REQUIRES(void, vec_storeu_m, (float *, vmask_t, vec_t))
SPATTN_VEC_REQUIRES(vec_t, vec_loadu_bf16, (const uint16_t *))
SPATTN_VEC_REQUIRES(vec_t, vec_loadu_bf16_m, (const uint16_t *, vmask_t))
SPATTN_VEC_REQUIRES(vec_t, vec_loadu_f16, (const uint16_t *))
SPATTN_VEC_REQUIRES(vec_t, vec_loadu_f16_m, (const uint16_t *, vmask_t))
SPATTN_VEC_REQUIRES(void, vec_storeu_bf16, (uint16_t *, vec_t))
SPATTN_VEC_REQUIRES(void, vec_storeu_bf16_m, (uint16_t *, vmask_t, vec_t))
SPATTN_VEC_REQUIRES(void, vec_storeu_f16, (uint16_t *, vec_t))
SPATTN_VEC_REQUIRES(void, vec_storeu_f16_m, (uint16_t *, vmask_t, vec_t))
SPATTN_VEC_REQUIRES(vec_t, vec_add, (vec_t, vec_t))
SPATTN_VEC_REQUIRES(vec_t, vec_mul, (vec_t, vec_t))
SPATTN_VEC_REQUIRES(vec_t, vec_max, (vec_t, vec_t))
SPATTN_VEC_REQUIRES(vec_t, vec_fma, (vec_t, vec_t, vec_t))
SPATTN_VEC_REQUIRES(vec_t, vec_fma_m, (vec_t, vec_t, vec_t, vmask_t))
SPATTN_VEC_REQUIRES(vec_t, vec_select, (vmask_t, vec_t, vec_t))
SPATTN_VEC_REQUIRES(vec_t, vec_exp2, (vec_t))
SPATTN_VEC_REQUIRES(float, vec_hsum, (vec_t))
SPATTN_VEC_REQUIRES(float, vec_hmax, (vec_t))
SPATTN_VEC_REQUIRES(vec_t, vec_hsums, (const vec_t *))
SPATTN_VEC_REQUIRES(q4_t, vec_hsums4, (const vec_t *))
SPATTN_VEC_REQUIRES(vmask_t, vmask_bits, (uint64_t))
SPATTN_VEC_REQUIRES(vmask_t, vmask_first, (size_t))
SPATTN_VEC_REQUIRES(void, vmask_expand16, (vmask_t *, uint32_t))
SPATTN_VEC_REQUIRES(vmask_t, vmask_load, (const vmask_t *))
SPATTN_VEC_REQUIRES(void, vec_prefetch_l1, (const void *))
SPATTN_VEC_REQUIRES(void, vec_prefetch_l2, (const void *))
SPATTN_VEC_REQUIRES(void, col_transpose_rows,
                    (const float *, ptrdiff_t, size_t, size_t, col_t, float *))
#ifdef VEC_BF16_DOT
/* Tiers with bf16 pair dot products (VEC_BF16_DOT): col_bcast_pair(p: the two bf16 values at p
   as a pair in every lane), col_dot_pair(qp, kp, acc: acc + the lane-wise dot of two bf16
   pairs, products exact, sums rounded), col_dot_pair_bc(qp, p, acc), col_transpose_pairs(q,
   ts, rows, np, out: out[16 p + r] = the bits of pair p of row r, 0 from lane `rows` on);
   along dims (the gather path): vec_loadu_pairs(p: the 2 VL bf16 values at p as VL pairs),
   vec_loadu_pairs_m(p, n: the first n < 2 VL of them, zeros after, nothing past read),
   vec_dot_pair(qp, kp, acc: as col_dot_pair). Those
   that also take P.V in pairs of keys (VEC_BF16_PV, row-major P.V with VL 16): col_pairs_bf16(a, b:
   lane r = (a[r], b[r]) rounded to bf16), col_pairs_bf16_compact(a, b, w: the same from compact
   scores of w = 4 or 8 rows per key, lane w jp + r = row r's keys 2 jp, 2 jp + 1), vec_zip_bf16(a,
   b, lo, hi: the pairs (a[e], b[e]) of 32 dims in the ISA's zipped order), vec_zip_widen_bf16(a,
   lo, hi: a[e] widened, same order), vec_unzip(lo, hi, d0, d1: zipped order back to dims 0-15 and
   16-31). */
SPATTN_VEC_REQUIRES(col_t, col_bcast_pair, (const uint16_t *))
SPATTN_VEC_REQUIRES(col_t, col_dot_pair, (col_t, col_t, col_t))
SPATTN_VEC_REQUIRES(col_t, col_dot_pair_bc, (col_t, const uint16_t *, col_t))
SPATTN_VEC_REQUIRES(void, col_transpose_pairs,
                    (const uint16_t *, ptrdiff_t, size_t, size_t, float *))
SPATTN_VEC_REQUIRES(vec_t, vec_loadu_pairs, (const uint16_t *))
SPATTN_VEC_REQUIRES(vec_t, vec_loadu_pairs_m, (const uint16_t *, size_t))
SPATTN_VEC_REQUIRES(vec_t, vec_dot_pair, (vec_t, vec_t, vec_t))
#endif
#ifdef VEC_BF16_PV
SPATTN_VEC_REQUIRES(col_t, col_pairs_bf16, (col_t, col_t))
SPATTN_VEC_REQUIRES(col_t, col_pairs_bf16_compact, (col_t, col_t, int))
SPATTN_VEC_REQUIRES(void, vec_zip_bf16, (const uint16_t *, const uint16_t *, vec_t *, vec_t *))
SPATTN_VEC_REQUIRES(void, vec_zip_widen_bf16, (const uint16_t *, vec_t *, vec_t *))
SPATTN_VEC_REQUIRES(void, vec_unzip, (vec_t, vec_t, vec_t *, vec_t *))
#endif
#ifdef VEC_BF16_EO
/* Vocabularies that read bf16 rows as even and odd elements (VEC_BF16_EO, for the row-major
   P V): vec_loadu_bf16_eo(p, even, odd: elements 0, 2, .. 2 VL - 2 of p widened into even,
   1, 3, .. 2 VL - 1 into odd, from one load of 2 VL elements), vec_to_eo(a, b, even, odd: the
   same split of 2 VL floats, a elements 0 .. VL - 1 and b the rest), vec_from_eo(even, odd,
   a, b: back to a and b). */
SPATTN_VEC_REQUIRES(void, vec_loadu_bf16_eo, (const uint16_t *, vec_t *, vec_t *))
SPATTN_VEC_REQUIRES(void, vec_to_eo, (vec_t, vec_t, vec_t *, vec_t *))
SPATTN_VEC_REQUIRES(void, vec_from_eo, (vec_t, vec_t, vec_t *, vec_t *))
#endif
#undef SPATTN_VEC_REQUIRES

#endif
