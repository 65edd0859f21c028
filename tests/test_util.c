#include "test_util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/dispatch.h"

uint64_t tu_next(tu_rng *r)
{
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

double tu_uniform(tu_rng *r)
{
    return (double)(tu_next(r) >> 11) * (1.0 / 9007199254740992.0);
}

size_t tu_range(tu_rng *r, size_t lo, size_t hi)
{
    return lo + (size_t)(tu_next(r) % (uint64_t)(hi - lo + 1));
}

float tu_normal(tu_rng *r)
{
    double u1 = tu_uniform(r), u2 = tu_uniform(r);
    if (u1 < 1e-300)
        u1 = 1e-300;
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

int tu_isa_bf16_dots(spattn_isa isa)
{
    return isa == SPATTN_ISA_AVX512BF16 || isa == SPATTN_ISA_NEON_BF16 ||
           isa == SPATTN_ISA_AVX512AMX;
}

int tu_isa_half_dots(spattn_isa isa, spattn_dtype q, spattn_dtype kv, size_t dim_qk)
{
    if (q == SPATTN_DTYPE_BF16 && kv == SPATTN_DTYPE_BF16)
        return tu_isa_bf16_dots(isa);
    return isa == SPATTN_ISA_AVX512AMX && q != SPATTN_DTYPE_BF16 && kv == SPATTN_DTYPE_F16 &&
           dim_qk % 32 == 0;
}

int tu_isa_end(void)
{
    int end = SPATTN_ISA_SCALAR;
    while (end < TU_MAX_ISAS && strcmp(spattn_isa_name((spattn_isa)end), "unknown") != 0)
        end++;
    return end;
}

int tu_isas(spattn_isa out[TU_MAX_ISAS])
{
    int n = 0;
    /* A run with SPATTN_ISA forcing an ISA tests that one only (ctest runs one per ISA). */
    const char *env = getenv("SPATTN_ISA");
    if (env && *env && strcmp(env, "auto") != 0 && spattn_isa_selected() != SPATTN_ISA_AUTO) {
        out[0] = spattn_isa_selected();
        return 1;
    }
    for (int i = SPATTN_ISA_SCALAR; i < tu_isa_end(); i++)
        if (spattn_isa_available((spattn_isa)i))
            out[n++] = (spattn_isa)i;
    return n;
}

int tu_n_isas(void)
{
    spattn_isa isas[TU_MAX_ISAS];
    return tu_isas(isas);
}

spattn_isa tu_isa(int i)
{
    spattn_isa isas[TU_MAX_ISAS];
    int n = tu_isas(isas);
    ck_assert_int_lt(i, n);
    return isas[i];
}

int tu_cases(int base)
{
    const char *e = getenv("SPATTN_TEST_SCALE");
    double s = e ? atof(e) : 1.0;
    if (!(s > 0.0))
        s = 1.0;
    int n = (int)(base * s + 0.5);
    return n < 1 ? 1 : n;
}

static float canary(void)
{
    uint32_t bits = TU_CANARY_BITS;
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

tu_buf tu_buf_new(size_t n)
{
    tu_buf b;
    b.n = n;
    b.guard = 16;
    b.base = malloc((n + 2 * b.guard) * sizeof(float));
    ck_assert_ptr_nonnull(b.base);
    b.p = b.base + b.guard;
    tu_buf_reset(&b);
    return b;
}

void tu_buf_reset(tu_buf *b)
{
    float c = canary();
    for (size_t i = 0; i < b->n + 2 * b->guard; i++)
        b->base[i] = c;
}

int tu_is_canary(float f)
{
    uint32_t bits;
    memcpy(&bits, &f, sizeof bits);
    return bits == TU_CANARY_BITS;
}

int tu_buf_guards_ok(const tu_buf *b)
{
    for (size_t i = 0; i < b->guard; i++)
        if (!tu_is_canary(b->base[i]) || !tu_is_canary(b->p[b->n + i]))
            return 0;
    return 1;
}

int tu_buf_untouched(const tu_buf *b)
{
    for (size_t i = 0; i < b->n + 2 * b->guard; i++)
        if (!tu_is_canary(b->base[i]))
            return 0;
    return 1;
}

void tu_buf_free(tu_buf *b)
{
    free(b->base);
    b->base = b->p = NULL;
}

int tu_close(float a, float b, double tol)
{
    if (isnan(b))
        return isnan(a);
    if (isinf(b))
        return a == b;
    if (!isfinite(a))
        return 0;
    return fabs((double)a - (double)b) <= tol * (1.0 + fabs((double)b));
}

void tu_dense_to_csr(const uint8_t *d, size_t lq, size_t lk, int64_t *rp, int32_t *ci)
{
    rp[0] = 0;
    for (size_t i = 0; i < lq; i++) {
        rp[i + 1] = rp[i];
        for (size_t j = 0; j < lk; j++)
            if (d[i * lk + j])
                ci[rp[i + 1]++] = (int32_t)j;
    }
}

/* A random mask of one of the kinds users build, sometimes with rows left empty. */
spattn_mask *tu_random_mask(tu_rng *r, size_t lq, size_t lk)
{
    spattn_mask *m = NULL;
    spattn_status st = SPATTN_OK;
    int kind = (int)tu_range(r, 0, 7);
    switch (kind) {
    case 0:
        st = spattn_mask_causal(lq, lk, &m);
        break;
    case 1:
        st = spattn_mask_window(lq, lk, tu_range(r, 0, 40), tu_range(r, 0, 40), &m);
        break;
    case 2: {
        size_t bq = tu_range(r, 1, 70), bk = tu_range(r, 1, 70);
        size_t nbq = (lq + bq - 1) / bq, nbk = (lk + bk - 1) / bk;
        uint8_t *lay = malloc(nbq * nbk);
        double dens = tu_uniform(r);
        for (size_t i = 0; i < nbq * nbk; i++)
            lay[i] = tu_uniform(r) < dens;
        st = spattn_mask_from_blocks(lq, lk, bq, bk, lay, &m);
        free(lay);
        break;
    }
    case 3:
        st = spattn_mask_strided(lq, lk, tu_range(r, 1, 40), &m);
        break;
    case 4:
        st = spattn_mask_bigbird(lq, lk, tu_range(r, 1, 40), tu_range(r, 0, 2), tu_range(r, 0, 1),
                                 tu_range(r, 0, 3), tu_next(r), &m);
        break;
    default: {
        /* Random elements, a few keys per row up to dense, with some columns never allowed
           (their K/V rows get poisoned) and some rows empty. */
        uint8_t *d = malloc(lq * lk);
        double dens = kind == 5 ? tu_uniform(r) : 4.0 / (double)lk;
        uint8_t *col_off = malloc(lk);
        for (size_t j = 0; j < lk; j++)
            col_off[j] = tu_uniform(r) < 0.2;
        for (size_t i = 0; i < lq; i++) {
            int empty = tu_uniform(r) < 0.1;
            for (size_t j = 0; j < lk; j++)
                d[i * lk + j] = !empty && !col_off[j] && tu_uniform(r) < dens;
        }
        if (kind == 7) {
            /* The same few-keys pattern through CSR, as weight-sparse models export it. */
            int64_t *rp = malloc((lq + 1) * sizeof *rp);
            int32_t *ci = malloc(lq * lk * sizeof *ci + 1);
            tu_dense_to_csr(d, lq, lk, rp, ci);
            st = spattn_mask_from_csr(lq, lk, rp, ci, &m);
            free(rp);
            free(ci);
        } else {
            st = spattn_mask_from_dense(lq, lk, d, lk, &m);
        }
        free(d);
        free(col_off);
        break;
    }
    }
    ck_assert_int_eq(st, SPATTN_OK);
    return m;
}

typedef struct tu_kentry {
    spattn_isa isa;
    const char *name;
} tu_kentry;

static const tu_kentry kernel_list[] = {
#define SPATTN_KERNEL(isa, table, cpu_bits, auto_bits) {isa, #table},
#include "kernels/kernels.inc"
#undef SPATTN_KERNEL
};

size_t tu_n_kernels(void)
{
    return sizeof kernel_list / sizeof kernel_list[0];
}

const char *tu_kernel_name(size_t i)
{
    return kernel_list[i].name;
}

const spattn_kernel_table *tu_kernel_table(size_t i, const char *suite)
{
    const spattn_kernel_table *kt = spattn__kernels_for(kernel_list[i].isa);
    if (kt == NULL)
        printf("%s: %s skipped, %s\n", suite, kernel_list[i].name,
               spattn_isa_unavailable_reason(kernel_list[i].isa));
    return kt;
}
