#include "mask/build.h"

#include <stdlib.h>
#include <string.h>

#include "alloc.h"

/* Grows *p to hold at least `need` elements, doubling so appends stay amortized O(1). */
static int grow(void **p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return 0;
    size_t nc = *cap ? *cap : 16;
    while (nc < need) {
        if (nc > SIZE_MAX / 2 / elem)
            return -1;
        nc *= 2;
    }
    void *q = spattn__realloc(*p, nc * elem);
    if (!q)
        return -1;
    *p = q;
    *cap = nc;
    return 0;
}

static spattn_status fail(spattn__mb *b, spattn_status s)
{
    if (b->err == SPATTN_OK)
        b->err = s;
    return b->err;
}

static uint64_t col_mask(const spattn__mb *b, size_t kt)
{
    size_t n = b->len_k - kt * SPATTN_TK;
    return n >= 64 ? ~(uint64_t)0 : (((uint64_t)1 << n) - 1);
}

void spattn__mb_free(spattn__mb *b)
{
    spattn__free(b->slot);
    spattn__free(b->ent);
    spattn__free(b->order);
    spattn__mask_destroy(b->m);
    b->slot = NULL;
    b->ent = NULL;
    b->order = NULL;
    b->m = NULL;
    b->nent = b->cap_ent = 0;
}

spattn_status spattn__mb_init(spattn__mb *b, size_t len_q, size_t len_k)
{
    memset(b, 0, sizeof *b);
    b->len_q = len_q;
    b->len_k = len_k;
    b->nqt = (len_q + SPATTN_TQ - 1) / SPATTN_TQ;
    b->nkt = (len_k + SPATTN_TK - 1) / SPATTN_TK;
    b->qt = SIZE_MAX;
    b->max_partial = UINT32_MAX - 1; /* UINT32_MAX itself means FULL */
    /* slot holds 1 + entry index and kt is stored as uint32_t */
    if (b->nkt >= UINT32_MAX || b->nqt >= SIZE_MAX / sizeof(size_t) - 1)
        return fail(b, SPATTN_E_NOMEM);

    spattn_mask *m = spattn__calloc(1, sizeof *m);
    b->m = m;
    if (!m)
        return fail(b, SPATTN_E_NOMEM);
    m->len_q = len_q;
    m->len_k = len_k;
    m->nqt = b->nqt;
    m->nkt = b->nkt;
    atomic_init(&m->refs, 1);
    m->qt_ptr = spattn__malloc((b->nqt + 1) * sizeof *m->qt_ptr);
    m->qt_nnz = spattn__malloc(b->nqt * sizeof *m->qt_nnz);
    b->slot = spattn__calloc(b->nkt, sizeof *b->slot);
    if (!m->qt_ptr || !m->qt_nnz || !b->slot) {
        spattn__mb_free(b);
        return fail(b, SPATTN_E_NOMEM);
    }
    m->qt_ptr[0] = 0;
    return SPATTN_OK;
}

/* Marks query tiles before `upto` that were never begun as empty. */
static void close_skipped(spattn__mb *b, size_t upto)
{
    spattn_mask *m = b->m;
    size_t t = b->qt == SIZE_MAX ? 0 : b->qt + 1;
    for (; t < upto; t++) {
        m->qt_nnz[t] = 0;
        m->qt_ptr[t + 1] = m->ntiles;
    }
}

spattn_status spattn__mb_begin(spattn__mb *b, size_t qt)
{
    if (b->err)
        return b->err;
    if (b->open && spattn__mb_end(b))
        return b->err;
    if (qt >= b->nqt || (b->qt != SIZE_MAX && qt <= b->qt))
        return fail(b, SPATTN_E_ARG); /* a caller bug: tiles must come in increasing order */
    close_skipped(b, qt);
    b->qt = qt;
    b->open = 1;
    size_t rows = b->len_q - qt * SPATTN_TQ;
    b->rowmask = rows >= SPATTN_TQ ? SPATTN__ALL_ROWS : (uint32_t)((1u << rows) - 1u);
    return SPATTN_OK;
}

static spattn__mb_entry *touch(spattn__mb *b, size_t kt)
{
    uint32_t s = b->slot[kt];
    if (s)
        return &b->ent[s - 1];
    if (b->nent == b->cap_ent) {
        size_t cap = b->cap_ent, cap2 = b->cap_ent;
        if (grow((void **)&b->ent, &cap, b->nent + 1, sizeof *b->ent) ||
            grow((void **)&b->order, &cap2, cap, sizeof *b->order)) {
            fail(b, SPATTN_E_NOMEM);
            return NULL;
        }
        b->cap_ent = cap < cap2 ? cap : cap2;
    }
    spattn__mb_entry *e = &b->ent[b->nent];
    e->kt = (uint32_t)kt;
    e->full = 0;
    memset(e->w, 0, sizeof e->w);
    b->slot[kt] = (uint32_t)++b->nent;
    return e;
}

