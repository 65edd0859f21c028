/* spattn-map: draws a sparsity mask, or the attention map of .npy Q/K inputs under a mask, as
   a PNG. See docs/maps.md. Exit status: 0 done, 1 failed (file, memory, library), 2 usage. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "map_render.h"
#include "npy.h"
#include "png_out.h"
#include "spattn.h"

#define MAX_PATTERN_LEN ((size_t)1 << 16)
/* Allowed pairs the tool will hold in memory (CSR plus values: 8 bytes each). */
#define MAX_PAIRS ((uint64_t)1 << 28)
#define MAX_GLOBALS 64

static const char *usage_text =
    "usage: spattn-map -o OUT.png --mask SPEC (--len N | --len-q N --len-k N) [options]\n"
    "       spattn-map -o OUT.png --mask MASK.npy [options]\n"
    "       spattn-map -o OUT.png --q Q.npy --k K.npy [--mask SPEC|MASK.npy] [options]\n"
    "\n"
    "Mask SPEC (lengths from --len, or from Q and K):\n"
    "  causal                         window:LEFT,RIGHT\n"
    "  strided:STRIDE                 fixed:STRIDE,SUMMARY\n"
    "  bigbird:BLOCK,WINDOW,GLOBAL,RANDOM[,SEED]\n"
    "  longformer:LEFT,RIGHT[,G1,G2,...]   dilated:LEFT,RIGHT,DILATION\n"
    "MASK.npy: bool or uint8, [len_q][len_k] or [heads][len_q][len_k]; nonzero allows.\n"
    "Q.npy, K.npy: float32, [heads][len][dim] (or [len][dim] for one head); K may have fewer\n"
    "  heads than Q when it divides them (GQA). V is not needed: it does not change the map.\n"
    "\n"
    "Options:\n"
    "  -o, --out FILE      the PNG to write\n"
    "  --head H            draw head H only (default 0)\n"
    "  --grid              draw every head, side by side\n"
    "  --cols N            with --grid: N panels per row (default: all in one row)\n"
    "  --log               logarithmic colour scale, 1e-4 .. 1 (default linear 0 .. 1)\n"
    "  --max-cells N       max-pool maps larger than N cells a side (default 512)\n"
    "  --attn-scale S      softmax scale (default 1/sqrt(dim))\n"
    "  --softcap C         score soft cap (default off)\n"
    "  --isa NAME          scalar, avx2, avx512, neon (default: best available)\n"
    "  -h, --help          this text\n";

/* Prints "spattn-map: <message>" and returns the exit status: 2 for a usage error (with a
   pointer to --help), 1 for a failure. */
