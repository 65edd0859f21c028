/* .npy layout: the magic "\x93NUMPY", major and minor version bytes, the header length
   (2 bytes little-endian in version 1, 4 bytes in versions 2 and 3), then an ASCII (UTF-8 in
   version 3) Python dict literal with the keys 'descr', 'fortran_order' and 'shape', padded
   with spaces and ended by a newline, then the raw elements. */
#include "npy.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    if (err != NULL && errlen > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

const char *npy_dtype_name(npy_dtype t)
{
    switch (t) {
    case NPY_F32:
        return "float32";
    case NPY_BOOL:
        return "bool";
    case NPY_U8:
        return "uint8";
    }
    return "?";
}

void npy_free(npy_array *a)
{
    if (a == NULL)
        return;
    free(a->data);
    memset(a, 0, sizeof *a);
}

/* A cursor over the header text. */
typedef struct cur {
    const char *p, *end;
} cur;

static void skip_ws(cur *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
        c->p++;
}

static int eat(cur *c, char ch)
{
    skip_ws(c);
    if (c->p < c->end && *c->p == ch) {
        c->p++;
        return 1;
    }
    return 0;
}

/* A quoted Python string without escapes (all the header's strings are plain). */
static int read_str(cur *c, char *dst, size_t cap)
{
    skip_ws(c);
    if (c->p >= c->end || (*c->p != '\'' && *c->p != '"'))
        return 0;
    char q = *c->p++;
    size_t n = 0;
    while (c->p < c->end && *c->p != q) {
        if (*c->p == '\\' || n + 1 >= cap)
            return 0;
        dst[n++] = *c->p++;
    }
    if (c->p >= c->end)
        return 0;
    c->p++;
    dst[n] = '\0';
    return 1;
}

static int read_word(cur *c, const char *w)
{
    skip_ws(c);
    size_t n = strlen(w);
    if ((size_t)(c->end - c->p) >= n && memcmp(c->p, w, n) == 0) {
        c->p += n;
        return 1;
    }
    return 0;
}

static int read_dim(cur *c, size_t *v)
{
    skip_ws(c);
    if (c->p >= c->end || !isdigit((unsigned char)*c->p))
        return 0;
    size_t x = 0;
    while (c->p < c->end && isdigit((unsigned char)*c->p)) {
        unsigned d = (unsigned)(*c->p - '0');
        if (x > (SIZE_MAX - d) / 10)
            return 0;
        x = x * 10 + d;
        c->p++;
    }
    /* Python 2 era writers may append L to long integers. */
    if (c->p < c->end && *c->p == 'L')
        c->p++;
    *v = x;
    return 1;
}

/* The shape tuple: (), (n,), (a, b), (a, b, c,) ... */
static int read_shape(cur *c, npy_array *a, char *err, size_t errlen)
{
    if (!eat(c, '('))
        return fail(err, errlen, "'shape' is not a tuple");
    a->ndim = 0;
    if (eat(c, ')'))
        return 0;
    for (;;) {
        if (a->ndim == NPY_MAX_DIMS)
            return fail(err, errlen, "more than %d dimensions", NPY_MAX_DIMS);
        if (!read_dim(c, &a->shape[a->ndim]))
            return fail(err, errlen, "'shape' holds something other than non-negative integers");
        a->ndim++;
        int comma = eat(c, ',');
        if (eat(c, ')'))
            return (a->ndim == 1 && !comma) ? fail(err, errlen, "'shape' (n) is not a tuple") : 0;
        if (!comma)
            return fail(err, errlen, "'shape' tuple is malformed");
    }
}

static int parse_descr(const char *d, npy_array *a, char *err, size_t errlen)
{
    if (strcmp(d, "<f4") == 0 || strcmp(d, "=f4") == 0)
        a->dtype = NPY_F32;
    else if (strcmp(d, "|b1") == 0)
        a->dtype = NPY_BOOL;
    else if (strcmp(d, "|u1") == 0 || strcmp(d, "<u1") == 0 || strcmp(d, "=u1") == 0)
        a->dtype = NPY_U8;
    else if (d[0] == '>')
        return fail(err, errlen,
                    "dtype '%s' is big-endian; save it little-endian (arr.astype('<f4'))", d);
    else
        return fail(err, errlen,
                    "dtype '%s' is not supported: float32 ('<f4') inputs, bool ('|b1') or uint8 "
                    "('|u1') masks",
                    d);
    return 0;
}

