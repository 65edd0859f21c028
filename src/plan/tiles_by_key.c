#include "plan/tiles_by_key.h"

#include "alloc.h"
#include "kernels/bwd_slots.h"

static int build_one(const spattn_mask *m, spattn_keytiles *k)
{
    k->nkt = m->nkt;
    k->kt_ptr = spattn__calloc(m->nkt + 1, sizeof(size_t));
    k->qt = spattn__malloc((m->ntiles ? m->ntiles : 1) * sizeof(uint32_t));
    k->tile = spattn__malloc((m->ntiles ? m->ntiles : 1) * sizeof(uint32_t));
    k->ds_off = spattn__malloc((m->ntiles + 1) * sizeof(size_t));
    if (k->kt_ptr == NULL || k->qt == NULL || k->tile == NULL || k->ds_off == NULL)
        return 0;
    k->ds_off[0] = 0;
    for (size_t qt = 0; qt < m->nqt; qt++)
        for (size_t t = m->qt_ptr[qt]; t < m->qt_ptr[qt + 1]; t++)
            k->ds_off[t + 1] = k->ds_off[t] + spattn__bwd_tile_floats(m, &m->tiles[t], qt);
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
    return 1;
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
        spattn__free(x->by_mask[i].ds_off);
    }
    spattn__free(x->by_mask);
    spattn__free(x);
}
