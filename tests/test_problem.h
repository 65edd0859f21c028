/*
 * One batch of attention for the path tests (test_mixed.c, test_walk.c): float32 Q, K, V in
 * bhtd with every K and V row the mask never allows NaN, random scale, softcap, ALiBi and
 * sinks; checked against the float64 reference.
 */
#ifndef SPATTN_TEST_PROBLEM_H
#define SPATTN_TEST_PROBLEM_H

#include "test_util.h"

typedef struct tproblem {
    spattn_args a;
    float *q, *k, *v, *o, *lse, *slopes, *sinks;
    uint16_t *qh, *kh, *vh; /* Q, K, V as bf16 after tproblem_to_bf16, else NULL */
    spattn_mask *mask;
} tproblem;

/* Takes m (freed by tproblem_free); `heads` query and K/V heads of dims dq, dv. */
void tproblem_make(tproblem *p, tu_rng *r, spattn_mask *m, size_t heads, size_t dq, size_t dv);
void tproblem_free(tproblem *p);

/* Gives the call bf16 Q, K and V: the float inputs rounded (the reference reads the same
   values), O stays float32. */
void tproblem_to_bf16(tproblem *p);

/* Fails the test unless p's O and lse are within tol of the reference's. */
void tproblem_check(const tproblem *p, const char *what, double tol);

/* p's O and lse as one run left them, for later runs to match bitwise. */
typedef struct tproblem_bits {
    float *o, *lse;
    size_t no, nl;
} tproblem_bits;
void tproblem_keep(const tproblem *p, tproblem_bits *b);
/* Zeros p's O, for a run whose output is then compared with tproblem_same. */
void tproblem_clear(tproblem *p);
/* Whether p's O and lse are bitwise those kept in b. */
int tproblem_same(const tproblem *p, const tproblem_bits *b);
void tproblem_bits_free(tproblem_bits *b);

#endif
