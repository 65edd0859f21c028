/* Row key lists for the gather path, built by the plan.
 *
 * A row that allows a few scattered keys costs more to find in the tile mask (a 128-byte
 * tile of bits per 64 keys, most of them zero) than to compute: walking a 4096-key row with
 * 16 allowed keys touches 64 tiles. The plan lists, once, the allowed keys of every row in
 * a query tile that takes the gather path, so the kernel reads 4 bytes per allowed key and
 * knows each row's keys ahead of time (and can prefetch them). */
#ifndef SPATTN_KEYROWS_H
#define SPATTN_KEYROWS_H

#include <stddef.h>
#include <stdint.h>

#include "mask/mask_impl.h"

typedef struct spattn_keyrows {
    size_t len_q;
    size_t *off;    /* len_q + 1: row i's keys are keys[off[i] .. off[i + 1]) */
    uint32_t *keys; /* increasing within a row; rows of tiles not gathered are empty */
    size_t longest; /* keys of the longest row */
    /* NULL, or one flag per stored tile of the mask (m->tiles): 1 = in a mixed query tile,
       the tile goes through attn_mixed's row columns, and its tile walk skips it. */
    uint8_t *tile_gather;
    /* Strided rows. When many rows begin with a progression of keys c, c + stride,
       c + 2 stride, ... (c < stride: the Sparse Transformer's strided and fixed patterns,
       dilated windows), rows of one residue c share those keys, but in K they lie a
       power-of-two multiple of 256 bytes apart and fall into the same few cache sets. The
       gather kernel then copies each residue's keys once into a contiguous block of its
       scratch (prog_floats), reused by every row of that residue. stride 0: none. */
    size_t prog_stride;
    size_t prog_len; /* longest progression of a row: the rows of a residue's block */
    uint32_t *prog;  /* len_q: keys of row i's list that are its progression (0: none) */
    /* Most listed rows keep their keys within half the gather stage's span (a narrow window):
       16-bit K and V of such rows are widened once per run of rows (kernels/gather_stage.h). */
    int local;
} spattn_keyrows;

/* The gather kernel takes rows with progressions in batches of at most SPATTN_PROG_BATCH
   rows (gather_prog.h); their P V sums take scratch (spattn__keyrows_prog_floats). */
#define SPATTN_PROG_BATCH 512

/* Zeroed floats before the gather kernel's 16 x 16 transpose tile, which its residue copy
   reads (and discards) before the tile's first row (gather_prog.h, prog_kt_block). */
#define SPATTN_PROG_TT_PAD 16

/* Keys the gather path's stage holds for rows of dim_qk + dim_v elements: 256, fewer where
   their rows would take more than 2^16 floats (wide heads), at least 16. */
static inline size_t spattn__stage_keys(size_t dim_qk, size_t dim_v)
{
    const size_t k = 65536 / ((dim_qk + 15) / 16 * 16 + (dim_v + 15) / 16 * 16);
    return k > 256 ? 256 : k < 16 ? 16 : k;
}

/* Sets kr->local for rows of dim_qk + dim_v elements. */
void spattn__keyrows_mark_local(spattn_keyrows *kr, size_t dim_qk, size_t dim_v);

/* What a query tile's gather flag (spattn_schedule.gather) says. */
enum { SPATTN_QT_TILES = 0, SPATTN_QT_GATHER = 1, SPATTN_QT_MIXED = 2 };

/* Lists the allowed keys of the rows of every query tile qt of m with gather[qt] ==
   SPATTN_QT_GATHER, and keeps tile_gather (NULL, or one flag per stored tile, taken over by
   kr) for the SPATTN_QT_MIXED ones, whose kernel reads the flagged tiles' bits itself. On
   failure (out of memory) returns SPATTN_E_NOMEM with *kr zeroed (tile_gather freed); free
   with spattn__keyrows_free. */
spattn_status spattn__keyrows_build(const spattn_mask *m, const uint8_t *gather,
                                    uint8_t *tile_gather, spattn_keyrows *kr);
void spattn__keyrows_free(spattn_keyrows *kr);
/* Forgets kr's progressions: its rows are then gathered as any others. */
void spattn__keyrows_drop_prog(spattn_keyrows *kr);

/* The rows of query tiles qt .. qt + nqt - 1 (nqt >= 1, all within len_q): *i0 .. the
   return value. */
static inline size_t spattn__keyrows_span(const spattn_keyrows *kr, size_t qt, size_t nqt,
                                          size_t *i0)
{
    *i0 = qt * SPATTN_TQ;
    return kr->len_q - *i0 < nqt * SPATTN_TQ ? kr->len_q : *i0 + nqt * SPATTN_TQ;
}

/* Keys of the longest row of lists kr[0 .. n). */
static inline size_t spattn__keyrows_longest(const spattn_keyrows *kr, size_t n)
{
    size_t most = 0;
    for (size_t i = 0; i < n; i++)
        most = kr[i].longest > most ? kr[i].longest : most;
    return most;
}

/* Floats of scratch a gather call over lists kr[0 .. n) needs for their residue blocks
   (beyond what the kernel's scratch_floats counts): per residue a K block of dim_qk rows of
   round16(prog_len) floats and a V block of prog_len rows of round16(dim_v) floats; 16 rows
   of round16(dim_qk) floats and a 16 x 16 tile (after SPATTN_PROG_TT_PAD zeros) to stage K
   rows and Q rows in; the P V sums of a batch's progressions; and, as uint32, two counters
   per residue, each batch row's score offset and place in its residue's list, and the lists'
   bounds. */
static inline size_t spattn__keyrows_prog_floats(const spattn_keyrows *kr, size_t n, size_t dim_qk,
                                                 size_t dim_v)
{
    size_t most = 0;
    for (size_t i = 0; i < n; i++) {
        const size_t s = kr[i].prog_stride, len = kr[i].prog_len, dq16 = (dim_qk + 15) / 16 * 16,
                     dv16 = (dim_v + 15) / 16 * 16,
                     f = s * (dim_qk * ((len + 15) / 16 * 16) + len * dv16) + 16 * dq16 +
                         SPATTN_PROG_TT_PAD + 256 + SPATTN_PROG_BATCH * dv16 +
                         (3 * s + 1 + 2 * SPATTN_PROG_BATCH + 15) / 16 * 16;
        most = s != 0 && f > most ? f : most;
    }
    return most;
}

/* Allowed keys of row i (n of them). */
static inline const uint32_t *spattn__keyrows_row(const spattn_keyrows *kr, size_t i, size_t *n)
{
    *n = kr->off[i + 1] - kr->off[i];
    return kr->keys + kr->off[i];
}

#endif
