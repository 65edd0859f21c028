/*
 * spattn_mask_from_dense and spattn_mask_from_blocks on arbitrary bytes, leading dimensions
 * and block sizes (including the extremes where ceil-division and products overflow),
 * checked against the dense truth by brute force, plus and/or of the two.
 */
#include <stdint.h>
#include <string.h>

#include "fuzz_mask_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* ceil(a / b) without the a + b - 1 overflow. */
static size_t ceil_div(size_t a, size_t b)
{
    return a / b + (a % b != 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_in in = {data, size};
    size_t len_q = fz_range(&in, 1, 70);
    size_t len_k = fz_range(&in, 1, 200);

    /* Dense: ld >= len_k, or a bad ld that must be refused before anything is read. */
    uint8_t ldsel = fz_u8(&in);
    size_t ld = len_k + ldsel % 5;
    if (ldsel >= 250)
        ld = len_k - 1 - (ldsel - 250) % len_k; /* < len_k: SPATTN_E_SHAPE */
    size_t nbytes = len_q * (ld > len_k ? ld : len_k);
    uint8_t *allowed = malloc(nbytes);
    uint8_t *truth = malloc(len_q * len_k);
    uint8_t density = fz_u8(&in);
    for (size_t t = 0; t < nbytes; t++) {
        uint8_t b = fz_u8(&in);
        allowed[t] = b < density ? (uint8_t)(b | 1) : 0;
    }
    spattn_mask *dm = (spattn_mask *)&dm;
    spattn_status st = spattn_mask_from_dense(len_q, len_k, allowed, ld, &dm);
    if (ld < len_k) {
        FZ_CHECK(st == SPATTN_E_SHAPE && dm == NULL, "ld %zu < len_k %zu gave %s", ld, len_k,
                 spattn_status_string(st));
        dm = NULL;
    } else {
        FZ_CHECK(st == SPATTN_OK && dm, "from_dense: %s", spattn_status_string(st));
        for (size_t i = 0; i < len_q; i++)
            for (size_t j = 0; j < len_k; j++)
                truth[i * len_k + j] = allowed[i * ld + j] != 0;
        fz_check_mask(dm, len_q, len_k, truth);
    }

    /* Blocks: sizes from small to SIZE_MAX; 0 must be refused. */
    size_t bq = fz_edge_size(&in, 80), bk = fz_edge_size(&in, 80);
    spattn_mask *bm = (spattn_mask *)&bm;
    if (bq == 0 || bk == 0) {
        uint8_t one = 1;
        st = spattn_mask_from_blocks(len_q, len_k, bq, bk, &one, &bm);
        FZ_CHECK(st != SPATTN_OK && bm == NULL, "block size 0 accepted");
    } else {
        size_t nbq = ceil_div(len_q, bq), nbk = ceil_div(len_k, bk);
        uint8_t *layout = malloc(nbq * nbk);
        uint8_t bdensity = fz_u8(&in);
        for (size_t t = 0; t < nbq * nbk; t++)
            layout[t] = fz_u8(&in) < bdensity ? 0x80 : 0;
        st = spattn_mask_from_blocks(len_q, len_k, bq, bk, layout, &bm);
        FZ_CHECK(st == SPATTN_OK && bm, "from_blocks(%zu, %zu, %zu, %zu): %s", len_q, len_k, bq, bk,
                 spattn_status_string(st));
        uint8_t *bt = malloc(len_q * len_k);
        for (size_t i = 0; i < len_q; i++)
            for (size_t j = 0; j < len_k; j++)
                bt[i * len_k + j] = layout[(i / bq) * nbk + j / bk] != 0;
        fz_check_mask(bm, len_q, len_k, bt);
        if (dm)
            fz_check_and_or(dm, truth, bm, bt, len_q, len_k);
        spattn_mask_free(bm);
        free(bt);
        free(layout);
    }

    spattn_mask_free(dm);
    free(allowed);
    free(truth);
    return 0;
}
