/*
 * StreamingLLM's mask: the first n_sink keys stay visible beside a causal window of recent
 * keys. Two interval strokes per query tile (window, sinks), each of which the builder turns
 * into one rectangle plus short per-row tails, so the cost is O(tiles) like the band.
 */
#include "mask/build.h"

#define TQ SPATTN_TQ

spattn_status spattn_mask_streaming(size_t len_q, size_t len_k, size_t n_sink, size_t window,
                                    spattn_mask **out)
{
    spattn_status s = spattn__mb_check_args(out, 0, len_q, len_k);
    if (s)
        return s;
    /* Both only matter up to len_k (<= SPATTN_MAX_LEN): clamping keeps the arithmetic in
       int64_t exact. */
    int64_t ns = (int64_t)(n_sink < len_k ? n_sink : len_k);
    int64_t w = (int64_t)(window < len_k ? window : len_k);
    spattn__mb b;
    if (spattn__mb_init(&b, len_q, len_k))
        return b.err;
    for (size_t qt = 0; qt < b.nqt && !b.err; qt++) {
        int64_t ip0 = (int64_t)(qt * TQ) + (int64_t)len_k - (int64_t)len_q;
        if (ip0 + TQ <= 0)
            continue; /* every row stands before key 0 */
        spattn__mb_begin(&b, qt);
        int64_t lo[TQ], hi[TQ], zero[TQ];
        for (int r = 0; r < TQ; r++) {
            lo[r] = ip0 + r - w + 1;
            hi[r] = ip0 + r + 1; /* empty for rows with i' < 0 */
            zero[r] = 0;
        }
        if (w > 0)
            spattn__mb_add_row_ranges(&b, lo, hi);
        for (int r = 0; r < TQ; r++)
            hi[r] = hi[r] < ns ? hi[r] : ns;
        spattn__mb_add_row_ranges(&b, zero, hi);
        spattn__mb_end(&b);
    }
    return spattn__mb_finish(&b, out);
}