static int complain(int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("spattn-map: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputs(status == 2 ? "\n(spattn-map --help lists the options)\n" : "\n", stderr);
    va_end(ap);
    return status;
}

/* A whole non-negative decimal integer, nothing else. */
static int parse_size(const char *s, size_t *out)
{
    if (s == NULL || *s < '0' || *s > '9')
        return 0;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0' || v > SIZE_MAX)
        return 0;
    *out = (size_t)v;
    return 1;
}

static int parse_float(const char *s, float *out)
{
    if (s == NULL || *s == '\0')
        return 0;
    errno = 0;
    char *end;
    double v = strtod(s, &end);
    if (errno != 0 || *end != '\0' || !isfinite(v) || v < 0.0)
        return 0;
    *out = (float)v;
    return 1;
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

typedef struct opts {
    const char *out, *mask, *q, *k;
    size_t len_q, len_k, head, cols, max_cells;
    int have_len_q, have_len_k, have_head, grid;
    map_scale scale;
    float attn_scale, softcap;
    spattn_isa isa;
} opts;

static int parse_args(int argc, char **argv, opts *o)
{
    memset(o, 0, sizeof *o);
    o->max_cells = 512;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            fputs(usage_text, stdout);
            exit(0);
        }
        if (strcmp(a, "--grid") == 0) {
            o->grid = 1;
            continue;
        }
        if (strcmp(a, "--log") == 0) {
            o->scale = MAP_LOG;
            continue;
        }
        static const char *const valued[] = {
            "-o",      "--out",  "--mask", "--q",         "--k",          "--len",     "--len-q",
            "--len-k", "--head", "--cols", "--max-cells", "--attn-scale", "--softcap", "--isa"};
        int known = 0;
        for (size_t n = 0; n < sizeof valued / sizeof valued[0]; n++)
            known |= strcmp(a, valued[n]) == 0;
        if (!known) {
            if (strcmp(a, "--v") == 0)
                return complain(2, "--v: V does not change attention probabilities; give only "
                                   "--q and --k");
            return complain(2, "unknown argument '%s'", a);
        }
        if (i + 1 >= argc)
            return complain(2, "%s needs a value", a);
        const char *v = argv[++i];
        size_t n;
        if (strcmp(a, "-o") == 0 || strcmp(a, "--out") == 0) {
            o->out = v;
        } else if (strcmp(a, "--mask") == 0) {
            o->mask = v;
        } else if (strcmp(a, "--q") == 0) {
            o->q = v;
        } else if (strcmp(a, "--k") == 0) {
            o->k = v;
        } else if (strcmp(a, "--attn-scale") == 0 || strcmp(a, "--softcap") == 0) {
            float f;
            if (!parse_float(v, &f))
                return complain(2, "%s '%s': expected a finite number >= 0", a, v);
            *(strcmp(a, "--softcap") == 0 ? &o->softcap : &o->attn_scale) = f;
        } else if (strcmp(a, "--isa") == 0) {
            int found = 0;
            for (int t = SPATTN_ISA_AUTO; t <= SPATTN_ISA_NEON_BF16; t++)
                if (strcmp(v, spattn_isa_name((spattn_isa)t)) == 0) {
                    o->isa = (spattn_isa)t;
                    found = 1;
                }
            if (!found)
                return complain(2, "--isa '%s': expected auto, scalar, avx2, avx512 or neon", v);
        } else {
            if (!parse_size(v, &n))
                return complain(2, "%s '%s': expected a non-negative integer", a, v);
            if (strcmp(a, "--len") == 0) {
                o->len_q = o->len_k = n;
                o->have_len_q = o->have_len_k = 1;
            } else if (strcmp(a, "--len-q") == 0) {
                o->len_q = n;
                o->have_len_q = 1;
            } else if (strcmp(a, "--len-k") == 0) {
                o->len_k = n;
                o->have_len_k = 1;
            } else if (strcmp(a, "--head") == 0) {
                o->head = n;
                o->have_head = 1;
            } else if (strcmp(a, "--cols") == 0) {
                o->cols = n;
            } else {
                o->max_cells = n;
            }
        }
    }
    if (o->out == NULL)
        return complain(2, "no output: give -o OUT.png");
    if (!ends_with(o->out, ".png") && !ends_with(o->out, ".PNG"))
        return complain(2, "-o '%s': the output must be a .png file", o->out);
    if ((o->q == NULL) != (o->k == NULL))
        return complain(2, "an attention map needs both --q and --k");
    if (o->q == NULL && o->mask == NULL)
        return complain(2, "nothing to draw: give --mask, or --q and --k");
    if (o->grid && o->have_head)
        return complain(2, "--grid draws every head; --head picks one: give one of them");
    if (o->cols != 0 && !o->grid)
        return complain(2, "--cols only applies with --grid");
    if (o->max_cells < 8 || o->max_cells > 4096)
        return complain(2, "--max-cells %zu: expected 8 .. 4096", o->max_cells);
    if (o->q == NULL && (o->attn_scale != 0.0f || o->softcap != 0.0f))
        return complain(2, "--attn-scale and --softcap apply to attention maps (--q, --k)");
    return 0;
}

/* ---- masks ----------------------------------------------------------------------------- */