spattn_status spattn__mb_or_word(spattn__mb *b, uint32_t rows, size_t kt, uint64_t word)
{
    if (b->err)
        return b->err;
    if (!b->open || kt >= b->nkt)
        return fail(b, SPATTN_E_ARG);
    uint64_t cm = col_mask(b, kt);
    rows &= b->rowmask;
    word &= cm;
    if (!rows || !word)
        return SPATTN_OK;
    spattn__mb_entry *e = touch(b, kt);
    if (!e)
        return b->err;
    if (rows == b->rowmask && word == cm)
        e->full = 1; /* a whole tile at once: later words need not be kept */
    if (e->full)
        return SPATTN_OK;
    for (; rows; rows &= rows - 1)
        e->w[__builtin_ctz(rows)] |= word;
    return SPATTN_OK;
}

spattn_status spattn__mb_or_words(spattn__mb *b, size_t kt, const uint64_t w[SPATTN_TQ])
{
    if (b->err)
        return b->err;
    if (!b->open || kt >= b->nkt)
        return fail(b, SPATTN_E_ARG);
    const uint64_t cm = col_mask(b, kt);
    uint64_t any = 0, all = cm;
    for (int r = 0; r < SPATTN_TQ; r++) {
        const uint64_t x = (b->rowmask >> r) & 1u ? w[r] & cm : 0;
        any |= x;
        all &= (b->rowmask >> r) & 1u ? x : cm;
    }
    if (!any)
        return SPATTN_OK;
    spattn__mb_entry *e = touch(b, kt);
    if (!e)
        return b->err;
    if (all == cm)
        e->full = 1; /* as spattn__mb_or_word: a whole tile at once */
    if (e->full)
        return SPATTN_OK;
    for (int r = 0; r < SPATTN_TQ; r++)
        e->w[r] |= (b->rowmask >> r) & 1u ? w[r] & cm : 0;
    return SPATTN_OK;
}

spattn_status spattn__mb_full(spattn__mb *b, size_t kt)
{
    if (b->err)
        return b->err;
    if (!b->open || kt >= b->nkt)
        return fail(b, SPATTN_E_ARG);
    spattn__mb_entry *e = touch(b, kt);
    if (!e)
        return b->err;
    e->full = 1;
    return SPATTN_OK;
}

spattn_status spattn__mb_add_range(spattn__mb *b, uint32_t rows, size_t j0, size_t j1)
{
    if (b->err)
        return b->err;
    if (j1 > b->len_k)
        j1 = b->len_k;
    rows &= b->rowmask;
    if (j0 >= j1 || !rows)
        return SPATTN_OK;
    size_t kt_last = (j1 - 1) / SPATTN_TK;
    for (size_t kt = j0 / SPATTN_TK; kt <= kt_last; kt++) {
        size_t c0 = kt * SPATTN_TK;
        size_t a = j0 > c0 ? j0 - c0 : 0;
        size_t e = j1 - c0 < SPATTN_TK ? j1 - c0 : SPATTN_TK;
        uint64_t word =
            (e == 64 ? ~(uint64_t)0 : (((uint64_t)1 << e) - 1)) & ~(((uint64_t)1 << a) - 1);
        if (spattn__mb_or_word(b, rows, kt, word))
            return b->err;
    }
    return SPATTN_OK;
}

spattn_status spattn__mb_add_row_ranges(spattn__mb *b, const int64_t lo[SPATTN_TQ],
                                        const int64_t hi[SPATTN_TQ])
{
    if (b->err)
        return b->err;
    int64_t l[SPATTN_TQ], h[SPATTN_TQ];
    int64_t cl = 0, ch = (int64_t)b->len_k;
    uint32_t active = 0;
    for (int r = 0; r < SPATTN_TQ; r++) {
        l[r] = lo[r] < 0 ? 0 : lo[r];
        h[r] = hi[r] > (int64_t)b->len_k ? (int64_t)b->len_k : hi[r];
        if (!((b->rowmask >> r) & 1u) || l[r] >= h[r])
            continue;
        active |= 1u << r;
        cl = l[r] > cl ? l[r] : cl;
        ch = h[r] < ch ? h[r] : ch;
    }
    if (!active)
        return SPATTN_OK;
    if (cl >= ch) { /* no key common to all rows: each row on its own */
        cl = ch = 0;
    } else if (spattn__mb_add_range(b, active, (size_t)cl, (size_t)ch)) {
        return b->err;
    }
    for (int r = 0; r < SPATTN_TQ; r++) {
        if (!((active >> r) & 1u))
            continue;
        uint32_t one = 1u << r;
        if (ch <= cl) {
            spattn__mb_add_range(b, one, (size_t)l[r], (size_t)h[r]);
        } else {
            spattn__mb_add_range(b, one, (size_t)l[r], (size_t)cl);
            spattn__mb_add_range(b, one, (size_t)ch, (size_t)h[r]);
        }
    }
    return b->err;
}

