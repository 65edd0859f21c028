/*
 * spattn_mask_from_csr on arbitrary row_ptr / col_idx. An independent validator decides
 * whether the CSR is well formed; the library must agree (OK or SPATTN_E_MASK), and an
 * accepted mask must equal the input exactly (to_dense, nnz, to_csr), also after and/or with
 * a dense mask built from the same bytes.
 */
#include <stdint.h>
#include <string.h>

#include "fuzz_mask_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const int64_t rp_edges[] = {
    INT64_MAX, INT64_MIN, -1, (int64_t)1 << 62, (int64_t)UINT32_MAX + 1, INT32_MAX};
static const int32_t col_edges[] = {INT32_MAX, INT32_MIN, -1, 64, 63};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_in in = {data, size};
    size_t len_q = fz_range(&in, 1, 40);
    size_t len_k = fz_range(&in, 1, 200);
    uint8_t mode = fz_u8(&in);
    size_t cap = len_q * len_k + 1; /* no structurally valid prefix reaches further */

    int64_t *row_ptr = malloc((len_q + 1) * sizeof *row_ptr);
    int32_t *col = malloc(cap * sizeof *col);
    uint8_t *truth = calloc(len_q * len_k, 1);

    /* Mostly well-formed input built from per-row bitmaps, then optionally corrupted. */
    size_t k = 0;
    row_ptr[0] = 0;
    for (size_t i = 0; i < len_q; i++) {
        size_t density = fz_u8(&in);
        for (size_t j = 0; j < len_k; j++) {
            if ((size_t)(fz_u8(&in) % 256) < density && k < cap) {
                col[k++] = (int32_t)j;
                truth[i * len_k + j] = 1;
            }
        }
        row_ptr[i + 1] = (int64_t)k;
    }
    for (size_t t = k; t < cap; t++)
        col[t] = (int32_t)(t % (len_k + 2));

    size_t ncorrupt = mode & 3;
    for (size_t c = 0; c < ncorrupt; c++) {
        uint8_t what = fz_u8(&in);
        if (what & 1) {
            size_t at = fz_range(&in, 0, len_q);
            uint8_t how = fz_u8(&in);
            row_ptr[at] = how < 200 ? (int64_t)fz_range(&in, 0, cap - 1) - 2
                                    : rp_edges[how % (sizeof rp_edges / sizeof rp_edges[0])];
        } else if (cap > 1) {
            size_t at = fz_range(&in, 0, cap - 1);
            uint8_t how = fz_u8(&in);
            col[at] = how < 200 ? (int32_t)fz_range(&in, 0, len_k + 1) - 1
                                : col_edges[how % (sizeof col_edges / sizeof col_edges[0])];
        }
    }

    /* The validator, straight from the documented rules. */
    int valid = row_ptr[0] == 0;
    for (size_t i = 0; valid && i < len_q; i++) {
        /* Rows of at most len_k entries keep row_ptr <= cap - 1, so reading col is safe. */
        if (row_ptr[i + 1] < row_ptr[i] || row_ptr[i + 1] - row_ptr[i] > (int64_t)len_k) {
            valid = 0;
            break;
        }
        for (int64_t t = row_ptr[i]; t < row_ptr[i + 1]; t++) {
            if (col[t] < 0 || (size_t)col[t] >= len_k || (t > row_ptr[i] && col[t] <= col[t - 1]))
                valid = 0;
        }
    }
    {
        spattn_mask *m = (spattn_mask *)&m;
        spattn_status st = spattn_mask_from_csr(len_q, len_k, row_ptr, col, &m);
        if (!valid) {
            FZ_CHECK(st == SPATTN_E_MASK && m == NULL, "malformed CSR accepted: %s",
                     spattn_status_string(st));
        } else {
            FZ_CHECK(st == SPATTN_OK && m, "valid CSR rejected: %s", spattn_status_string(st));
            memset(truth, 0, len_q * len_k);
            for (size_t i = 0; i < len_q; i++)
                for (int64_t t = row_ptr[i]; t < row_ptr[i + 1]; t++)
                    truth[i * len_k + (size_t)col[t]] = 1;
            fz_check_mask(m, len_q, len_k, truth);

            uint8_t *other = malloc(len_q * len_k);
            for (size_t t = 0; t < len_q * len_k; t++)
                other[t] = fz_u8(&in) & 1;
            spattn_mask *m2 = NULL;
            FZ_CHECK(spattn_mask_from_dense(len_q, len_k, other, len_k, &m2) == SPATTN_OK,
                     "from_dense failed");
            fz_check_and_or(m, truth, m2, other, len_q, len_k);
            spattn_mask_free(m2);
            free(other);
            spattn_mask_free(m);
        }
    }
    free(row_ptr);
    free(col);
    free(truth);
    return 0;
}
