/*
 * The AVX512-BF16 vocabulary plus AMX tiles (AMX-TILE, AMX-BF16) for Q.K: S^T of 16 keys by
 * the 16 rows of a query tile is one tile product, tdpbf16ps C += A B with A the 16 K rows
 * (32 dims of bf16 each, loaded in place), B the query tile's packed bf16 dim pairs (16 pairs
 * of 16 rows: exactly the layout kernels/qk_pairs.h packs) and C the 16 x 16 floats of S^T,
 * one key per tile row, as the column form stores scores. Products of two bf16 values are
 * exact in float; the instruction rounds its sums to nearest even and takes subnormal inputs
 * and results as zero, as vdpbf16ps does.
 *
 * Tiles hold state the OS saves per thread: the tier loads its configuration when a job
 * enters its tile walk and releases the tiles when it leaves (kernels/bf16_tier.h), so
 * between calls a thread holds no tile state, and no other tile user in the process sees a
 * configuration of ours.
 */
#ifndef SPATTN_VEC_AVX512AMX_H
#define SPATTN_VEC_AVX512AMX_H

/* gcc spells the macros __AMX_TILE__, __AMX_BF16__; clang __AMXTILE__, __AMXBF16__ */
#if !(defined(__AMX_TILE__) || defined(__AMXTILE__)) ||                                            \
    !(defined(__AMX_BF16__) || defined(__AMXBF16__))
#error "vec_avx512amx.h needs -mamx-tile -mamx-bf16"
#endif

/* Q.K through tiles where dim_qk is a multiple of 32 (x86/amx_qk.h), P.V of FULL tiles
   where dim_v is a multiple of 64 (x86/amx_pv.h); not vdpbf16ps pairs for P.V, which these CPUs run
   at half the float FMA's flop rate. */
#define VEC_AMX 1

#include "x86/vec_avx512bf16.h"

/* A tile load of memory the vector code has just written. gcc's _tile_loadd and
   _tile_loadconfig are asm statements that name no memory they read (or 8 bytes of the
   configuration), so without a barrier the compiler may move those stores past the load, or
   drop them as dead (seen: operands built for a second query tile changed the first's). */
#define AMX_LOADD(t, p, stride)                                                                    \
    do {                                                                                           \
        __asm__ volatile("" ::: "memory");                                                         \
        _tile_loadd(t, p, stride);                                                                 \
    } while (0)

/* Palette 1; all eight tiles 16 rows of 64 bytes. The kernels use tiles 0-4: two C tiles (S^T
   of two query tiles), one A (16 K rows), two B (the two query tiles' pairs); the probe all. */
#define AMX_TILES 8
typedef struct amx_config {
    uint8_t palette, start_row, reserved[14];
    uint16_t bytes_per_row[16];
    uint8_t rows[16];
} amx_config;

SPATTN_ALWAYS_INLINE void vec_tier_begin(void)
{
    amx_config c __attribute__((aligned(64)));
    memset(&c, 0, sizeof c);
    c.palette = 1;
    for (int t = 0; t < AMX_TILES; t++) {
        c.bytes_per_row[t] = 64;
        c.rows[t] = 16;
    }
    __asm__ volatile("" ::: "memory"); /* see AMX_LOADD */
    _tile_loadconfig(&c);
}

SPATTN_ALWAYS_INLINE void vec_tier_end(void)
{
    _tile_release();
}

/* The tier's peak: four independent C tiles, each product 16 x 16 x 32 multiply-adds (two
   flops each), as the kernels' flops are counted. */
static float amx_dot_probe(size_t iters, double *flops)
{
    static const uint16_t ones[16 * 32] __attribute__((aligned(64))) = {0};
    float out[256] __attribute__((aligned(64)));
    vec_tier_begin();
    _tile_zero(0);
    _tile_zero(1);
    _tile_zero(2);
    _tile_zero(3);
    AMX_LOADD(4, ones, 64);
    AMX_LOADD(5, ones, 64);
    AMX_LOADD(6, ones, 64);
    AMX_LOADD(7, ones, 64);
    for (size_t it = 0; it < iters; it++) {
        _tile_dpbf16ps(0, 4, 6);
        _tile_dpbf16ps(1, 4, 7);
        _tile_dpbf16ps(2, 5, 6);
        _tile_dpbf16ps(3, 5, 7);
    }
    _tile_stored(0, out, 64);
    vec_tier_end();
    *flops = 4.0 * 16 * 16 * 32 * 2 * (double)iters;
    return out[0];
}

#endif
