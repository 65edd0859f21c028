/*
 * Masks of packed sequences: several documents laid end to end, each attending only to
 * itself. Query tile by query tile, each document that has rows in the tile is one call of
 * the row-range stroke (a rectangle plus, when causal, per-row tails of under TQ keys), so the
 * cost is O(n_docs + tiles), never O(len_q * len_k).
 */
#include "mask/build.h"

#define TQ SPATTN_TQ

/* The sum of n lengths into *total; SPATTN_E_SHAPE when it is 0 or beyond SPATTN_MAX_LEN. */
static spattn_status sum_lens(const size_t *lens, size_t n, size_t *total)
{
    size_t t = 0;
    for (size_t d = 0; d < n; d++) {
        if (lens[d] > SPATTN_MAX_LEN - t)
            return SPATTN_E_SHAPE;
        t += lens[d];
    }
    *total = t;
    return t == 0 ? SPATTN_E_SHAPE : SPATTN_OK;
}

/* The allowed keys of the rows of one document that fall in the open query tile (whose first
   row is row0): qs, q are the document's first query row and count, ks, k its first key and
   count. */
static void add_doc(spattn__mb *b, size_t row0, size_t qs, size_t q, size_t ks, size_t k,
                    int causal)
{
    int64_t lo[TQ], hi[TQ];
    for (int r = 0; r < TQ; r++) {
        size_t i = row0 + (size_t)r;
        lo[r] = hi[r] = 0;
        if (i < qs || i - qs >= q)
            continue;
        lo[r] = (int64_t)ks;
        /* local row i - qs sees local keys up to (i - qs) + k - q; none when that is < 0 */
        hi[r] = causal ? (int64_t)ks + (int64_t)(i - qs) + (int64_t)k - (int64_t)q + 1
                       : (int64_t)(ks + k);
    }
    spattn__mb_add_row_ranges(b, lo, hi);
}

static spattn_status build_docs(const size_t *q_lens, const size_t *k_lens, size_t n_docs,
                                int causal, spattn_mask **out)
{
    if (!out)
        return SPATTN_E_NULL;
    *out = NULL;
    if (n_docs && (!q_lens || !k_lens))
        return SPATTN_E_NULL;
    spattn_status s;
    size_t len_q = 0, len_k = 0;
    if ((s = sum_lens(q_lens, n_docs, &len_q)) || (s = sum_lens(k_lens, n_docs, &len_k)))
        return s;
    spattn__mb b;
    if (spattn__mb_init(&b, len_q, len_k))
        return b.err;
    size_t d = 0, qs = 0, ks = 0; /* the first document with rows at or after the tile */
    for (size_t qt = 0; qt < b.nqt && !b.err; qt++) {
        size_t row0 = qt * TQ, row1 = row0 + TQ;
        while (d < n_docs && qs + q_lens[d] <= row0) {
            qs += q_lens[d];
            ks += k_lens[d];
            d++;
        }
        spattn__mb_begin(&b, qt);
        size_t e = d, eqs = qs, eks = ks;
        for (; e < n_docs && eqs < row1 && !b.err; e++) {
            if (q_lens[e] && k_lens[e])
                add_doc(&b, row0, eqs, q_lens[e], eks, k_lens[e], causal);
            eqs += q_lens[e];
            eks += k_lens[e];
        }
        spattn__mb_end(&b);
    }
    return spattn__mb_finish(&b, out);
}

spattn_status spattn_mask_documents(const size_t *doc_lens, size_t n_docs, int causal,
                                    spattn_mask **out)
{
    return build_docs(doc_lens, doc_lens, n_docs, causal, out);
}

spattn_status spattn_mask_documents_kv(const size_t *q_lens, const size_t *k_lens, size_t n_docs,
                                       int causal, spattn_mask **out)
{
    return build_docs(q_lens, k_lens, n_docs, causal, out);
}