/* Splits "name:a,b,c" into the name and up to `cap` numbers. */
static int parse_spec(const char *spec, char *name, size_t name_cap, size_t *nums, size_t cap,
                      size_t *count)
{
    const char *colon = strchr(spec, ':');
    size_t nl = colon ? (size_t)(colon - spec) : strlen(spec);
    if (nl == 0 || nl >= name_cap)
        return complain(2, "--mask '%s': no pattern name", spec);
    memcpy(name, spec, nl);
    name[nl] = '\0';
    *count = 0;
    if (colon == NULL)
        return 0;
    const char *p = colon + 1;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        char buf[32];
        if (len == 0 || len >= sizeof buf)
            return complain(2, "--mask '%s': empty or overlong parameter", spec);
        memcpy(buf, p, len);
        buf[len] = '\0';
        if (*count == cap)
            return complain(2, "--mask '%s': too many parameters", spec);
        if (!parse_size(buf, &nums[*count]))
            return complain(2, "--mask '%s': parameter '%s' is not a non-negative integer", spec,
                            buf);
        (*count)++;
        if (comma == NULL)
            return 0;
        p = comma + 1;
    }
}

static int want_params(const char *spec, size_t got, size_t lo, size_t hi, const char *form)
{
    if (got < lo || got > hi)
        return complain(2, "--mask '%s': expected %s", spec, form);
    return 0;
}

/* A pattern mask of len_q x len_k. Returns 0, 1 or 2 like main. */
static int pattern_mask(const char *spec, size_t lq, size_t lk, spattn_mask **out)
{
    char name[32];
    size_t a[2 + MAX_GLOBALS], n = 0;
    int r = parse_spec(spec, name, sizeof name, a, sizeof a / sizeof a[0], &n);
    if (r != 0)
        return r;
    spattn_status st;
    const char *rule = "";
    if (strcmp(name, "causal") == 0) {
        if ((r = want_params(spec, n, 0, 0, "no parameters: causal")) != 0)
            return r;
        st = spattn_mask_causal(lq, lk, out);
    } else if (strcmp(name, "window") == 0) {
        if ((r = want_params(spec, n, 2, 2, "window:LEFT,RIGHT")) != 0)
            return r;
        st = spattn_mask_window(lq, lk, a[0], a[1], out);
    } else if (strcmp(name, "strided") == 0) {
        if ((r = want_params(spec, n, 1, 1, "strided:STRIDE")) != 0)
            return r;
        rule = "STRIDE >= 1";
        st = spattn_mask_strided(lq, lk, a[0], out);
    } else if (strcmp(name, "fixed") == 0) {
        if ((r = want_params(spec, n, 2, 2, "fixed:STRIDE,SUMMARY")) != 0)
            return r;
        rule = "1 <= SUMMARY <= STRIDE";
        st = spattn_mask_fixed(lq, lk, a[0], a[1], out);
    } else if (strcmp(name, "bigbird") == 0) {
        if ((r = want_params(spec, n, 4, 5, "bigbird:BLOCK,WINDOW,GLOBAL,RANDOM[,SEED]")) != 0)
            return r;
        rule = "BLOCK >= 1";
        st = spattn_mask_bigbird(lq, lk, a[0], a[1], a[2], a[3], n == 5 ? a[4] : 0, out);
    } else if (strcmp(name, "longformer") == 0) {
        if ((r = want_params(spec, n, 2, 2 + MAX_GLOBALS, "longformer:LEFT,RIGHT[,G1,G2,...]")) !=
            0)
            return r;
        rule = "every global position < len_k";
        st = spattn_mask_longformer(lq, lk, a[0], a[1], n > 2 ? a + 2 : NULL, n - 2, out);
    } else if (strcmp(name, "dilated") == 0) {
        if ((r = want_params(spec, n, 3, 3, "dilated:LEFT,RIGHT,DILATION")) != 0)
            return r;
        rule = "DILATION >= 1";
        st = spattn_mask_dilated(lq, lk, a[0], a[1], a[2], out);
    } else {
        return complain(2,
                        "--mask '%s': unknown pattern '%s' (causal, window, strided, fixed, "
                        "bigbird, longformer, dilated, or a .npy file)",
                        spec, name);
    }
    if (st == SPATTN_E_ARG)
        return complain(2, "--mask '%s': parameters out of range (%s)", spec, rule);
    if (st != SPATTN_OK)
        return complain(1, "--mask '%s': %s", spec, spattn_status_string(st));
    return 0;
}

