/* Shared helpers of the Check suites. */
#ifndef SPATTN_TEST_UTIL_H
#define SPATTN_TEST_UTIL_H

#include <check.h>
#include <stddef.h>
#include <stdint.h>

#include "kernels/kernel.h"
#include "spattn.h"

/* Deterministic generator (splitmix64), one per test so tests do not depend on order. */
typedef struct tu_rng {
    uint64_t s;
} tu_rng;
uint64_t tu_next(tu_rng *r);
double tu_uniform(tu_rng *r);                     /* [0, 1) */
size_t tu_range(tu_rng *r, size_t lo, size_t hi); /* [lo, hi] */
float tu_normal(tu_rng *r);                       /* ~N(0, 1) */

/* One past the last ISA of the public enum (the first value spattn_isa_name does not know),
   at most TU_MAX_ISAS: loops over every ISA run from SPATTN_ISA_SCALAR (or AUTO) below it, so
   that an ISA added to the enum needs no edit here. */
#define TU_MAX_ISAS 12
int tu_isa_end(void);

/* Whether `isa` takes bf16 Q.K (and on some, P.V) as bf16 products with other sums than the
   float kernels (avx512bf16, neonbf16, avx512amx): such results are within the contract's bf16
   tolerance of the float computation, not its bits. */
int tu_isa_bf16_dots(spattn_isa isa);
/* Whether `isa` computes a job of these types with 16-bit tile or pair products, so that its
   results are within the contract's tolerance of the float computation but not its bits:
   bf16 Q and K/V on the tiers of tu_isa_bf16_dots; f16 K/V with f16 or float32 Q on avx512amx
   where dim_qk is a multiple of 32 (hi and lo bf16 parts). */
int tu_isa_half_dots(spattn_isa isa, spattn_dtype q, spattn_dtype kv, size_t dim_qk);

/* The ISAs to test: every one this host can run, or only the one SPATTN_ISA forces. */
int tu_isas(spattn_isa out[TU_MAX_ISAS]);
/* Loop tests run once per tested ISA: tu_n_isas() iterations, iteration i on tu_isa(i). */
int tu_n_isas(void);
spattn_isa tu_isa(int i);

/* Number of random cases for sweeps: the environment variable SPATTN_TEST_SCALE (a float,
   default 1) multiplies `base`; sanitizer and emulated runs set it below 1. At least 1. */
int tu_cases(int base);

/* The kernel tables of kernels.inc, in its order: tu_n_kernels() of them. tu_kernel_table(i)
   is entry i's table, or NULL (with a line saying why, prefixed by `suite`) when this host
   cannot run it. */
size_t tu_n_kernels(void);
const char *tu_kernel_name(size_t i);
const spattn_kernel_table *tu_kernel_table(size_t i, const char *suite);

/* A float buffer with `guard` canary floats on both sides: tu_buf_check reports whether the
   guards still hold the canary, tu_buf_untouched whether the payload does too. */
typedef struct tu_buf {
    float *base, *p;
    size_t n, guard;
} tu_buf;
tu_buf tu_buf_new(size_t n);
void tu_buf_reset(tu_buf *b); /* every float back to the canary */
int tu_buf_guards_ok(const tu_buf *b);
int tu_buf_untouched(const tu_buf *b);
void tu_buf_free(tu_buf *b);
int tu_is_canary(float f);
#define TU_CANARY_BITS 0x7fc0dead /* a NaN payload no kernel produces */

/* A random len_q x len_k mask of one of the kinds users build (causal, window, blocks,
   strided, BigBird, dense random elements or a few keys per row through CSR), some with empty
   rows and with keys that no row allows. */
/* CSR (rp: lq + 1 offsets, ci: column indices, increasing) of a dense lq x lk 0/1 matrix. */
void tu_dense_to_csr(const uint8_t *d, size_t lq, size_t lk, int64_t *rp, int32_t *ci);
spattn_mask *tu_random_mask(tu_rng *r, size_t lq, size_t lk);

/* |a - b| <= tol * (1 + |b|), with NaN only equal to NaN and infinities only to themselves. */
int tu_close(float a, float b, double tol);
#define TU_TOL 2e-5

/* ck_assert / ck_assert_msg for checks in loops over elements: Check 0.15 records the line of
   every assertion that *holds* with a write() to its message file, and those writes were 40 %
   of a whole run (16 million of them at SPATTN_TEST_SCALE 0.05), more under memcheck. These
   report a failure the same way (ck_abort_msg: file, line, message) and cost a branch when
   the check holds. */
#define TU_CHECK(expr)                                                                             \
    do {                                                                                           \
        if (!(expr))                                                                               \
            ck_abort_msg("Assertion '%s' failed", #expr);                                          \
    } while (0)
#define TU_CHECK_MSG(expr, ...)                                                                    \
    do {                                                                                           \
        if (!(expr))                                                                               \
            ck_abort_msg(__VA_ARGS__);                                                             \
    } while (0)

#endif
