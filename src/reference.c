/* The float64 reference: the formula of spattn.h, pair by pair. Deliberately shares nothing
   with the kernels but argument checking and the mask's dense export. */
#include <math.h>
#include <string.h>

#include "alloc.h"
#include "convert.h"
#include "mask/mask_impl.h"
#include "validate.h"

/* Row i of a softmax over the allowed entries of s (n entries, allowed[j] != 0) and the logit
   `sink` (-inf: none), which has no value row. Returns the shift used and stores the sum in *l.
   A row whose allowed scores and sink are all -inf counts as having none (l = 0); NaN scores
   make l NaN. */
static double row_softmax(const double *s, const uint8_t *allowed, size_t n, double sink, double *l)
{
    double m = sink;
    for (size_t j = 0; j < n; j++)
        if (allowed[j] && s[j] > m)
            m = s[j];
    double shift = m == -INFINITY ? 0.0 : m;
    double sum = sink == -INFINITY ? 0.0 : exp(sink - shift);
    for (size_t j = 0; j < n; j++)
        if (allowed[j])
            sum += exp(s[j] - shift);
    *l = sum;
    return shift;
}

/* Element i of a tensor of type t, exactly. */
static double elem(const void *p, ptrdiff_t i, spattn_dtype t)
{
    return (double)spattn__load_f32(p, i, t);
}

/* x rounded to nearest even into a binary format of p significand bits whose smallest normal
   is 2^emin and largest finite value max (Inf beyond), as a double: x / quantum is exact (a
   power-of-two scaling) and nearbyint rounds it ties-to-even in the default rounding mode.
   One rounding from float64, where float64 -> float -> half would round twice. */
static double round_to_format(double x, int p, int emin, double max)
{
    if (x == 0.0 || !isfinite(x))
        return x;
    int e = ilogb(x);
    if (e < emin)
        e = emin;
    const double r = ldexp(nearbyint(ldexp(x, p - 1 - e)), e - (p - 1));
    return fabs(r) > max ? copysign(INFINITY, x) : r;
}

/* Element i of o, of type t, set to x (nearest even). */
static void store_elem(void *o, ptrdiff_t i, spattn_dtype t, double x)
{
    switch (t) {
    case SPATTN_DTYPE_BF16: /* bf16 values are floats: the conversion below is exact */
        ((uint16_t *)o)[i] = spattn__f32_to_bf16_1((float)round_to_format(x, 8, -126, 0x1.fcp127));
        break;
    case SPATTN_DTYPE_F16: /* likewise */
        ((uint16_t *)o)[i] = spattn__f32_to_f16_1((float)round_to_format(x, 11, -14, 65504.0));
        break;
    default:
        ((float *)o)[i] = (float)x;
        break;
    }
}

static double score(const void *q, spattn_dtype qt, const void *k, spattn_dtype kt, size_t d,
                    double scale, double softcap)
{
    double dot = 0.0;
    for (size_t t = 0; t < d; t++)
        dot += elem(q, (ptrdiff_t)t, qt) * elem(k, (ptrdiff_t)t, kt);
    double s = scale * dot;
    if (softcap != 0.0)
        s = softcap * tanh(s / softcap);
    return s;
}