/* Masks from a bool/uint8 .npy: one for a 2-D file, one per head for a 3-D file. */
static int npy_masks(const char *path, spattn_mask ***masks, size_t *n, size_t *lq, size_t *lk)
{
    char err[512];
    npy_array a;
    if (npy_read(path, &a, err, sizeof err) != 0)
        return complain(1, "--mask %s", err);
    int r = 0;
    if (a.dtype == NPY_F32) {
        r = complain(1, "--mask %s: a mask must be bool or uint8, not float32", path);
        goto done;
    }
    if (a.ndim != 2 && a.ndim != 3) {
        r = complain(1,
                     "--mask %s: a mask must be [len_q][len_k] or [heads][len_q][len_k], got %d "
                     "dimensions",
                     path, a.ndim);
        goto done;
    }
    size_t heads = a.ndim == 3 ? a.shape[0] : 1;
    *lq = a.shape[a.ndim - 2];
    *lk = a.shape[a.ndim - 1];
    if (heads == 0 || *lq == 0 || *lk == 0) {
        r = complain(1, "--mask %s: the mask is empty (a dimension is 0)", path);
        goto done;
    }
    if (*lq > MAX_PATTERN_LEN || *lk > MAX_PATTERN_LEN) {
        r = complain(1, "--mask %s: lengths above %zu are not supported", path, MAX_PATTERN_LEN);
        goto done;
    }
    *masks = calloc(heads, sizeof **masks);
    if (*masks == NULL) {
        r = complain(1, "out of memory");
        goto done;
    }
    *n = heads;
    for (size_t h = 0; h < heads; h++) {
        const uint8_t *d = (const uint8_t *)a.data + h * *lq * *lk;
        spattn_status st = spattn_mask_from_dense(*lq, *lk, d, *lk, &(*masks)[h]);
        if (st != SPATTN_OK) {
            r = complain(1, "--mask %s: head %zu: %s", path, h, spattn_status_string(st));
            goto done;
        }
    }
done:
    npy_free(&a);
    return r;
}

/* ---- attention inputs ------------------------------------------------------------------ */

/* A float32 [heads][len][dim] (or [len][dim]) array with finite values. */
static int load_input(const char *flag, const char *path, npy_array *a, size_t *heads, size_t *len,
                      size_t *dim)
{
    char err[512];
    if (npy_read(path, a, err, sizeof err) != 0)
        return complain(1, "%s %s", flag, err);
    if (a->dtype != NPY_F32)
        return complain(1, "%s %s: inputs must be float32, not %s", flag, path,
                        npy_dtype_name(a->dtype));
    if (a->ndim != 2 && a->ndim != 3)
        return complain(1, "%s %s: expected [heads][len][dim] or [len][dim], got %d dimensions",
                        flag, path, a->ndim);
    *heads = a->ndim == 3 ? a->shape[0] : 1;
    *len = a->shape[a->ndim - 2];
    *dim = a->shape[a->ndim - 1];
    if (*heads == 0 || *len == 0 || *dim == 0)
        return complain(1, "%s %s: a dimension is 0", flag, path);
    if (*len > MAX_PATTERN_LEN)
        return complain(1, "%s %s: lengths above %zu are not supported", flag, path,
                        MAX_PATTERN_LEN);
    const float *f = a->data;
    for (size_t i = 0; i < a->count; i++)
        if (!isfinite(f[i]))
            return complain(1, "%s %s: element %zu is %s; the map needs finite inputs", flag, path,
                            i, isnan(f[i]) ? "NaN" : "infinite");
    return 0;
}

/* ---- main ------------------------------------------------------------------------------ */

typedef struct job {
    opts o;
    spattn_mask **masks; /* owned */
    size_t n_masks, lq, lk, heads;
    npy_array q, k;
    spattn_plan *plan;
    float *probs;
    map_panel *panels;
    int64_t **row_ptr;
    int32_t **col_idx;
    char (*titles)[48];
    size_t n_panels;
} job;

static void job_free(job *j)
{
    for (size_t i = 0; i < j->n_masks; i++)
        spattn_mask_free(j->masks[i]);
    free(j->masks);
    npy_free(&j->q);
    npy_free(&j->k);
    spattn_plan_free(j->plan);
    free(j->probs);
    for (size_t i = 0; i < j->n_panels; i++) {
        if (j->row_ptr)
            free(j->row_ptr[i]);
        if (j->col_idx)
            free(j->col_idx[i]);
    }
    free(j->row_ptr);
    free(j->col_idx);
    free(j->titles);
    free(j->panels);
}

