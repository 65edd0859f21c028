/* The full mask check of test_mask.c (nnz, tile invariants, to_dense, to_csr and the CSR round
   trip against a len_q x len_k truth table of 0/1 bytes), for the other mask suites. `desc`
   names the case in failure messages. */
#ifndef SPATTN_TEST_MASK_CHECK_H
#define SPATTN_TEST_MASK_CHECK_H

#include <stddef.h>
#include <stdint.h>

#include "spattn.h"

void tm_check_mask(const spattn_mask *m, size_t lq, size_t lk, const uint8_t *truth,
                   const char *desc);

#endif
