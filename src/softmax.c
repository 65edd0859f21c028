#include <omp.h>

#include "kernels/dispatch.h"
#include "validate.h"

spattn_status spattn_softmax_masked(const float *x, float *y, size_t rows, size_t cols, size_t ld,
                                    const spattn_mask *mask, float scale, const spattn_options *opt)
{
    spattn_status st = spattn__check_softmax(x, y, rows, cols, ld, mask, scale);
    const spattn_kernel_table *kt = NULL;
    int nt = 1;
    if (st == SPATTN_OK)
        st = spattn__resolve(opt, &kt, &nt);
    if (st != SPATTN_OK)
        return st;
    if (nt == 0)
        nt = omp_get_num_procs() > 0 ? omp_get_num_procs() : 1;
    float s = scale != 0.0f ? scale : 1.0f;
    long nqt = (long)mask->nqt;
    if (nt > nqt)
        nt = (int)nqt;
    if (nt <= 1) {
        for (long qt = 0; qt < nqt; qt++)
            kt->softmax_tile(x, y, ld, mask, (size_t)qt, s);
    } else {
        /* Each query tile's rows are independent; any split gives the same bits. */
#pragma omp parallel for num_threads(nt) schedule(dynamic, 4)
        for (long qt = 0; qt < nqt; qt++)
            kt->softmax_tile(x, y, ld, mask, (size_t)qt, s);
    }
    return SPATTN_OK;
}