static int build_masks(job *j)
{
    opts *o = &j->o;
    int from_npy = o->mask != NULL && ends_with(o->mask, ".npy");
    if (from_npy) {
        if (o->have_len_q || o->have_len_k)
            return complain(2, "--len/--len-q/--len-k apply to pattern masks; a .npy mask has "
                               "its own shape");
        size_t lq = 0, lk = 0;
        int r = npy_masks(o->mask, &j->masks, &j->n_masks, &lq, &lk);
        if (r != 0)
            return r;
        if (o->q != NULL && (lq != j->lq || lk != j->lk))
            return complain(1, "--mask %s is %zu x %zu but Q and K give %zu x %zu", o->mask, lq, lk,
                            j->lq, j->lk);
        j->lq = lq;
        j->lk = lk;
        return 0;
    }
    if (o->q == NULL) {
        if (!o->have_len_q || !o->have_len_k)
            return complain(2, "a pattern mask needs its size: --len N, or --len-q and --len-k");
        if (o->len_q == 0 || o->len_k == 0 || o->len_q > MAX_PATTERN_LEN ||
            o->len_k > MAX_PATTERN_LEN)
            return complain(2, "lengths must be in 1 .. %zu", MAX_PATTERN_LEN);
        j->lq = o->len_q;
        j->lk = o->len_k;
    } else if (o->have_len_q || o->have_len_k) {
        return complain(2, "with --q and --k the lengths come from the inputs; drop --len");
    }
    if (o->mask == NULL)
        return 0; /* attention over every pair */
    j->masks = calloc(1, sizeof *j->masks);
    if (j->masks == NULL)
        return complain(1, "out of memory");
    int r = pattern_mask(o->mask, j->lq, j->lk, &j->masks[0]);
    if (r == 0)
        j->n_masks = 1;
    return r;
}

/* Attention probabilities of every head through the library. */
static int compute_probs(job *j, size_t hkv, size_t dim)
{
    if (j->n_masks > 1 && j->n_masks != j->heads)
        return complain(1, "--mask %s has %zu heads but Q has %zu", j->o.mask, j->n_masks,
                        j->heads);
    spattn_shape s = {1, j->heads, hkv, j->lq, j->lk, dim, 1};
    spattn_options opt = {j->o.isa, 0};
    spattn_status st =
        spattn_plan_create(&s, (const spattn_mask *const *)j->masks, j->n_masks, &opt, &j->plan);
    if (st == SPATTN_E_UNSUPPORTED)
        return complain(1, "ISA %s: %s", spattn_isa_name(j->o.isa),
                        spattn_isa_unavailable_reason(j->o.isa));
    if (st != SPATTN_OK)
        return complain(1, "cannot plan the attention: %s", spattn_status_string(st));
    uint64_t np = spattn_plan_probs_len(j->plan);
    if (np > MAX_PAIRS)
        return complain(1,
                        "%llu allowed pairs is more than this tool holds (%llu); use a sparser "
                        "mask or shorter inputs",
                        (unsigned long long)np, (unsigned long long)MAX_PAIRS);
    j->probs = malloc(np > 0 ? (size_t)np * sizeof(float) : 1);
    if (j->probs == NULL)
        return complain(1, "out of memory for %llu probabilities", (unsigned long long)np);
    spattn_args a;
    memset(&a, 0, sizeof a);
    a.shape = s;
    a.q = j->q.data;
    a.k = j->k.data;
    a.q_layout = spattn_layout_bhtd(j->heads, j->lq, dim);
    a.k_layout = spattn_layout_bhtd(hkv, j->lk, dim);
    a.scale = j->o.attn_scale;
    a.softcap = j->o.softcap;
    st = spattn_probs(j->plan, &a, j->probs, NULL);
    if (st != SPATTN_OK)
        return complain(1, "spattn_probs: %s", spattn_status_string(st));
    return 0;
}

