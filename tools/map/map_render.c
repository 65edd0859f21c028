#include "map_render.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "font5x7.h"

#define TS 2 /* text scale: 10 x 14 pixel glyphs */
#define TEXT_H (FONT_H * TS)
#define PAD 16        /* outer margin */
#define GAP 28        /* between panels */
#define TARGET_PX 320 /* small maps are zoomed up to about this size */
#define MAX_ZOOM 16
#define BAR_W 22

const rgb map_masked_rgb = {221, 221, 221};
const rgb map_allowed_rgb = {31, 78, 150};
static const rgb white = {255, 255, 255};
static const rgb ink = {32, 32, 32};
static const rgb frame_rgb = {90, 90, 90};

/* Dark (small) to light (large); every anchor is far from the masked grey. */
static const rgb anchors[] = {
    {13, 8, 45}, {70, 30, 140}, {185, 55, 110}, {245, 135, 50}, {252, 232, 64},
};

rgb map_colour(float v, map_scale scale)
{
    double t;
    if (!(v > 0.0f))
        t = 0.0;
    else if (scale == MAP_LOG)
        t = (log10((double)v) + 4.0) / 4.0;
    else
        t = v;
    if (t < 0.0)
        t = 0.0;
    if (t > 1.0)
        t = 1.0;
    const size_t n = sizeof anchors / sizeof anchors[0];
    double x = t * (double)(n - 1);
    size_t k = (size_t)x;
    if (k >= n - 1)
        return anchors[n - 1];
    return rgb_mix(anchors[k], anchors[k + 1], x - (double)k);
}

/* Sizes of one panel's parts, in pixels relative to the panel's top-left corner. */
typedef struct panel_box {
    size_t factor, zoom, gw, gh; /* pooling, zoom, pooled grid size */
    size_t map_x, map_y, w, h;   /* map origin and panel size */
    char sub[96];                /* size line under the title */
    char tq0[24], tq1[24], tk1[24];
} panel_box;

static void measure(const map_panel *p, const map_style *st, panel_box *b)
{
    size_t big = p->len_q > p->len_k ? p->len_q : p->len_k;
    size_t mc = st->max_cells ? st->max_cells : 512;
    b->factor = (big + mc - 1) / mc;
    b->gw = (p->len_k + b->factor - 1) / b->factor;
    b->gh = (p->len_q + b->factor - 1) / b->factor;
    size_t gbig = b->gw > b->gh ? b->gw : b->gh;
    b->zoom = TARGET_PX / gbig;
    if (b->zoom < 1)
        b->zoom = 1;
    if (b->zoom > MAX_ZOOM)
        b->zoom = MAX_ZOOM;
    if (b->factor > 1)
        snprintf(b->sub, sizeof b->sub, "%zu X %zu, MAX OF %zuX%zu", p->len_q, p->len_k, b->factor,
                 b->factor);
    else
        snprintf(b->sub, sizeof b->sub, "%zu X %zu", p->len_q, p->len_k);
    snprintf(b->tq0, sizeof b->tq0, "0");
    snprintf(b->tq1, sizeof b->tq1, "%zu", p->len_q - 1);
    snprintf(b->tk1, sizeof b->tk1, "%zu", p->len_k - 1);

    /* Left: the vertical word QUERY, then right-aligned row numbers, then the map. */
    size_t tick_w = font_width(b->tq1, TS);
    b->map_x = FONT_W * TS + 8 + tick_w + 6;
    /* Top: title, size line, the key axis line (numbers and the word KEY), then the map. */
    b->map_y = 3 * (TEXT_H + 6) + 4;
    size_t mw = b->gw * b->zoom, mh = b->gh * b->zoom;
    size_t query_h = 5 * (FONT_H + 2) * TS;
    b->w = b->map_x + mw;
    size_t tw = font_width(p->title, TS);
    if (tw > b->w)
        b->w = tw;
    b->h = b->map_y + (mh > query_h ? mh : query_h);
}

