/*
 * Checks a mask against the dense truth a fuzzer computed by brute force: shape, nnz,
 * to_dense (with a padded leading dimension whose padding must stay untouched) and to_csr.
 */
#ifndef SPATTN_FUZZ_MASK_CHECK_H
#define SPATTN_FUZZ_MASK_CHECK_H

#include <string.h>

#include "fuzz_input.h"
#include "spattn.h"

#define FZ_PAD_BYTE 0xA5

static inline void fz_check_mask(const spattn_mask *m, size_t len_q, size_t len_k,
                                 const uint8_t *truth)
{
    FZ_CHECK(spattn_mask_len_q(m) == len_q && spattn_mask_len_k(m) == len_k,
             "shape %zux%zu, expected %zux%zu", spattn_mask_len_q(m), spattn_mask_len_k(m), len_q,
             len_k);
    uint64_t nnz = 0;
    for (size_t i = 0; i < len_q * len_k; i++)
        nnz += truth[i] != 0;
    FZ_CHECK(spattn_mask_nnz(m) == nnz, "nnz %llu, expected %llu",
             (unsigned long long)spattn_mask_nnz(m), (unsigned long long)nnz);

    size_t ld = len_k + 3;
    uint8_t *dense = malloc(len_q * ld);
    memset(dense, FZ_PAD_BYTE, len_q * ld);
    FZ_CHECK(spattn_mask_to_dense(m, dense, ld) == SPATTN_OK, "to_dense failed");
    for (size_t i = 0; i < len_q; i++) {
        for (size_t j = 0; j < len_k; j++)
            FZ_CHECK(dense[i * ld + j] == (truth[i * len_k + j] != 0),
                     "to_dense (%zu,%zu) = %u, expected %u", i, j, dense[i * ld + j],
                     truth[i * len_k + j] != 0);
        for (size_t j = len_k; j < ld; j++)
            FZ_CHECK(dense[i * ld + j] == FZ_PAD_BYTE, "to_dense wrote padding (%zu,%zu)", i, j);
    }
    free(dense);

    int64_t *row_ptr = malloc((len_q + 1) * sizeof *row_ptr);
    int32_t *col = malloc((nnz + 1) * sizeof *col);
    FZ_CHECK(spattn_mask_to_csr(m, row_ptr, col) == SPATTN_OK, "to_csr failed");
    FZ_CHECK(row_ptr[0] == 0, "row_ptr[0] = %lld", (long long)row_ptr[0]);
    int64_t k = 0;
    for (size_t i = 0; i < len_q; i++) {
        for (size_t j = 0; j < len_k; j++) {
            if (!truth[i * len_k + j])
                continue;
            FZ_CHECK(k < row_ptr[i + 1] && col[k] == (int32_t)j,
                     "to_csr row %zu: expected column %zu at %lld", i, j, (long long)k);
            k++;
        }
        FZ_CHECK(row_ptr[i + 1] == k, "to_csr row_ptr[%zu] = %lld, expected %lld", i + 1,
                 (long long)row_ptr[i + 1], (long long)k);
    }
    free(row_ptr);
    free(col);
}

/* and/or of `m` with a second mask `m2` (truth2) of the same shape, checked element-wise. */
static inline void fz_check_and_or(const spattn_mask *m, const uint8_t *truth,
                                   const spattn_mask *m2, const uint8_t *truth2, size_t len_q,
                                   size_t len_k)
{
    uint8_t *t = malloc(len_q * len_k);
    for (int op = 0; op < 2; op++) {
        spattn_mask *r = NULL;
        spattn_status st = op ? spattn_mask_or(m, m2, &r) : spattn_mask_and(m, m2, &r);
        FZ_CHECK(st == SPATTN_OK && r, "mask_%s: %s", op ? "or" : "and", spattn_status_string(st));
        for (size_t i = 0; i < len_q * len_k; i++)
            t[i] = op ? (truth[i] || truth2[i]) : (truth[i] && truth2[i]);
        fz_check_mask(r, len_q, len_k, t);
        spattn_mask_free(r);
    }
    free(t);
}

#endif