static int parse_header(const char *h, size_t n, npy_array *a, char *err, size_t errlen)
{
    cur c = {h, h + n};
    int have_descr = 0, have_order = 0, have_shape = 0;
    if (!eat(&c, '{'))
        return fail(err, errlen, "header is not a dict literal");
    while (!eat(&c, '}')) {
        char key[32], val[32];
        if (!read_str(&c, key, sizeof key) || !eat(&c, ':'))
            return fail(err, errlen, "header dict is malformed");
        if (strcmp(key, "descr") == 0) {
            if (!read_str(&c, val, sizeof val))
                return fail(err, errlen,
                            "'descr' is not a simple dtype string (structured "
                            "arrays are not supported)");
            if (parse_descr(val, a, err, errlen) != 0)
                return -1;
            have_descr = 1;
        } else if (strcmp(key, "fortran_order") == 0) {
            if (read_word(&c, "True"))
                return fail(err, errlen,
                            "fortran_order is True; save a C-ordered array "
                            "(np.ascontiguousarray)");
            if (!read_word(&c, "False"))
                return fail(err, errlen, "'fortran_order' is neither True nor False");
            have_order = 1;
        } else if (strcmp(key, "shape") == 0) {
            if (read_shape(&c, a, err, errlen) != 0)
                return -1;
            have_shape = 1;
        } else {
            return fail(err, errlen, "unexpected header key '%s'", key);
        }
        if (!eat(&c, ',')) {
            if (!eat(&c, '}'))
                return fail(err, errlen, "header dict is malformed");
            break;
        }
    }
    skip_ws(&c);
    if (c.p != c.end)
        return fail(err, errlen, "junk after the header dict");
    if (!have_descr || !have_order || !have_shape)
        return fail(err, errlen, "header lacks '%s'",
                    !have_descr   ? "descr"
                    : !have_order ? "fortran_order"
                                  : "shape");
    return 0;
}

int npy_parse(const unsigned char *buf, size_t len, npy_array *out, char *err, size_t errlen)
{
    npy_array a;
    memset(&a, 0, sizeof a);
    memset(out, 0, sizeof *out);
    static const unsigned char magic[6] = {0x93, 'N', 'U', 'M', 'P', 'Y'};
    if (len < 10 || memcmp(buf, magic, 6) != 0)
        return fail(err, errlen, "not a .npy file (no \\x93NUMPY magic)");
    unsigned major = buf[6];
    size_t hlen, start;
    if (major == 1) {
        hlen = (size_t)buf[8] | (size_t)buf[9] << 8;
        start = 10;
    } else if (major == 2 || major == 3) {
        if (len < 12)
            return fail(err, errlen, "truncated header");
        hlen = (size_t)buf[8] | (size_t)buf[9] << 8 | (size_t)buf[10] << 16 | (size_t)buf[11] << 24;
        start = 12;
    } else {
        return fail(err, errlen, "unsupported .npy format version %u.%u", major, buf[7]);
    }
    if (hlen > len - start)
        return fail(err, errlen, "header length %zu runs past the end of the file", hlen);
    if (hlen == 0 || buf[start + hlen - 1] != '\n')
        return fail(err, errlen, "header does not end with a newline");
    for (size_t i = 0; i < hlen; i++)
        if (buf[start + i] == 0 || (major < 3 && buf[start + i] >= 0x80))
            return fail(err, errlen, "header has non-ASCII bytes");
    if (parse_header((const char *)buf + start, hlen, &a, err, errlen) != 0)
        return -1;

    size_t item = a.dtype == NPY_F32 ? 4 : 1;
    a.count = 1;
    for (int d = 0; d < a.ndim; d++) {
        if (a.shape[d] != 0 && a.count > SIZE_MAX / item / a.shape[d])
            return fail(err, errlen, "shape is too large");
        a.count *= a.shape[d];
    }
    size_t have = len - start - hlen, want = a.count * item;
    if (have < want)
        return fail(err, errlen, "file truncated: the shape needs %zu bytes of data, found %zu",
                    want, have);
    if (have > want)
        return fail(err, errlen, "%zu bytes of trailing data after the array", have - want);
    a.data = malloc(want > 0 ? want : 1);
    if (a.data == NULL)
        return fail(err, errlen, "out of memory (%zu bytes)", want);
    memcpy(a.data, buf + start + hlen, want);
    *out = a;
    return 0;
}

int npy_read(const char *path, npy_array *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return fail(err, errlen, "%s: %s", path, strerror(errno));
    unsigned char *buf = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len == cap) {
            size_t ncap = cap ? cap * 2 : 1 << 16;
            unsigned char *nb = ncap > cap ? realloc(buf, ncap) : NULL;
            if (nb == NULL) {
                free(buf);
                fclose(f);
                return fail(err, errlen, "%s: out of memory", path);
            }
            buf = nb;
            cap = ncap;
        }
        size_t got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (got == 0)
            break;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        return fail(err, errlen, "%s: read error", path);
    }
    char why[256];
    int r = npy_parse(buf, len, out, why, sizeof why);
    free(buf);
    if (r != 0)
        return fail(err, errlen, "%s: %s", path, why);
    return 0;
}
