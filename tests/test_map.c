/* spattn-map's pieces: the .npy reader (well-formed files by hand, malformed headers refused
   with a reason), the renderer (PNG decoded back with libpng, pixels of known allowed and
   masked cells checked, max pooling keeps a single bright cell), and the tool itself (exit
   codes and messages). Built only with libpng; otherwise the suite is empty. */
#define _POSIX_C_SOURCE 200809L

#include <check.h>

#include "test_util.h"

#if defined(SPATTN_HAVE_MAPTOOLS)

#include <math.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "font5x7.h"
#include "map_render.h"
#include "npy.h"
#include "png_out.h"

/* ---- .npy images built by hand --------------------------------------------------------- */

typedef struct bytes {
    unsigned char *p;
    size_t n;
} bytes;

/* A version-1.0 (or 2.0) file: magic, version, length, the header padded to 64, payload. */
static bytes npy_image(int major, const char *dict, const void *payload, size_t payload_n)
{
    size_t pre = major == 1 ? 10 : 12, dl = strlen(dict);
    size_t hl = dl + 1;
    while ((pre + hl) % 64 != 0)
        hl++;
    bytes b;
    b.n = pre + hl + payload_n;
    b.p = malloc(b.n);
    memcpy(b.p, "\x93NUMPY", 6);
    b.p[6] = (unsigned char)major;
    b.p[7] = 0;
    b.p[8] = (unsigned char)(hl & 0xff);
    b.p[9] = (unsigned char)(hl >> 8);
    if (major != 1) {
        b.p[10] = 0;
        b.p[11] = 0;
    }
    memcpy(b.p + pre, dict, dl);
    memset(b.p + pre + dl, ' ', hl - dl - 1);
    b.p[pre + hl - 1] = '\n';
    if (payload_n)
        memcpy(b.p + pre + hl, payload, payload_n);
    return b;
}

static void write_file(const char *path, const bytes *b)
{
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(b->p, 1, b->n, f), b->n);
    ck_assert_int_eq(fclose(f), 0);
}