static void pool(const map_panel *p, const panel_box *b, float *cells)
{
    for (size_t i = 0; i < b->gw * b->gh; i++)
        cells[i] = -1.0f;
    for (size_t i = 0; i < p->len_q; i++)
        for (int64_t n = p->row_ptr[i]; n < p->row_ptr[i + 1]; n++) {
            size_t j = (size_t)p->col_idx[n];
            float v = p->values ? p->values[n] : 1.0f;
            if (!(v >= 0.0f))
                v = 0.0f; /* still allowed, so never the masked colour */
            float *c = &cells[(i / b->factor) * b->gw + j / b->factor];
            if (v > *c)
                *c = v;
        }
}

static void draw_panel(image *im, size_t x0, size_t y0, const map_panel *p, const panel_box *b,
                       const float *cells, map_scale scale)
{
    size_t mx = x0 + b->map_x, my = y0 + b->map_y;
    size_t mw = b->gw * b->zoom, mh = b->gh * b->zoom;
    font_draw(im, x0, y0, p->title, TS, ink, b->w);
    font_draw(im, x0, y0 + TEXT_H + 6, b->sub, TS, frame_rgb, b->w);

    /* Key axis: 0 at the left end, len_k - 1 at the right end, KEY centred between. */
    size_t ky = y0 + 2 * (TEXT_H + 6);
    font_draw(im, mx, ky, "0", TS, ink, 0);
    size_t w1 = font_width(b->tk1, TS);
    if (mw >= w1 + font_width("0", TS) + 4)
        font_draw(im, mx + mw - w1, ky, b->tk1, TS, ink, 0);
    size_t kw = font_width("KEY", TS);
    size_t kx = mx + (mw > kw ? (mw - kw) / 2 : 0);
    font_draw(im, kx, ky, "KEY", TS, ink, 0);

    /* Query axis: the word stacked vertically at the far left, row numbers beside the map. */
    size_t qh = 5 * (FONT_H + 2) * TS;
    size_t qy = my + (mh > qh ? (mh - qh) / 2 : 0);
    font_draw_down(im, x0, qy, "QUERY", TS, ink);
    size_t tx = mx - 6;
    font_draw(im, tx - font_width(b->tq0, TS), my, b->tq0, TS, ink, 0);
    if (mh >= 2 * TEXT_H + 4)
        font_draw(im, tx - font_width(b->tq1, TS), my + mh - TEXT_H, b->tq1, TS, ink, 0);

    for (size_t gi = 0; gi < b->gh; gi++)
        for (size_t gj = 0; gj < b->gw; gj++) {
            float v = cells[gi * b->gw + gj];
            rgb c = v < 0.0f         ? map_masked_rgb
                    : p->values == 0 ? map_allowed_rgb
                                     : map_colour(v, scale);
            size_t px = mx + gj * b->zoom, py = my + gi * b->zoom;
            image_fill(im, px, py, b->zoom, b->zoom, c);
            if (b->zoom >= 5) {
                /* A faint seam between cells, so single cells can be counted. */
                rgb seam = rgb_mix(c, white, 0.3);
                image_fill(im, px + b->zoom - 1, py, 1, b->zoom, seam);
                image_fill(im, px, py + b->zoom - 1, b->zoom, 1, seam);
            }
        }
    image_frame(im, mx, my, mw, mh, frame_rgb);
}

static void swatch(image *im, size_t x, size_t y, rgb c, const char *label)
{
    image_fill(im, x, y, BAR_W, TEXT_H, c);
    image_frame(im, x, y, BAR_W, TEXT_H, frame_rgb);
    font_draw(im, x + BAR_W + 8, y, label, TS, ink, 0);
}

static size_t legend_width(void)
{
    return BAR_W + 8 + font_width("ALLOWED", TS);
}

/* Probability bar (top = 1) with three labelled values, then the masked swatch. Or, for
   bare masks, the two swatches. Returns the height used. */