spattn_status spattn_reference_forward(const spattn_args *args, const spattn_mask *const *masks,
                                       size_t n_masks)
{
    if (args == NULL)
        return SPATTN_E_NULL;
    const spattn_shape *sh = &args->shape;
    spattn_status st = spattn__check_shape(sh);
    if (st == SPATTN_OK)
        st = spattn__check_masks(sh, masks, n_masks);
    if (st == SPATTN_OK)
        st = spattn__check_tensors(args);
    if (st != SPATTN_OK)
        return st;

    size_t lq = sh->len_q, lk = sh->len_k;
    uint8_t *allowed = spattn__malloc(lq * lk);
    double *s = spattn__malloc(lk * sizeof(double));
    double *acc = spattn__malloc(sh->dim_v * sizeof(double));
    if (allowed == NULL || s == NULL || acc == NULL) {
        spattn__free(allowed);
        spattn__free(s);
        spattn__free(acc);
        return SPATTN_E_NOMEM;
    }
    double scale = spattn__resolve_scale(args->scale, sh->dim_qk);
    size_t group = sh->heads_q / sh->heads_kv;
    const ptrdiff_t eq = (ptrdiff_t)spattn__dtype_size(args->q_dtype),
                    ekv = (ptrdiff_t)spattn__dtype_size(args->kv_dtype),
                    eo = (ptrdiff_t)spattn__dtype_size(args->o_dtype);
    /* i' = i + pos0 (only formed with ALiBi, where validation bounds it). */
    const ptrdiff_t pos0 =
        args->alibi_slopes ? (ptrdiff_t)lk - (ptrdiff_t)lq + args->pos_offset : 0;
    size_t have = (size_t)-1; /* the mask whose dense form `allowed` holds */
    if (n_masks == 0)
        memset(allowed, 1, lq * lk);
    for (size_t b = 0; b < sh->batch; b++)
        for (size_t h = 0; h < sh->heads_q; h++) {
            size_t mi = spattn__mask_index(sh, n_masks, b, h);
            if (n_masks != 0 && mi != have) {
                spattn_mask_to_dense(masks[mi], allowed, lk);
                have = mi;
            }
            size_t hk = h / group;
            /* Byte pointers; strides count elements of each tensor's type. */
            const char *q =
                (const char *)args->q +
                ((ptrdiff_t)b * args->q_layout.batch + (ptrdiff_t)h * args->q_layout.head) * eq;
            const char *k =
                (const char *)args->k +
                ((ptrdiff_t)b * args->k_layout.batch + (ptrdiff_t)hk * args->k_layout.head) * ekv;
            const char *v =
                (const char *)args->v +
                ((ptrdiff_t)b * args->v_layout.batch + (ptrdiff_t)hk * args->v_layout.head) * ekv;
            char *o =
                (char *)args->o +
                ((ptrdiff_t)b * args->o_layout.batch + (ptrdiff_t)h * args->o_layout.head) * eo;
            const double sink = args->sinks != NULL ? args->sinks[h] : -INFINITY;
            for (size_t i = 0; i < lq; i++) {
                const uint8_t *row = allowed + i * lk;
                for (size_t j = 0; j < lk; j++)
                    s[j] = row[j]
                               ? score(q + (ptrdiff_t)i * args->q_layout.token * eq, args->q_dtype,
                                       k + (ptrdiff_t)j * args->k_layout.token * ekv,
                                       args->kv_dtype, sh->dim_qk, scale, args->softcap)
                               : 0.0;
                /* ALiBi: i' - j as exact integers (validation bounds them). */
                if (args->alibi_slopes != NULL) {
                    const double slope = args->alibi_slopes[h];
                    const ptrdiff_t ip = (ptrdiff_t)i + pos0;
                    for (size_t j = 0; j < lk; j++) {
                        const ptrdiff_t d = ip - (ptrdiff_t)j;
                        if (row[j])
                            s[j] -= slope * (double)(d < 0 ? -d : d);
                    }
                }
                double l;
                double shift = row_softmax(s, row, lk, sink, &l);
                for (size_t d = 0; d < sh->dim_v; d++)
                    acc[d] = 0.0;
                if (l != 0.0) {
                    for (size_t j = 0; j < lk; j++) {
                        if (!row[j])
                            continue;
                        double p = exp(s[j] - shift);
                        const char *vj = v + (ptrdiff_t)j * args->v_layout.token * ekv;
                        for (size_t d = 0; d < sh->dim_v; d++)
                            acc[d] += p * elem(vj, (ptrdiff_t)d, args->kv_dtype);
                    }
                }
                char *oi = o + (ptrdiff_t)i * args->o_layout.token * eo;
                for (size_t d = 0; d < sh->dim_v; d++)
                    store_elem(oi, (ptrdiff_t)d, args->o_dtype, l != 0.0 ? acc[d] / l : 0.0);
                if (args->lse)
                    args->lse[(b * sh->heads_q + h) * lq + i] =
                        l != 0.0 ? (float)(shift + log(l)) : -INFINITY;
            }
        }
    spattn__free(allowed);
    spattn__free(s);
    spattn__free(acc);
    return SPATTN_OK;
}

spattn_status spattn_reference_softmax_masked(const float *x, float *y, size_t rows, size_t cols,
                                              size_t ld, const spattn_mask *mask, float scale)
{
    spattn_status st = spattn__check_softmax(x, y, rows, cols, ld, mask, scale);
    if (st != SPATTN_OK)
        return st;
    uint8_t *allowed = spattn__malloc(cols);
    double *s = spattn__malloc(cols * sizeof(double));
    uint8_t *dense = spattn__malloc(rows * cols);
    if (allowed == NULL || s == NULL || dense == NULL) {
        spattn__free(allowed);
        spattn__free(s);
        spattn__free(dense);
        return SPATTN_E_NOMEM;
    }
    spattn_mask_to_dense(mask, dense, cols);
    double sc = scale != 0.0f ? scale : 1.0;
    for (size_t i = 0; i < rows; i++) {
        memcpy(allowed, dense + i * cols, cols);
        for (size_t j = 0; j < cols; j++)
            s[j] = allowed[j] ? sc * (double)x[i * ld + j] : 0.0;
        double l;
        double shift = row_softmax(s, allowed, cols, -INFINITY, &l);
        for (size_t j = 0; j < cols; j++)
            y[i * ld + j] = (allowed[j] && l != 0.0) ? (float)(exp(s[j] - shift) / l) : 0.0f;
    }
    spattn__free(allowed);
    spattn__free(s);
    spattn__free(dense);
    return SPATTN_OK;
}
