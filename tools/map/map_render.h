/* Paints masks and attention maps: one panel per head, laid out in a grid, with a title, the
   key axis (horizontal) and query axis (vertical) named and numbered, and a legend: a colour
   scale for probabilities, or allowed/masked swatches for a bare mask. Masked cells are light
   grey, far from every colour of the probability scale (whose zero end is dark). Maps wider or
   taller than max_cells are max-pooled in f x f blocks, so one bright cell stays visible. */
#ifndef SPATTN_TOOLS_MAP_RENDER_H
#define SPATTN_TOOLS_MAP_RENDER_H

#include <stddef.h>
#include <stdint.h>

#include "image.h"

/* One head: its allowed pairs in CSR form and, for an attention map, one value per pair. */
typedef struct map_panel {
    const char *title;
    size_t len_q, len_k;
    const int64_t *row_ptr; /* len_q + 1 */
    const int32_t *col_idx; /* row_ptr[len_q] */
    const float *values;    /* NULL: a bare mask; else probabilities in [0, 1] */
} map_panel;

typedef enum map_scale {
    MAP_LINEAR, /* 0 .. 1 */
    MAP_LOG     /* 1e-4 .. 1, log10; smaller values get the 1e-4 colour */
} map_scale;

typedef struct map_style {
    size_t max_cells; /* larger maps are max-pooled down to at most this many cells a side */
    size_t cols;      /* panels per grid row; 0 = all in one row */
    map_scale scale;
} map_style;

/* Where a panel's map landed: cell (i, j) covers the zoom x zoom pixels at
   (x + (j / factor) * zoom, y + (i / factor) * zoom). */
typedef struct map_geom {
    size_t x, y;
    size_t zoom;   /* pixels per (pooled) cell, >= 1 */
    size_t factor; /* cells per pooled cell along each axis, >= 1 */
    size_t w, h;   /* map size in pixels */
} map_geom;

extern const rgb map_masked_rgb;  /* no allowed pair in the cell */
extern const rgb map_allowed_rgb; /* bare masks: allowed */

/* The colour of probability v on the given scale. */
rgb map_colour(float v, map_scale scale);

/* Renders n >= 1 panels (all with values, or all without) into a new image (free with
   image_free); geom, if not NULL, gets n entries. 0 on success; -1 with a reason in err. */
int map_render(const map_panel *panels, size_t n, const map_style *style, image *out,
               map_geom *geom, char *err, size_t errlen);

#endif
