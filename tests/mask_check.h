/* The mask suites' shared checks. tm_check_mask: the full mask check of test_mask.c (nnz, tile
   invariants, to_dense, to_csr and the CSR round trip against a len_q x len_k truth table of 0/1
   bytes), for the other mask suites. `desc` names the case in failure messages. */
#ifndef SPATTN_TEST_MASK_CHECK_H
#define SPATTN_TEST_MASK_CHECK_H

#include <stddef.h>
#include <stdint.h>

#include <check.h>

#include "spattn.h"

/* ck_assert marks a checkpoint (a pipe write) even when it passes: far too slow for checks run
   once per pair, so loops test first and fail only on a mismatch. */
#define REQUIRE(cond, ...)                                                                         \
    do {                                                                                           \
        if (!(cond))                                                                               \
            ck_abort_msg(__VA_ARGS__);                                                             \
    } while (0)

/* A non-NULL pointer value an `out` argument holds before a call that must clear it. */
#define NOT_SET ((spattn_mask *)(uintptr_t)0x1)

/* call must return `want` and leave *out NULL; the call names its out argument `o`. */
#define EXPECT(call, want)                                                                         \
    do {                                                                                           \
        spattn_mask *out_ = NOT_SET;                                                               \
        spattn_mask **o = &out_;                                                                   \
        spattn_status got_ = (call);                                                               \
        REQUIRE(got_ == (want), "%s: %s, want %s", #call, spattn_status_string(got_),              \
                spattn_status_string(want));                                                       \
        REQUIRE(out_ == NULL, "%s: *out not cleared", #call);                                      \
    } while (0)

void tm_check_mask(const spattn_mask *m, size_t lq, size_t lk, const uint8_t *truth,
                   const char *desc);

#endif
