/*
 * K and V in their own element type (job->kv_dtype), widened to float in registers as they
 * are loaded: bf16 by a shift, f16 by the ISA's conversion (vcvtph2ps, fcvtl). A K or V
 * pointer here is a byte pointer and `kvt` a spattn_dtype that is a compile-time constant at
 * every use: the hot loops are always-inline functions taking it as a constant argument, and
 * the static function above each switches on the job's type once per call, so every loop is
 * compiled once per type and the F32 one is the code it was before types existed.
 */
#ifndef SPATTN_KERNELS_KV_LOAD_H
#define SPATTN_KERNELS_KV_LOAD_H

#include "kernels/common.h"

#define KV_F32 ((int)SPATTN_DTYPE_F32)
#define KV_BF16 ((int)SPATTN_DTYPE_BF16)
#define KV_F16 ((int)SPATTN_DTYPE_F16)

/* Floats of stack the column QK (qk_cols.h) may widen 16-bit K rows into, two register
   blocks of keys at a time, so that its FMAs take their broadcasts from memory as with
   float32 (a 16-bit broadcast is a load, a shuffle and a conversion per FMA, or per two
   with paired query tiles). 0 (an ISA that does not define it), or dims too large for it:
   widen each element as it is broadcast (NEON; AVX2 and AVX-512 stage, docs/dtypes.md). */
#ifndef KV_STAGE_FLOATS
#define KV_STAGE_FLOATS 0
#endif

/* Bytes of one element. */
SPATTN_ALWAYS_INLINE ptrdiff_t kv_size(const int kvt)
{
    return kvt == KV_F32 ? 4 : 2;
}

/* Element i of row p as a column broadcast. */
SPATTN_ALWAYS_INLINE col_t kv_bcast(const int kvt, const char *p, size_t i)
{
    if (kvt == KV_BF16)
        return col_bcast_bf16((const uint16_t *)(const void *)p + i);
    if (kvt == KV_F16)
        return col_bcast_f16((const uint16_t *)(const void *)p + i);
    return col_bcast((const float *)(const void *)p + i);
}

/* acc + a * element i of p, as col_fma_bc (and _lo, _m: see vec.h). */
SPATTN_ALWAYS_INLINE col_t kv_fma_bc(const int kvt, col_t a, const char *p, size_t i, col_t acc)
{
    if (kvt == KV_F32)
        return col_fma_bc(a, (const float *)(const void *)p + i, acc);
    return col_fma(a, kv_bcast(kvt, p, i), acc);
}
SPATTN_ALWAYS_INLINE col_t kv_fma_bc_lo(const int kvt, col_t a, const char *p, size_t i, col_t acc)
{
    if (kvt == KV_F32)
        return col_fma_bc_lo(a, (const float *)(const void *)p + i, acc);
    return col_fma_lo(a, kv_bcast(kvt, p, i), acc);
}
/* Lanes outside m keep acc exactly, so a NaN in the element cannot reach them. */
SPATTN_ALWAYS_INLINE col_t kv_fma_bc_m(const int kvt, col_t a, const char *p, size_t i, col_t acc,
                                       cmask_t m)
{
    if (kvt == KV_F32)
        return col_fma_bc_m(a, (const float *)(const void *)p + i, acc, m);
    return col_select(m, col_fma(a, kv_bcast(kvt, p, i), acc), acc);
}

/* VL elements of p from element i, and the masked form (lanes outside m not read, 0). */
SPATTN_ALWAYS_INLINE vec_t kv_loadu(const int kvt, const char *p, size_t i)
{
    if (kvt == KV_BF16)
        return vec_loadu_bf16((const uint16_t *)(const void *)p + i);
    if (kvt == KV_F16)
        return vec_loadu_f16((const uint16_t *)(const void *)p + i);
    return vec_loadu((const float *)(const void *)p + i);
}
SPATTN_ALWAYS_INLINE vec_t kv_loadu_m(const int kvt, const char *p, size_t i, vmask_t m)
{
    if (kvt == KV_BF16)
        return vec_loadu_bf16_m((const uint16_t *)(const void *)p + i, m);
    if (kvt == KV_F16)
        return vec_loadu_f16_m((const uint16_t *)(const void *)p + i, m);
    return vec_loadu_m((const float *)(const void *)p + i, m);
}

/* Elements d .. d + VL of row p (dim elements) widened into dst + d: lanes past dim come out
   0, and the row is not read there. */
SPATTN_ALWAYS_INLINE void kv_widen_chunk(const int kvt, float *dst, const char *p, size_t d,
                                         size_t dim)
{
    if (d + VL <= dim)
        vec_storeu(dst + d, kv_loadu(kvt, p, d));
    else
        vec_storeu(dst + d, kv_loadu_m(kvt, p, d, vmask_first(dim - d)));
}

/* The dim elements of row p widened into dst, VL at a time: dst must have room for dim
   rounded up to VL floats. */
