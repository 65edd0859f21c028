#include "plan/tiles_by_key.h"

#include <string.h>

#include "alloc.h"
#include "kernels/bwd_slots.h"

/* Kept dS offsets and pair lists (kernels/bwd_slots.h): one pass counts, the next lists. */
static int build_slots(const spattn_mask *m, spattn_bwd_slots *sl)
{
    sl->ds_off = spattn__malloc((m->ntiles + 1) * sizeof(size_t));
    sl->pair_off = spattn__malloc((m->ntiles + 1) * sizeof(size_t));
    if (sl->ds_off == NULL || sl->pair_off == NULL)
        return 0;
    sl->ds_off[0] = 0;
    sl->pair_off[0] = 0;
    uint64_t rb[SPATTN_TQ];
    for (size_t qt = 0; qt < m->nqt; qt++)
        for (size_t t = m->qt_ptr[qt]; t < m->qt_ptr[qt + 1]; t++) {
            size_t pairs;
            const int listed = spattn__bwd_tile_pairs(m, &m->tiles[t], qt, rb, &pairs);
            sl->ds_off[t + 1] = sl->ds_off[t] + spattn__bwd_tile_floats(m, &m->tiles[t], qt);
            sl->pair_off[t + 1] = sl->pair_off[t] + (listed ? pairs : 0);
        }
    sl->pair_rc =
        spattn__malloc((sl->pair_off[m->ntiles] ? sl->pair_off[m->ntiles] : 1) * sizeof(uint16_t));
    if (sl->pair_rc == NULL)
        return 0;
    for (size_t qt = 0; qt < m->nqt; qt++)
        for (size_t t = m->qt_ptr[qt]; t < m->qt_ptr[qt + 1]; t++) {
            size_t pairs, e = sl->pair_off[t];
            if (!spattn__bwd_tile_pairs(m, &m->tiles[t], qt, rb, &pairs))
                continue;
            for (size_t r = 0; r < SPATTN_TQ; r++)
                for (uint64_t b = rb[r]; b != 0; b &= b - 1)
                    sl->pair_rc[e++] = (uint16_t)(r * SPATTN_TK + (size_t)__builtin_ctzll(b));
        }
    return 1;
}

/* The slots of every entry, copied into the entries' order. */
static int build_entries(const spattn_mask *m, spattn_keytiles *k)
{
    const spattn_bwd_slots *sl = &k->slots;
    k->e_ds_off = spattn__malloc((m->ntiles ? m->ntiles : 1) * sizeof(size_t));
    k->e_pair_off = spattn__malloc((m->ntiles + 1) * sizeof(size_t));
    k->e_pair_rc =
        spattn__malloc((sl->pair_off[m->ntiles] ? sl->pair_off[m->ntiles] : 1) * sizeof(uint16_t));
    if (k->e_ds_off == NULL || k->e_pair_off == NULL || k->e_pair_rc == NULL)
        return 0;
    k->e_pair_off[0] = 0;
    for (size_t e = 0; e < m->ntiles; e++) {
        const size_t t = k->tile[e], n = sl->pair_off[t + 1] - sl->pair_off[t];
        k->e_ds_off[e] = sl->ds_off[t];
        memcpy(k->e_pair_rc + k->e_pair_off[e], sl->pair_rc + sl->pair_off[t],
               n * sizeof(uint16_t));
        k->e_pair_off[e + 1] = k->e_pair_off[e] + n;
    }
    return 1;
}

static int build_one(const spattn_mask *m, spattn_keytiles *k)
{
    k->nkt = m->nkt;
    k->kt_ptr = spattn__calloc(m->nkt + 1, sizeof(size_t));
    k->qt = spattn__malloc((m->ntiles ? m->ntiles : 1) * sizeof(uint32_t));
    k->tile = spattn__malloc((m->ntiles ? m->ntiles : 1) * sizeof(uint32_t));
    if (k->kt_ptr == NULL || k->qt == NULL || k->tile == NULL || !build_slots(m, &k->slots))
        return 0;
    for (size_t t = 0; t < m->ntiles; t++)
        k->kt_ptr[m->tiles[t].kt + 1]++;
    for (size_t kt = 0; kt < m->nkt; kt++)
        k->kt_ptr[kt + 1] += k->kt_ptr[kt];
    /* Query tiles in increasing order fill each key tile's entries in increasing qt. */
    size_t *fill = spattn__malloc((m->nkt ? m->nkt : 1) * sizeof(size_t));
    if (fill == NULL)
        return 0;
    for (size_t kt = 0; kt < m->nkt; kt++)
        fill[kt] = k->kt_ptr[kt];
    for (size_t qt = 0; qt < m->nqt; qt++)
        for (size_t t = m->qt_ptr[qt]; t < m->qt_ptr[qt + 1]; t++) {
            const size_t e = fill[m->tiles[t].kt]++;
            k->qt[e] = (uint32_t)qt;
            k->tile[e] = (uint32_t)t;
        }
    spattn__free(fill);
    return build_entries(m, k);
}

spattn_bwd_index *spattn__bwd_index_build(const spattn_mask *const *masks, size_t n_masks)
{
    spattn_bwd_index *x = spattn__calloc(1, sizeof *x);
    if (x == NULL)
        return NULL;
    x->n_masks = n_masks;
    x->by_mask = spattn__calloc(n_masks, sizeof *x->by_mask);
    if (x->by_mask == NULL) {
        spattn__free(x);
        return NULL;
    }
    for (size_t i = 0; i < n_masks; i++)
        if (masks[i] != NULL && !build_one(masks[i], &x->by_mask[i])) {
            spattn__bwd_index_free(x);
            return NULL;
        }
    return x;
}

void spattn__bwd_index_free(spattn_bwd_index *x)
{
    if (x == NULL)
        return;
    for (size_t i = 0; i < x->n_masks; i++) {
        spattn__free(x->by_mask[i].kt_ptr);
        spattn__free(x->by_mask[i].qt);
        spattn__free(x->by_mask[i].tile);
        spattn__free(x->by_mask[i].slots.ds_off);
        spattn__free(x->by_mask[i].slots.pair_off);
        spattn__free(x->by_mask[i].slots.pair_rc);
        spattn__free(x->by_mask[i].e_ds_off);
        spattn__free(x->by_mask[i].e_pair_off);
        spattn__free(x->by_mask[i].e_pair_rc);
    }
    spattn__free(x->by_mask);
    spattn__free(x);
}