START_TEST(npy_reads_valid_files)
{
    const float v[6] = {1.5f, -2.0f, 0.25f, 3.0f, 1e-3f, -0.0f};
    bytes b =
        npy_image(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", v, sizeof v);
    npy_array a;
    char err[256];
    ck_assert_int_eq(npy_parse(b.p, b.n, &a, err, sizeof err), 0);
    ck_assert_int_eq(a.dtype, NPY_F32);
    ck_assert_int_eq(a.ndim, 2);
    ck_assert(a.shape[0] == 2 && a.shape[1] == 3 && a.count == 6);
    ck_assert(memcmp(a.data, v, sizeof v) == 0);
    npy_free(&a);
    free(b.p);

    /* Version 2, key order changed, no trailing comma, bool, 1-d and 3-d shapes. */
    const unsigned char m[4] = {1, 0, 0, 1};
    b = npy_image(2, "{'shape': (4,), 'fortran_order': False, 'descr': '|b1'}", m, 4);
    ck_assert_int_eq(npy_parse(b.p, b.n, &a, err, sizeof err), 0);
    ck_assert(a.dtype == NPY_BOOL && a.ndim == 1 && a.shape[0] == 4);
    ck_assert(memcmp(a.data, m, 4) == 0);
    npy_free(&a);
    free(b.p);
    b = npy_image(1, "{'descr': '|u1', 'fortran_order': False, 'shape': (1, 2, 2), }", m, 4);
    ck_assert_int_eq(npy_parse(b.p, b.n, &a, err, sizeof err), 0);
    ck_assert(a.dtype == NPY_U8 && a.ndim == 3 && a.count == 4);
    npy_free(&a);
    free(b.p);
}
END_TEST

typedef struct bad_case {
    int major;
    const char *dict;
    size_t payload;  /* bytes of payload to append */
    const char *why; /* expected in the message */
} bad_case;

START_TEST(npy_refuses_malformed)
{
    static const bad_case cases[] = {
        {1, "{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }", 8, "big-endian"},
        {1, "{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }", 16, "not supported"},
        {1, "{'descr': '<i4', 'fortran_order': False, 'shape': (2,), }", 8, "not supported"},
        {1, "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }", 16, "fortran_order"},
        {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2), }", 8, "not a tuple"},
        {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (-2,), }", 8, "shape"},
        {1, "{'descr': '<f4', 'fortran_order': False, 'shape': [2], }", 8, "not a tuple"},
        {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, x), }", 8, "shape"},
        {1, "{'descr': '<f4', 'fortran_order': False}", 8, "shape"},
        {1, "{'descr': '<f4', 'shape': (2,)}", 8, "fortran_order"},
        {1, "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,)}", 8, "structured"},
        {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'extra': 1}", 8,
         "unexpected header key"},
        {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }", 8, "truncated"},
        {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }", 8, "trailing"},
        {1, "{'descr': '<f4' 'fortran_order': False, 'shape': (2,), }", 8, "malformed"},
        {1, "['descr', '<f4']", 8, "not a dict"},
        {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), } junk", 8, "junk"},
        {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999999,), }", 8,
         "shape"},
        {4, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", 8, "version 4"},
    };
    unsigned char zeros[16] = {0};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        bytes b = npy_image(cases[c].major == 4 ? 1 : cases[c].major, cases[c].dict, zeros,
                            cases[c].payload);
        if (cases[c].major == 4)
            b.p[6] = 4;
        npy_array a;
        char err[256] = "";
        ck_assert_int_eq(npy_parse(b.p, b.n, &a, err, sizeof err), -1);
        ck_assert_msg(strstr(err, cases[c].why) != NULL, "case %zu: '%s' lacks '%s'", c, err,
                      cases[c].why);
        ck_assert_ptr_null(a.data);
        free(b.p);
    }

    /* Damage below the dict: magic, length past the end, missing newline, non-ASCII. */
    bytes b = npy_image(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", zeros, 8);
    npy_array a;
    char err[256];
    b.p[1] = 'X';
    ck_assert_int_eq(npy_parse(b.p, b.n, &a, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "magic"));
    b.p[1] = 'N';
    b.p[9] = 0x7f;
    ck_assert_int_eq(npy_parse(b.p, b.n, &a, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "past the end"));
    b.p[9] = 0;
    size_t nl = b.n - 8 - 1; /* the header's last byte, before 8 bytes of payload */
    ck_assert_int_eq(b.p[nl], '\n');
    b.p[nl] = ' ';
    ck_assert_int_eq(npy_parse(b.p, b.n, &a, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "newline"));
    b.p[nl] = '\n';
    b.p[20] = 0xc3;
    ck_assert_int_eq(npy_parse(b.p, b.n, &a, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "non-ASCII"));
    ck_assert_int_eq(npy_parse(b.p, 5, &a, err, sizeof err), -1);
    free(b.p);

    ck_assert_int_eq(npy_read("/nonexistent/dir/q.npy", &a, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "/nonexistent/dir/q.npy"));
}
END_TEST

/* ---- PNG decoding ---------------------------------------------------------------------- */

typedef struct decoded {
    size_t w, h;
    unsigned char *px;
} decoded;

static decoded decode_png(const char *path)
{
    png_image img;
    memset(&img, 0, sizeof img);
    img.version = PNG_IMAGE_VERSION;
    ck_assert_msg(png_image_begin_read_from_file(&img, path) != 0, "%s", img.message);
    img.format = PNG_FORMAT_RGB;
    decoded d = {img.width, img.height, malloc(PNG_IMAGE_SIZE(img))};
    ck_assert_msg(png_image_finish_read(&img, NULL, d.px, 0, NULL) != 0, "%s", img.message);
    return d;
}

static rgb px_at(const decoded *d, size_t x, size_t y)
{
    TU_CHECK(x < d->w && y < d->h);
    const unsigned char *p = d->px + 3 * (y * d->w + x);
    rgb c = {p[0], p[1], p[2]};
    return c;
}

static int colour_dist(rgb a, rgb b)
{
    return abs(a.r - b.r) + abs(a.g - b.g) + abs(a.b - b.b);
}

static char tmpdir[64];