static int build_panels(job *j)
{
    size_t first = j->o.grid ? 0 : j->o.head, count = j->o.grid ? j->heads : 1;
    if (first >= j->heads)
        return complain(2, "--head %zu: there %s %zu head%s (0 .. %zu)", j->o.head,
                        j->heads == 1 ? "is" : "are", j->heads, j->heads == 1 ? "" : "s",
                        j->heads - 1);
    j->panels = calloc(count, sizeof *j->panels);
    j->row_ptr = calloc(count, sizeof *j->row_ptr);
    j->col_idx = calloc(count, sizeof *j->col_idx);
    j->titles = calloc(count, sizeof *j->titles);
    if (!j->panels || !j->row_ptr || !j->col_idx || !j->titles)
        return complain(1, "out of memory");
    j->n_panels = count;
    uint64_t total = 0;
    for (size_t p = 0; p < count; p++) {
        size_t h = first + p;
        const spattn_mask *m =
            j->plan ? spattn_plan_mask(j->plan, 0, h) : j->masks[j->n_masks == 1 ? 0 : h];
        uint64_t nnz = spattn_mask_nnz(m);
        total += nnz;
        if (total > MAX_PAIRS)
            return complain(1,
                            "more than %llu allowed pairs to draw; use a sparser mask or fewer "
                            "heads",
                            (unsigned long long)MAX_PAIRS);
        j->row_ptr[p] = malloc((j->lq + 1) * sizeof(int64_t));
        j->col_idx[p] = malloc(nnz > 0 ? (size_t)nnz * sizeof(int32_t) : 1);
        if (!j->row_ptr[p] || !j->col_idx[p])
            return complain(1, "out of memory");
        spattn_status st = spattn_mask_to_csr(m, j->row_ptr[p], j->col_idx[p]);
        if (st != SPATTN_OK)
            return complain(1, "spattn_mask_to_csr: %s", spattn_status_string(st));
        if (j->o.q == NULL && j->n_masks == 1 && j->o.mask != NULL && !ends_with(j->o.mask, ".npy"))
            snprintf(j->titles[p], sizeof j->titles[p], "%s", j->o.mask);
        else
            snprintf(j->titles[p], sizeof j->titles[p], "HEAD %zu", h);
        map_panel *mp = &j->panels[p];
        mp->title = j->titles[p];
        mp->len_q = j->lq;
        mp->len_k = j->lk;
        mp->row_ptr = j->row_ptr[p];
        mp->col_idx = j->col_idx[p];
        mp->values = j->probs ? j->probs + spattn_plan_probs_offset(j->plan, 0, h) : NULL;
    }
    return 0;
}

static int run(job *j)
{
    opts *o = &j->o;
    size_t hkv = 1, dim = 0;
    if (o->q != NULL) {
        size_t lq, lk, dq, dk;
        int r = load_input("--q", o->q, &j->q, &j->heads, &lq, &dq);
        if (r == 0)
            r = load_input("--k", o->k, &j->k, &hkv, &lk, &dk);
        if (r != 0)
            return r;
        if (dq != dk)
            return complain(1, "Q has dim %zu but K has dim %zu", dq, dk);
        if (j->heads % hkv != 0)
            return complain(1, "Q has %zu heads, K has %zu: K's heads must divide Q's", j->heads,
                            hkv);
        j->lq = lq;
        j->lk = lk;
        dim = dq;
    }
    int r = build_masks(j);
    if (r != 0)
        return r;
    if (o->q != NULL) {
        r = compute_probs(j, hkv, dim);
    } else {
        j->heads = j->n_masks;
    }
    if (r == 0)
        r = build_panels(j);
    if (r != 0)
        return r;

    map_style style = {o->max_cells, o->cols, o->scale};
    image im;
    char err[512];
    if (map_render(j->panels, j->n_panels, &style, &im, NULL, err, sizeof err) != 0)
        return complain(1, "%s", err);
    r = png_write(o->out, &im, err, sizeof err);
    image_free(&im);
    if (r != 0)
        return complain(1, "%s", err);
    return 0;
}

int main(int argc, char **argv)
{
    job j;
    memset(&j, 0, sizeof j);
    int r = parse_args(argc, argv, &j.o);
    if (r == 0)
        r = run(&j);
    job_free(&j);
    return r;
}