static int cmp_u64(const void *pa, const void *pb)
{
    uint64_t a = *(const uint64_t *)pa, c = *(const uint64_t *)pb;
    return (a > c) - (a < c);
}

/* Fills b->order with entry indices in increasing kt: nothing to do when they were touched in
   order, a scan of the slot range when that range is small, a sort otherwise. Returns 0 when
   entries are already ordered (order unused). */
static int order_entries(spattn__mb *b)
{
    size_t n = b->nent;
    uint32_t lo = UINT32_MAX, hi = 0;
    int sorted = 1;
    for (size_t i = 0; i < n; i++) {
        uint32_t kt = b->ent[i].kt;
        if (i && kt < b->ent[i - 1].kt)
            sorted = 0;
        lo = kt < lo ? kt : lo;
        hi = kt > hi ? kt : hi;
    }
    if (sorted)
        return 0;
    if ((size_t)(hi - lo) <= 8 * n) {
        size_t k = 0;
        for (size_t kt = lo; kt <= hi; kt++)
            if (b->slot[kt])
                b->order[k++] = b->slot[kt] - 1;
    } else {
        for (size_t i = 0; i < n; i++)
            b->order[i] = ((uint64_t)b->ent[i].kt << 32) | i;
        qsort(b->order, n, sizeof *b->order, cmp_u64);
        for (size_t i = 0; i < n; i++)
            b->order[i] &= UINT32_MAX;
    }
    return 1;
}

static spattn_status append_tile(spattn__mb *b, const spattn__mb_entry *e, int full)
{
    spattn_mask *m = b->m;
    if (grow((void **)&m->tiles, &b->cap_tiles, m->ntiles + 1, sizeof *m->tiles))
        return fail(b, SPATTN_E_NOMEM);
    spattn_ktile *t = &m->tiles[m->ntiles];
    t->kt = e->kt;
    t->part = SPATTN_FULL;
    if (!full) {
        if (m->npartial >= b->max_partial ||
            grow((void **)&m->bits, &b->cap_partial, m->npartial + 1, sizeof *m->bits * SPATTN_TQ))
            return fail(b, SPATTN_E_NOMEM);
        memcpy(m->bits + m->npartial * SPATTN_TQ, e->w, sizeof e->w);
        t->part = (uint32_t)m->npartial++;
    }
    m->ntiles++;
    return SPATTN_OK;
}

spattn_status spattn__mb_end(spattn__mb *b)
{
    if (b->err)
        return b->err;
    if (!b->open)
        return fail(b, SPATTN_E_ARG);
    spattn_mask *m = b->m;
    uint64_t rows = (uint64_t)spattn__popcount64(b->rowmask);
    uint64_t sum = 0;
    int use_order = order_entries(b);
    for (size_t k = 0; k < b->nent; k++) {
        const spattn__mb_entry *e = &b->ent[use_order ? b->order[k] : k];
        uint64_t cols = (uint64_t)spattn__popcount64(col_mask(b, e->kt));
        uint64_t cnt = rows * cols;
        if (!e->full) {
            cnt = 0;
            for (int r = 0; r < SPATTN_TQ; r++)
                cnt += (uint64_t)spattn__popcount64(e->w[r]);
            if (cnt == 0)
                continue;
        }
        if (append_tile(b, e, cnt == rows * cols))
            return b->err;
        sum += cnt;
    }
    for (size_t k = 0; k < b->nent; k++)
        b->slot[b->ent[k].kt] = 0;
    b->nent = 0;
    b->open = 0;
    m->qt_nnz[b->qt] = sum;
    m->qt_ptr[b->qt + 1] = m->ntiles;
    m->nnz += sum;
    return SPATTN_OK;
}

spattn_status spattn__mb_finish(spattn__mb *b, spattn_mask **out)
{
    *out = NULL;
    if (!b->err && b->open)
        spattn__mb_end(b);
    if (b->err) {
        spattn_status s = b->err;
        spattn__mb_free(b);
        return s;
    }
    close_skipped(b, b->nqt);
    spattn_mask *m = b->m;
    size_t cap_tiles = b->cap_tiles, cap_partial = b->cap_partial;
    b->m = NULL;
    spattn__mb_free(b);

    /* Give back the doubling slack; a failed shrink only keeps the larger block. */
    if (m->ntiles < cap_tiles) {
        void *p = m->ntiles ? spattn__realloc(m->tiles, m->ntiles * sizeof *m->tiles) : NULL;
        if (p || !m->ntiles) {
            if (!m->ntiles)
                spattn__free(m->tiles);
            m->tiles = p;
        }
    }
    if (m->npartial < cap_partial) {
        size_t bytes = m->npartial * SPATTN_TQ * sizeof *m->bits;
        void *p = bytes ? spattn__realloc(m->bits, bytes) : NULL;
        if (p || !bytes) {
            if (!bytes)
                spattn__free(m->bits);
            m->bits = p;
        }
    }
    *out = m;
    return SPATTN_OK;
}