static size_t draw_legend(image *im, size_t x, size_t y, size_t bar_h, int probs, map_scale scale)
{
    if (!probs) {
        swatch(im, x, y, map_allowed_rgb, "ALLOWED");
        swatch(im, x, y + TEXT_H + 12, map_masked_rgb, "MASKED");
        return 2 * TEXT_H + 12;
    }
    font_draw(im, x, y, "P", TS, ink, 0);
    y += TEXT_H + 8;
    for (size_t r = 0; r < bar_h; r++) {
        double t = 1.0 - (double)r / (double)(bar_h - 1);
        float v = scale == MAP_LOG ? (float)pow(10.0, 4.0 * t - 4.0) : (float)t;
        image_fill(im, x, y + r, BAR_W, 1, map_colour(v, scale));
    }
    image_frame(im, x, y, BAR_W, bar_h, frame_rgb);
    const char *top = "1", *mid = scale == MAP_LOG ? "1E-2" : "0.5",
               *bot = scale == MAP_LOG ? "1E-4" : "0";
    size_t lx = x + BAR_W + 8;
    font_draw(im, lx, y, top, TS, ink, 0);
    font_draw(im, lx, y + (bar_h - TEXT_H) / 2, mid, TS, ink, 0);
    font_draw(im, lx, y + bar_h - TEXT_H, bot, TS, ink, 0);
    swatch(im, x, y + bar_h + 16, map_masked_rgb, "MASKED");
    return TEXT_H + 8 + bar_h + 16 + TEXT_H;
}

int map_render(const map_panel *panels, size_t n, const map_style *style, image *out,
               map_geom *geom, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (n == 0) {
        snprintf(err, errlen, "nothing to draw");
        return -1;
    }
    int probs = panels[0].values != NULL;
    panel_box *box = calloc(n, sizeof *box);
    if (box == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    size_t cell_w = 0, cell_h = 0, max_cells = 0;
    for (size_t i = 0; i < n; i++) {
        measure(&panels[i], style, &box[i]);
        if (box[i].w > cell_w)
            cell_w = box[i].w;
        if (box[i].h > cell_h)
            cell_h = box[i].h;
        if (box[i].gw * box[i].gh > max_cells)
            max_cells = box[i].gw * box[i].gh;
    }
    size_t cols = style->cols == 0 || style->cols > n ? n : style->cols;
    size_t rows = (n + cols - 1) / cols;
    size_t bar_h = box[0].gh * box[0].zoom;
    if (bar_h < 120)
        bar_h = 120;
    if (bar_h > 320)
        bar_h = 320;
    size_t legend_x = PAD + cols * cell_w + (cols - 1) * GAP + GAP;
    size_t legend_h = probs ? TEXT_H + 8 + bar_h + 16 + TEXT_H : 2 * TEXT_H + 12;
    size_t w = legend_x + legend_width() + PAD;
    size_t h = PAD + rows * cell_h + (rows - 1) * GAP + PAD;
    if (h < PAD + box[0].map_y + legend_h + PAD)
        h = PAD + box[0].map_y + legend_h + PAD;

    float *cells = malloc(max_cells * sizeof *cells);
    if (cells == NULL || image_new(out, w, h, white) != 0) {
        free(cells);
        free(box);
        snprintf(err, errlen, "out of memory for a %zu x %zu image", w, h);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        size_t x0 = PAD + (i % cols) * (cell_w + GAP), y0 = PAD + (i / cols) * (cell_h + GAP);
        pool(&panels[i], &box[i], cells);
        draw_panel(out, x0, y0, &panels[i], &box[i], cells, style->scale);
        if (geom) {
            geom[i].x = x0 + box[i].map_x;
            geom[i].y = y0 + box[i].map_y;
            geom[i].zoom = box[i].zoom;
            geom[i].factor = box[i].factor;
            geom[i].w = box[i].gw * box[i].zoom;
            geom[i].h = box[i].gh * box[i].zoom;
        }
    }
    draw_legend(out, legend_x, PAD + box[0].map_y, bar_h, probs, style->scale);
    free(cells);
    free(box);
    return 0;
}