static void make_tmpdir(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/spattn-map-test-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void remove_tmpdir(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    ck_assert_int_eq(system(cmd), 0);
}

static rgb cell_px(const decoded *d, const map_geom *g, size_t i, size_t j)
{
    size_t x = g->x + (j / g->factor) * g->zoom + (g->zoom - 1) / 2;
    size_t y = g->y + (i / g->factor) * g->zoom + (g->zoom - 1) / 2;
    return px_at(d, x, y);
}

START_TEST(render_mask_pixels)
{
    make_tmpdir();
    /* 9 x 13, pattern chosen here: (i + 2j) % 5 == 0 allowed, plus row 4 entirely empty. */
    enum { LQ = 9, LK = 13 };
    unsigned char d[LQ * LK];
    for (size_t i = 0; i < LQ; i++)
        for (size_t j = 0; j < LK; j++)
            d[i * LK + j] = i != 4 && (i + 2 * j) % 5 == 0;
    int64_t rp[LQ + 1];
    int32_t ci[LQ * LK];
    tu_dense_to_csr(d, LQ, LK, rp, ci);
    map_panel p = {"TEST MASK", LQ, LK, rp, ci, NULL};
    map_style st = {512, 0, MAP_LINEAR};
    image im;
    map_geom g;
    char err[256];
    ck_assert_int_eq(map_render(&p, 1, &st, &im, &g, err, sizeof err), 0);
    ck_assert(g.factor == 1 && g.zoom >= 5);
    ck_assert(g.w == LK * g.zoom && g.h == LQ * g.zoom);
    char path[128];
    snprintf(path, sizeof path, "%s/mask.png", tmpdir);
    ck_assert_int_eq(png_write(path, &im, err, sizeof err), 0);

    decoded dec = decode_png(path);
    ck_assert_uint_eq(dec.w, im.w);
    ck_assert_uint_eq(dec.h, im.h);
    for (size_t i = 0; i < LQ; i++)
        for (size_t j = 0; j < LK; j++) {
            rgb c = cell_px(&dec, &g, i, j);
            rgb want = d[i * LK + j] ? map_allowed_rgb : map_masked_rgb;
            ck_assert_msg(rgb_eq(c, want), "cell (%zu,%zu) = %d,%d,%d", i, j, c.r, c.g, c.b);
        }
    /* The frame sits just outside the map; labels left something non-white above it. */
    ck_assert(!rgb_eq(px_at(&dec, g.x - 1, g.y - 1), (rgb){255, 255, 255}));
    int inked = 0;
    for (size_t y = 0; y < g.y - 2; y++)
        for (size_t x = 0; x < dec.w; x++)
            inked += colour_dist(px_at(&dec, x, y), (rgb){255, 255, 255}) > 200;
    ck_assert_int_gt(inked, 100);
    free(dec.px);
    image_free(&im);

    /* An unwritable path is a clear error, not a crash. */
    ck_assert_int_eq(map_render(&p, 1, &st, &im, &g, err, sizeof err), 0);
    ck_assert_int_eq(png_write("/nonexistent/dir/x.png", &im, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "/nonexistent/dir/x.png"));
    image_free(&im);
    remove_tmpdir();
}
END_TEST

START_TEST(render_probability_pixels)
{
    make_tmpdir();
    /* 4 x 6: row i allows j <= i + 2; values chosen so one is near zero. */
    enum { LQ = 4, LK = 6 };
    unsigned char d[LQ * LK];
    for (size_t i = 0; i < LQ; i++)
        for (size_t j = 0; j < LK; j++)
            d[i * LK + j] = j <= i + 2;
    int64_t rp[LQ + 1];
    int32_t ci[LQ * LK];
    tu_dense_to_csr(d, LQ, LK, rp, ci);
    float vals[LQ * LK];
    for (int64_t n = 0; n < rp[LQ]; n++)
        vals[n] = (float)((n * 37) % 11) / 10.0f;
    vals[0] = 1e-7f;
    const map_scale scales[2] = {MAP_LINEAR, MAP_LOG};
    for (int s = 0; s < 2; s++) {
        map_panel p = {"HEAD 0", LQ, LK, rp, ci, vals};
        map_style st = {512, 0, scales[s]};
        image im;
        map_geom g;
        char err[256], path[128];
        ck_assert_int_eq(map_render(&p, 1, &st, &im, &g, err, sizeof err), 0);
        snprintf(path, sizeof path, "%s/p%d.png", tmpdir, s);
        ck_assert_int_eq(png_write(path, &im, err, sizeof err), 0);
        decoded dec = decode_png(path);
        ck_assert(dec.w == im.w && dec.h == im.h);
        int64_t n = 0;
        for (size_t i = 0; i < LQ; i++)
            for (size_t j = 0; j < LK; j++) {
                rgb c = cell_px(&dec, &g, i, j);
                if (!d[i * LK + j]) {
                    ck_assert(rgb_eq(c, map_masked_rgb));
                    continue;
                }
                ck_assert(rgb_eq(c, map_colour(vals[n], scales[s])));
                /* No probability, however small, looks like a masked cell. */
                ck_assert_int_gt(colour_dist(c, map_masked_rgb), 150);
                n++;
            }
        /* The scale's ends are far apart, and the colour bar shows the top colour. */
        ck_assert_int_gt(colour_dist(map_colour(0.0f, scales[s]), map_colour(1.0f, scales[s])),
                         300);
        int found_top = 0;
        for (size_t y = 0; y < dec.h; y++)
            for (size_t x = g.x + g.w + 1; x < dec.w; x++)
                found_top |= rgb_eq(px_at(&dec, x, y), map_colour(1.0f, scales[s]));
        ck_assert(found_top);
        free(dec.px);
        image_free(&im);
    }
    remove_tmpdir();
}
END_TEST

/* A 1000 x 1500 map pooled to at most 100 cells a side: one bright pair among tiny ones must
   light its pooled cell; a block with no allowed pair stays masked. */
START_TEST(render_pooling_keeps_bright_cell)
{
    enum { LQ = 1000, LK = 1500 };
    int64_t *rp = malloc((LQ + 1) * sizeof *rp);
    int32_t *ci = malloc(LQ * 8 * sizeof *ci);
    float *v = malloc(LQ * 8 * sizeof *v);
    int64_t n = 0;
    rp[0] = 0;
    for (size_t i = 0; i < LQ; i++) {
        /* Allowed: a band j in [i, i + 4), plus (537, 1291) alone far from the band. */
        for (size_t j = i; j < i + 4 && j < LK; j++) {
            ci[n] = (int32_t)j;
            v[n++] = 1e-6f;
        }
        if (i == 537) {
            ci[n] = 1291;
            v[n++] = 1.0f;
        }
        rp[i + 1] = n;
    }
    map_panel p = {"BIG", LQ, LK, rp, ci, v};
    map_style st = {100, 0, MAP_LINEAR};
    image im;
    map_geom g;
    char err[256];
    ck_assert_int_eq(map_render(&p, 1, &st, &im, &g, err, sizeof err), 0);
    ck_assert_uint_eq(g.factor, 15);
    ck_assert_uint_eq(g.w, ((LK + 14) / 15) * g.zoom);
    ck_assert(rgb_eq(image_get(&im, g.x + (1291 / 15) * g.zoom, g.y + (537 / 15) * g.zoom),
                     map_colour(1.0f, MAP_LINEAR)));
    ck_assert(rgb_eq(image_get(&im, g.x + (600 / 15) * g.zoom, g.y + (600 / 15) * g.zoom),
                     map_colour(1e-6f, MAP_LINEAR)));
    ck_assert(rgb_eq(image_get(&im, g.x + (100 / 15) * g.zoom, g.y + (900 / 15) * g.zoom),
                     map_masked_rgb));
    image_free(&im);
    free(rp);
    free(ci);
    free(v);
}
END_TEST

START_TEST(render_grid_layout)
{
    enum { L = 20 };
    unsigned char d[L * L];
    for (size_t i = 0; i < L * L; i++)
        d[i] = (i % L) <= (i / L);
    int64_t rp[L + 1];
    int32_t ci[L * L];
    tu_dense_to_csr(d, L, L, rp, ci);
    map_panel p[3] = {{"HEAD 0", L, L, rp, ci, NULL},
                      {"HEAD 1", L, L, rp, ci, NULL},
                      {"HEAD 2", L, L, rp, ci, NULL}};
    map_style st = {512, 2, MAP_LINEAR};
    image im;
    map_geom g[3];
    char err[256];
    ck_assert_int_eq(map_render(p, 3, &st, &im, g, err, sizeof err), 0);
    ck_assert(g[1].y == g[0].y && g[1].x > g[0].x + g[0].w);
    ck_assert(g[2].x == g[0].x && g[2].y > g[0].y + g[0].h);
    ck_assert(g[2].x + g[2].w < im.w && g[2].y + g[2].h < im.h);
    for (int k = 0; k < 3; k++) {
        ck_assert(rgb_eq(image_get(&im, g[k].x + 1, g[k].y + g[k].h - 2), map_allowed_rgb));
        ck_assert(rgb_eq(image_get(&im, g[k].x + g[k].w - 2, g[k].y + 1), map_masked_rgb));
    }
    image_free(&im);
    st.cols = 0; /* one row */
    ck_assert_int_eq(map_render(p, 3, &st, &im, g, err, sizeof err), 0);
    ck_assert(g[0].y == g[1].y && g[1].y == g[2].y && g[2].x > g[1].x);
    image_free(&im);
}
END_TEST

START_TEST(font_glyphs_distinct)
{
    /* Every drawable character differs from every other, and unknown ones draw as '?'. */
    const char *set = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,:;-_=+()/<>%#?!'";
    size_t n = strlen(set);
    for (size_t a = 0; a < n; a++)
        for (size_t b = a + 1; b < n; b++) {
            int differ = 0;
            for (int r = 0; r < FONT_H; r++)
                for (int c = 0; c < FONT_W; c++)
                    differ |= font_pixel(set[a], c, r) != font_pixel(set[b], c, r);
            ck_assert_msg(differ, "'%c' and '%c' look the same", set[a], set[b]);
        }
    for (int r = 0; r < FONT_H; r++)
        for (int c = 0; c < FONT_W; c++) {
            ck_assert_int_eq(font_pixel('~', c, r), font_pixel('?', c, r));
            ck_assert_int_eq(font_pixel('q', c, r), font_pixel('Q', c, r));
        }
    ck_assert_uint_eq(font_width("AB", 2), 22);
}
END_TEST

/* ---- the tool -------------------------------------------------------------------------- */

/* Runs spattn-map with `args`; returns its exit status, stderr in err. */
static int run_tool(const char *args, char *err, size_t errlen)
{
    char cmd[1024], errpath[128];
    snprintf(errpath, sizeof errpath, "%s/stderr.txt", tmpdir);
    snprintf(cmd, sizeof cmd, "'%s' %s >/dev/null 2>'%s'", SPATTN_MAP_EXE, args, errpath);
    int st = system(cmd);
    ck_assert_msg(st != -1 && WIFEXITED(st), "could not run %s", SPATTN_MAP_EXE);
    FILE *f = fopen(errpath, "r");
    ck_assert_ptr_nonnull(f);
    size_t got = fread(err, 1, errlen - 1, f);
    err[got] = '\0';
    fclose(f);
    return WEXITSTATUS(st);
}

static void write_f32(const char *path, size_t heads, size_t len, size_t dim, tu_rng *r,
                      float poison)
{
    size_t n = heads * len * dim;
    float *v = malloc(n * sizeof *v);
    for (size_t i = 0; i < n; i++)
        v[i] = tu_normal(r);
    v[n / 2] = poison != 0.0f ? poison : v[n / 2];
    char dict[128];
    snprintf(dict, sizeof dict,
             "{'descr': '<f4', 'fortran_order': False, 'shape': (%zu, %zu, %zu), }", heads, len,
             dim);
    bytes b = npy_image(1, dict, v, n * sizeof *v);
    write_file(path, &b);
    free(b.p);
    free(v);
}

typedef struct tool_case {
    const char *args; /* %s = the temporary directory */
    int status;
    const char *why; /* expected in stderr, or NULL */
} tool_case;

START_TEST(tool_accepts_and_refuses)
{
    if (access(SPATTN_MAP_EXE, X_OK) != 0)
        ck_abort_msg("%s is not built", SPATTN_MAP_EXE);
    make_tmpdir();
    tu_rng r = {0x3a9u};
    char path[256];
    snprintf(path, sizeof path, "%s/q.npy", tmpdir);
    write_f32(path, 4, 40, 16, &r, 0.0f);
    snprintf(path, sizeof path, "%s/k.npy", tmpdir);
    write_f32(path, 2, 50, 16, &r, 0.0f);
    snprintf(path, sizeof path, "%s/k3.npy", tmpdir);
    write_f32(path, 3, 50, 16, &r, 0.0f);
    snprintf(path, sizeof path, "%s/knan.npy", tmpdir);
    write_f32(path, 2, 50, 16, &r, NAN);
    unsigned char m[2 * 40 * 50];
    for (size_t i = 0; i < sizeof m; i++)
        m[i] = (i * 7) % 3 == 0;
    bytes b = npy_image(1, "{'descr': '|b1', 'fortran_order': False, 'shape': (2, 40, 50), }", m,
                        sizeof m);
    snprintf(path, sizeof path, "%s/m.npy", tmpdir);
    write_file(path, &b);
    free(b.p);
    b = npy_image(1, "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }", m, 16);
    snprintf(path, sizeof path, "%s/fortran.npy", tmpdir);
    write_file(path, &b);
    free(b.p);

    static const tool_case cases[] = {
        {"-o %s/a.png --mask strided:8 --len 64", 0, NULL},
        {"-o %s/a.png --mask bigbird:8,1,1,2,7 --len-q 64 --len-k 96", 0, NULL},
        {"-o %s/a.png --mask longformer:4,4,0,31 --len 64", 0, NULL},
        {"-o %s/a.png --mask %s/m.npy --grid", 0, NULL},
        {"-o %s/a.png --q %s/q.npy --k %s/k.npy --mask causal --grid --cols 2", 0, NULL},
        {"-o %s/a.png --q %s/q.npy --k %s/k.npy --head 3 --log --isa scalar", 0, NULL},
        {"-o %s/a.png --q %s/q.npy --k %s/k.npy --mask %s/m.npy --head 1", 1, "heads but Q"},
        {"-o %s/a.png --mask strided:0 --len 64", 2, "out of range"},
        {"-o %s/a.png --mask spiral:3 --len 64", 2, "unknown pattern"},
        {"-o %s/a.png --mask window:3 --len 64", 2, "window:LEFT,RIGHT"},
        {"-o %s/a.png --mask strided:x --len 64", 2, "not a non-negative integer"},
        {"-o %s/a.png --mask causal", 2, "--len"},
        {"-o %s/a.png --mask causal --len 0", 2, "lengths must be"},
        {"-o %s/a.txt --mask causal --len 8", 2, ".png"},
        {"--mask causal --len 8", 2, "no output"},
        {"-o %s/a.png --mask causal --len 8 --bogus", 2, "unknown argument"},
        {"-o %s/a.png --q %s/q.npy", 2, "both --q and --k"},
        {"-o %s/a.png --q %s/q.npy --k %s/k.npy --v %s/k.npy", 2, "V does not change"},
        {"-o %s/a.png --q %s/q.npy --k %s/k3.npy", 1, "must divide"},
        {"-o %s/a.png --q %s/q.npy --k %s/knan.npy", 1, "NaN"},
        {"-o %s/a.png --q %s/q.npy --k %s/k.npy --head 4", 2, "0 .. 3"},
        {"-o %s/a.png --q %s/q.npy --k %s/k.npy --head 1 --grid", 2, "--grid"},
        {"-o %s/a.png --mask %s/fortran.npy", 1, "fortran_order"},
        {"-o %s/a.png --mask %s/missing.npy", 1, "missing.npy"},
        {"-o %s/a.png --mask %s/q.npy", 1, "bool or uint8"},
        {"-o /nonexistent/dir/a.png --mask causal --len 8", 1, "/nonexistent/dir/a.png"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        char args[768], err[1024];
        snprintf(args, sizeof args, cases[c].args, tmpdir, tmpdir, tmpdir, tmpdir);
        snprintf(path, sizeof path, "%s/a.png", tmpdir);
        remove(path);
        int st = run_tool(args, err, sizeof err);
        ck_assert_msg(st == cases[c].status, "'%s' exited %d, want %d: %s", args, st,
                      cases[c].status, err);
        if (cases[c].why)
            ck_assert_msg(strstr(err, cases[c].why) != NULL, "'%s': '%s' lacks '%s'", args, err,
                          cases[c].why);
        if (st == 0) {
            decoded d = decode_png(path);
            ck_assert(d.w > 100 && d.h > 100);
            free(d.px);
        } else {
            ck_assert_msg(access(path, F_OK) != 0, "'%s' failed but left an image", args);
        }
    }
    remove_tmpdir();
}
END_TEST

Suite *suite_map(void);
Suite *suite_map(void)
{
    Suite *s = suite_create("map");
    TCase *tc = tcase_create("npy");
    tcase_add_test(tc, npy_reads_valid_files);
    tcase_add_test(tc, npy_refuses_malformed);
    suite_add_tcase(s, tc);
    tc = tcase_create("render");
    tcase_add_test(tc, render_mask_pixels);
    tcase_add_test(tc, render_probability_pixels);
    tcase_add_test(tc, render_pooling_keeps_bright_cell);
    tcase_add_test(tc, render_grid_layout);
    tcase_add_test(tc, font_glyphs_distinct);
    suite_add_tcase(s, tc);
    tc = tcase_create("tool");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, tool_accepts_and_refuses);
    suite_add_tcase(s, tc);
    return s;
}

#else /* no libpng: spattn-map and its helpers are not built */

Suite *suite_map(void);
Suite *suite_map(void)
{
    return suite_create("map");
}

#endif
