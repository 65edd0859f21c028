/*
 * Turning libFuzzer's bytes into parameters. Running out of bytes yields zeros, so every
 * input is usable and short inputs explore small cases first. The "edge" pickers mix small
 * values with the extremes where size arithmetic breaks.
 */
#ifndef SPATTN_FUZZ_INPUT_H
#define SPATTN_FUZZ_INPUT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

typedef struct fz_in {
    const uint8_t *p;
    size_t n;
} fz_in;

static inline uint8_t fz_u8(fz_in *in)
{
    if (in->n == 0)
        return 0;
    in->n--;
    return *in->p++;
}

static inline uint64_t fz_u64(fz_in *in)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | fz_u8(in);
    return v;
}

/* [lo, hi], from one or two bytes. */
static inline size_t fz_range(fz_in *in, size_t lo, size_t hi)
{
    size_t span = hi - lo + 1;
    size_t v = fz_u8(in);
    if (span > 256)
        v = v << 8 | fz_u8(in);
    return lo + v % span;
}

/* A small value most of the time, else one of the values that break careless arithmetic. */
static inline size_t fz_edge_size(fz_in *in, size_t small_max)
{
    static const size_t edges[] = {
        0,
        1,
        2,
        63,
        64,
        65,
        (size_t)INT32_MAX,
        (size_t)INT32_MAX + 1,
        (size_t)UINT32_MAX,
        (size_t)1 << 62,
        SIZE_MAX / 2,
        SIZE_MAX / 2 + 1,
        SIZE_MAX - 1,
        SIZE_MAX,
        ((size_t)1 << 63) + 1,
    };
    uint8_t sel = fz_u8(in);
    if (sel < 200)
        return fz_range(in, 0, small_max);
    return edges[sel % (sizeof edges / sizeof edges[0])];
}

#define FZ_CHECK(cond, ...)                                                                        \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: check failed: %s\n  ", __FILE__, __LINE__, #cond);             \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fprintf(stderr, "\n");                                                                 \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#endif
