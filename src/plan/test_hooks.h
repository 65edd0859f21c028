/* Test hooks: plan internals the tests and benchmarks reach (forcing one path to test both,
   turning tile pairs off, reading the work split). Not part of the public API. */
#ifndef SPATTN_PLAN_TEST_HOOKS_H
#define SPATTN_PLAN_TEST_HOOKS_H

#include "spattn.h"

typedef enum spattn_path {
    SPATTN_PATH_AUTO = 0, /* per query tile, by the kernel table's gather_below */
    SPATTN_PATH_TILES,
    SPATTN_PATH_GATHER
} spattn_path;

spattn_status spattn__plan_create_path(const spattn_shape *shape, const spattn_mask *const *masks,
                                       size_t n_masks, const spattn_options *opt, spattn_path path,
                                       spattn_plan **out);

/* Whether execute may run two query tiles in one kernel call where the ISA offers it (on by
   default; tests turn it off to check that it changes no bit). Process-wide. */
void spattn__set_tile_pairs(int on);

/* Whether kernels widen a tile's 16-bit V into a stage before the row-major P V
   (spattn_head_job.v16_stage): 1 or 0 forces it for plans created from now on, negative gives
   the choice back to the CPU (off where SPATTN_CPU_WIDEN_BESIDE_FMA, cpu.h). Bits are the same
   either way; tests run both. Process-wide. */
void spattn__set_v16_stage(int on);

/* Query tiles the plan sends down the gather path, over all (batch, head). */
size_t spattn__plan_gather_tiles(const spattn_plan *plan);

/* Rows of the plan's gather lists that start with a progression read from residue blocks
   (keyrows.h), over its masks. */
size_t spattn__plan_prog_rows(const spattn_plan *plan);

/* Overrides the most floats of residue blocks a plan gives each thread, for plans created from
   now on (0: the default again). Process-wide. */
void spattn__set_prog_max(size_t floats);

/* Query tiles the plan runs on both paths (attn_mixed), over all (batch, head), and the key
   tiles of theirs whose keys it lists (the rest go through the tile kernel). */
size_t spattn__plan_mixed_tiles(const spattn_plan *plan, size_t *listed_tiles);

/* Overrides the kernel table's mixed_pairs_per_col for plans created from now on (negative:
   the table's again; 0: no mixed query tiles). Process-wide. */
void spattn__set_mixed_pairs_per_col(double v);

/* Whether plans created from now on count mask bits with POPCNT where the CPU has it (on by
   default; tests turn it off to check that both builds of the counting passes plan the same).
   Process-wide. */
void spattn__set_plan_popcnt(int on);

/* Whether execute runs the packed decode schedule (query heads of a KV group as tile rows). */
int spattn__plan_packed(const spattn_plan *plan);

/* Work chunks of the plan; when costs != NULL, the estimated cost of each (the sum of its
   units' costs) is written there. Lets tests check the balance of the split. */
size_t spattn__plan_chunks(const spattn_plan *plan, uint64_t *costs);

#endif