SPATTN_ALWAYS_INLINE void kv_widen_row(const int kvt, float *dst, const char *p, size_t dim)
{
    for (size_t d = 0; d < dim; d += VL)
        kv_widen_chunk(kvt, dst, p, d, dim);
}

/* Rows vp[j] (j < n) from element e, dim elements each, widened into dst, ld floats apart (ld
   at least dim rounded up to VL); wp[j] is then row j of dst, as the byte pointer the float32
   kernels take. The stages of 16-bit V ahead of a P V. */
SPATTN_ALWAYS_INLINE void kv_widen_rows(const int kvt, float *dst, size_t ld, const char *const *vp,
                                        size_t e, size_t n, size_t dim, const char **wp)
{
    for (size_t j = 0; j < n; j++) {
        kv_widen_row(kvt, dst + j * ld, vp[j] + (ptrdiff_t)e * kv_size(kvt), dim);
        wp[j] = (const char *)(dst + j * ld);
    }
}

/* Whether every element of the n rows vp[] (dim elements of type kvt) is finite: x * 0 is
   +-0 for a finite x and NaN for an infinity or a NaN, so sums of those stay 0 or turn NaN
   (four sums, so that the adds do not wait on one chain). */
SPATTN_ALWAYS_INLINE int kv_rows_finite_t(const int kvt, const char *const *vp, size_t n,
                                          size_t dim)
{
    const vec_t z = vec_zero();
    vec_t a0 = z, a1 = z, a2 = z, a3 = z;
    for (size_t j = 0; j < n; j++) {
        const char *p = vp[j];
        size_t d = 0;
        for (; d + 4 * VL <= dim; d += 4 * VL) {
            a0 = vec_fma(kv_loadu(kvt, p, d), z, a0);
            a1 = vec_fma(kv_loadu(kvt, p, d + VL), z, a1);
            a2 = vec_fma(kv_loadu(kvt, p, d + 2 * VL), z, a2);
            a3 = vec_fma(kv_loadu(kvt, p, d + 3 * VL), z, a3);
        }
        for (; d + VL <= dim; d += VL)
            a0 = vec_fma(kv_loadu(kvt, p, d), z, a0);
        if (d < dim)
            a1 = vec_fma(kv_loadu_m(kvt, p, d, vmask_first(dim - d)), z, a1);
    }
    const float s = vec_hsum(vec_add(vec_add(a0, a1), vec_add(a2, a3)));
    return s == s;
}

/* Whether K or V of type kvt is read 2 VL elements at a time as even and odd elements
   (vec_loadu_bf16_eo: bf16 where the vocabulary defines VEC_BF16_EO); a kernel that does
   so keeps its other operand in that order. */
#ifdef VEC_BF16_EO
#define KV_EO(kvt) ((kvt) == KV_BF16)

/* n accumulators (n even), in order, into that order (to_eo) or back: vectors x, x + 1 hold
   the even and odd elements of their 2 VL. */
SPATTN_ALWAYS_INLINE void vecs_eo(vec_t *a, int n, const int to_eo)
{
    for (int x = 0; x < n; x += 2) {
        if (to_eo)
            vec_to_eo(a[x], a[x + 1], &a[x], &a[x + 1]);
        else
            vec_from_eo(a[x], a[x + 1], &a[x], &a[x + 1]);
    }
}
#else
#define KV_EO(kvt) 0
#endif

/* Row j of a K or V head whose rows are ts elements apart. */
SPATTN_ALWAYS_INLINE const char *kv_row(const int kvt, const void *base, ptrdiff_t j, ptrdiff_t ts)
{
    return (const char *)base + j * ts * kv_size(kvt);
}

/* Runs `call` with KVT, an integer constant, the type kvt_rt names: the one switch a static
   function above the hot loops makes. A tier whose template code sees one type only defines
   its own before the template (kernels/bf16_tier.h). */
#ifndef KV_DISPATCH
#define KV_DISPATCH(kvt_rt, call)                                                                  \
    do {                                                                                           \
        switch (kvt_rt) {                                                                          \
        case SPATTN_DTYPE_BF16: {                                                                  \
            enum { KVT = KV_BF16 };                                                                \
            call;                                                                                  \
        } break;                                                                                   \
        case SPATTN_DTYPE_F16: {                                                                   \
            enum { KVT = KV_F16 };                                                                 \
            call;                                                                                  \
        } break;                                                                                   \
        default: {                                                                                 \
            enum { KVT = KV_F32 };                                                                 \
            call;                                                                                  \
        } break;                                                                                   \
        }                                                                                          \
    } while (0)

#endif

/* A row of n elements of the runtime type t (a 16-bit Q row of the gather path) widened
   into y, which must have room for n rounded up to VL floats: spattn__load_row in vectors
   (its branchy element-by-element f16 conversion, once per gathered row, showed in the
   gather path's time: docs/dtypes.md). */
static void row_widen(int t, float *y, const void *src, size_t n)
{
    KV_DISPATCH(t, kv_widen_row(KVT, y, (const char *)src, n));
}

#endif
