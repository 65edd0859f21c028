/*
 * spattn — masked sparse softmax-attention on CPUs.
 *
 *   O = softmax(scale * Q K^T over the allowed pairs) V
 *
 * For batch b, query head h, query row i, with g = heads_q / heads_kv and kv head h / g:
 *
 *   s[i,j] = scale * dot(Q[b,h,i,:], K[b,h/g,j,:])     (softcap, if set: softcap*tanh(s/softcap))
 *   O[b,h,i,:] = sum over allowed j of exp(s[i,j] - m_i) / l_i * V[b,h/g,j,:]
 *   m_i = max over allowed j of s[i,j];  l_i = sum over allowed j of exp(s[i,j] - m_i)
 *   lse[b,h,i] = m_i + log(l_i)
 *
 * Masked-out pairs are skipped, not computed: cost follows the number of allowed pairs.
 * A row with no allowed key gives O = 0 and lse = -INFINITY, never NaN. NaN or Inf in an
 * input reaches only the outputs that depend on it; in particular K and V rows that no allowed
 * pair touches (an unfilled KV-cache slot, say) are never read into a result.
 *
 * Accuracy: for inputs of unit scale every output is within 2e-5 * (1 + |ref|) of a float64
 * reference (spattn_reference_forward). Results are bitwise identical for any num_threads.
 *
 * Conventions of every function below that returns spattn_status: all inputs are validated
 * before any output is touched; on failure nothing is written and an `out` pointer, if given,
 * is set to NULL. The library never prints and keeps no mutable global state (CPU detection
 * and the SPATTN_ISA environment variable are read once, thread-safely, on first use).
 */
#ifndef SPATTN_H
#define SPATTN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(SPATTN_SHARED_BUILD) && (defined(__GNUC__) || defined(__clang__))
#define SPATTN_API __attribute__((visibility("default")))
#else
#define SPATTN_API
#endif

#define SPATTN_VERSION_MAJOR 0
#define SPATTN_VERSION_MINOR 2
#define SPATTN_VERSION_PATCH 0

/* Most threads one call uses (a larger num_threads is capped). */
#define SPATTN_MAX_THREADS 1024

/* Largest len_q / len_k a mask or problem may have (CSR column indices are int32_t). */
#define SPATTN_MAX_LEN ((size_t)INT32_MAX)

/* ------------------------------------------------------------------------------------------ */
/* Status                                                                                      */
/* ------------------------------------------------------------------------------------------ */

typedef enum spattn_status {
    SPATTN_OK = 0,
    SPATTN_E_NULL,        /* a required pointer is NULL */
    SPATTN_E_SHAPE,       /* zero, inconsistent or overflowing size or stride */
    SPATTN_E_MASK,        /* malformed mask input, or mask shape != problem shape */
    SPATTN_E_ARG,         /* any other bad argument: bad enum, non-finite or negative scale,
                             heads_q % heads_kv != 0, output aliasing an input, ... */
    SPATTN_E_UNSUPPORTED, /* ISA or feature not compiled in / not supported by this CPU+OS */
    SPATTN_E_NOMEM
} spattn_status;

/* A short English description of `s`; never NULL, also for values outside the enum. */
SPATTN_API const char *spattn_status_string(spattn_status s);

/* The library version as "MAJOR.MINOR.PATCH". */
SPATTN_API const char *spattn_version(void);

/* ------------------------------------------------------------------------------------------ */
/* CPU dispatch                                                                                */
/* ------------------------------------------------------------------------------------------ */

typedef enum spattn_isa {
    SPATTN_ISA_AUTO =
        0,             /* best available; the environment variable SPATTN_ISA
                          (scalar|avx2|avx512|neon|avx512bf16|neonbf16|avx512amx) overrides AUTO */
    SPATTN_ISA_SCALAR, /* portable C; always available */
    SPATTN_ISA_AVX2,   /* AVX2 + FMA */
    SPATTN_ISA_AVX512, /* AVX-512 F/BW/DQ/VL */
    SPATTN_ISA_NEON,   /* AArch64 Advanced SIMD */
    /* AVX-512 with AVX512-BF16 dot products (vdpbf16ps) */
    SPATTN_ISA_AVX512BF16,
    /* AArch64 Advanced SIMD with FEAT_BF16 dot products (BFDOT); SPATTN_ISA=neonbf16 */
    SPATTN_ISA_NEON_BF16,
    /* AVX-512 with AMX-BF16 tile products (tdpbf16ps) for bf16 Q.K; SPATTN_ISA=avx512amx */
    SPATTN_ISA_AVX512AMX
} spattn_isa;

/* Nonzero when `isa` has kernels compiled into this build AND this CPU and OS can run them.
   SPATTN_ISA_AUTO is available when AUTO resolves to a runnable ISA (see below). */
SPATTN_API int spattn_isa_available(spattn_isa isa);

/* What AUTO resolves to: the best available ISA (the first of spattn_isas_compiled that is
   available and that spattn_isa_auto_skip_reason does not pass over), or the one SPATTN_ISA
   names. When SPATTN_ISA
   names an ISA that is unknown or that this build or CPU cannot run, AUTO resolves to nothing:
   this returns SPATTN_ISA_AUTO and every call that uses AUTO fails with SPATTN_E_UNSUPPORTED
   (never a silent fallback, never SIGILL). */
SPATTN_API spattn_isa spattn_isa_selected(void);

/* "auto", "scalar", "avx2", "avx512", "neon", "avx512bf16", "neonbf16", "avx512amx"; "unknown"
   for values outside the enum. */
SPATTN_API const char *spattn_isa_name(spattn_isa isa);

/* Why `isa` is not available, as a sentence ("not compiled in: ...", "CPU lacks ...", "OS has
   not enabled ... state"), or NULL when it is available. For SPATTN_ISA_AUTO: why AUTO resolves
   to nothing (a bad SPATTN_ISA value), or NULL. */
SPATTN_API const char *spattn_isa_unavailable_reason(spattn_isa isa);

/* Why AUTO passes over `isa` although this CPU runs it, as a sentence; NULL when AUTO takes it
   in its turn, and for ISAs that are not available. AUTO passes over avx512bf16 on CPUs whose
   vdpbf16ps runs at half the float FMA's flop rate (Intel's), where avx512 computes bf16 Q.K
   and P.V faster in float; SPATTN_ISA=avx512bf16 and spattn_options.isa still select it. */
SPATTN_API const char *spattn_isa_auto_skip_reason(spattn_isa isa);

/* The ISAs this build has kernels for, best first, whether or not this CPU can run them (the
   last is always SPATTN_ISA_SCALAR). Writes the first min(count, cap) of them to out (which
   may be NULL when cap is 0) and returns the count. */
SPATTN_API size_t spattn_isas_compiled(spattn_isa *out, size_t cap);

/* The CPU features the library detected that matter to it, space-separated, for reports; ""
   when none. The names are those of the OS and vendor manuals: on x86 "avx2", "fma", "f16c",
   "avx512f", "avx512bw", "avx512dq", "avx512vl", "avx512bf16", "avx512fp16", "amx", "popcnt"
   (plans count mask bits with it), and "os-ymm" / "os-zmm" when the OS has enabled YMM / ZMM
   and opmask state; on AArch64 "neon", "fp16", "bf16", "dotprod", "sve". Valid for the life
   of the process. */
SPATTN_API const char *spattn_cpu_features(void);

typedef struct spattn_options {
    spattn_isa isa;  /* 0 = AUTO; an unavailable ISA -> SPATTN_E_UNSUPPORTED */
    int num_threads; /* 0 = all cores; 1 = the calling thread only (no thread is started);
                        negative -> SPATTN_E_ARG. At most SPATTN_MAX_THREADS, and no more
                        than there are work units (batch x heads_q x 16-row query tiles) */
} spattn_options;    /* a NULL options pointer means all defaults */

/* ------------------------------------------------------------------------------------------ */
/* Masks                                                                                       */
/* ------------------------------------------------------------------------------------------ */

/* Which (query, key) pairs of one len_q x len_k head are allowed. Opaque, immutable after
   creation, and shareable by any number of threads, plans and calls. A plan keeps the masks it
   was made from alive by itself: a mask may be freed while plans made from it still exist.
   Lengths must be in 1..SPATTN_MAX_LEN (else SPATTN_E_SHAPE).

   "Bottom-right aligned" below means that query row i stands at key position
   i' = i + (len_k - len_q), as in a KV cache where the queries are the newest tokens
   (len_q <= len_k is the usual case; with len_q > len_k the first rows see fewer keys or none). */
typedef struct spattn_mask spattn_mask;

/* Causal, bottom-right aligned: query i may see key j <= i'. */
SPATTN_API spattn_status spattn_mask_causal(size_t len_q, size_t len_k, spattn_mask **out);

/* Band, bottom-right aligned: keys j in [i' - left, i' + right] (clipped to [0, len_k)). */
SPATTN_API spattn_status spattn_mask_window(size_t len_q, size_t len_k, size_t left, size_t right,
                                            spattn_mask **out);

/* allowed[i * ld + j] != 0 allows (i, j). ld >= len_k, else SPATTN_E_SHAPE. */
SPATTN_API spattn_status spattn_mask_from_dense(size_t len_q, size_t len_k, const uint8_t *allowed,
                                                size_t ld, spattn_mask **out);

/* Row i allows col_idx[row_ptr[i] .. row_ptr[i+1]-1]: row_ptr has len_q + 1 entries,
   row_ptr[0] == 0, non-decreasing; within a row the columns are strictly increasing and in
   [0, len_k). Anything else -> SPATTN_E_MASK. col_idx may be NULL when row_ptr[len_q] == 0.
   Costs O(nnz + tiles), not O(len_q * len_k). */
SPATTN_API spattn_status spattn_mask_from_csr(size_t len_q, size_t len_k, const int64_t *row_ptr,
                                              const int32_t *col_idx, spattn_mask **out);

/* Block layout: nbq = ceil(len_q / block_q) rows by nbk = ceil(len_k / block_k) columns;
   layout[r * nbk + c] != 0 allows the whole block (edge blocks are clipped).
   block_q or block_k == 0 -> SPATTN_E_SHAPE. */
SPATTN_API spattn_status spattn_mask_from_blocks(size_t len_q, size_t len_k, size_t block_q,
                                                 size_t block_k, const uint8_t *layout,
                                                 spattn_mask **out);

/* Element-wise AND / OR of two masks of the same shape (else SPATTN_E_MASK). */
SPATTN_API spattn_status spattn_mask_and(const spattn_mask *a, const spattn_mask *b,
                                         spattn_mask **out);
SPATTN_API spattn_status spattn_mask_or(const spattn_mask *a, const spattn_mask *b,
                                        spattn_mask **out);

/* The rectangle [q0, q1) x [k0, k1) of m as a (q1-q0) x (k1-k0) mask: pair (i, j) of the
   slice is pair (q0 + i, k0 + j) of m. 0 <= q0 < q1 <= len_q and 0 <= k0 < k1 <= len_k, else
   SPATTN_E_SHAPE; m or out NULL -> SPATTN_E_NULL (*out is NULL on every error). Costs
   O(rows + tiles of the slice), never O(area): it is built from m's 16 x 64 tiles, shifted
   when q0 or k0 is not on a tile boundary. A slice may allow no pair at all (a key shard a
   query block does not see); spattn_forward then gives its rows O = 0 and lse = -inf, which
   spattn_merge ignores. For attention over key shards, see spattn_merge. */
SPATTN_API spattn_status spattn_mask_slice(const spattn_mask *m, size_t q0, size_t q1, size_t k0,
                                           size_t k1, spattn_mask **out);

/* Shape and number of allowed pairs; 0 for a NULL mask. */
SPATTN_API size_t spattn_mask_len_q(const spattn_mask *m);
SPATTN_API size_t spattn_mask_len_k(const spattn_mask *m);
SPATTN_API uint64_t spattn_mask_nnz(const spattn_mask *m);

/* Writes allowed[i * ld + j] = 1 or 0 for every pair; ld >= len_k, else SPATTN_E_SHAPE. */
SPATTN_API spattn_status spattn_mask_to_dense(const spattn_mask *m, uint8_t *allowed, size_t ld);

/* The allowed pairs in CSR form: row_ptr gets len_q + 1 entries, col_idx gets nnz entries
   (columns increasing within a row). Size col_idx with spattn_mask_nnz. */
SPATTN_API spattn_status spattn_mask_to_csr(const spattn_mask *m, int64_t *row_ptr,
                                            int32_t *col_idx);

/* Releases the caller's reference; NULL is a no-op. */
SPATTN_API void spattn_mask_free(spattn_mask *m);

/* --- Published sparse patterns. All are bottom-right aligned (i' as above) and causal where
       the pattern is; each is exactly the set written in its comment. --------------------- */

/* Sparse Transformer, strided (Child et al. 2019): key j <= i' with
   (i' - j) < stride  or  (i' - j) % stride == 0.   stride >= 1, else SPATTN_E_ARG. */
SPATTN_API spattn_status spattn_mask_strided(size_t len_q, size_t len_k, size_t stride,
                                             spattn_mask **out);

/* Sparse Transformer, fixed (Child et al. 2019): key j <= i' with
   j / stride == i' / stride  or  j % stride >= stride - summary.
   1 <= summary <= stride, else SPATTN_E_ARG. */
SPATTN_API spattn_status spattn_mask_fixed(size_t len_q, size_t len_k, size_t stride,
                                           size_t summary, spattn_mask **out);

/* Longformer (Beltagy et al. 2020): the band [i' - left, i' + right] plus global tokens:
   for each g in global[0 .. n_global-1] (key positions, any order, duplicates allowed), key g
   is seen by every query, and the query at position i' == g sees every key.
   A g >= len_k -> SPATTN_E_ARG; global may be NULL when n_global == 0. */
SPATTN_API spattn_status spattn_mask_longformer(size_t len_q, size_t len_k, size_t left,
                                                size_t right, const size_t *global, size_t n_global,
                                                spattn_mask **out);

/* BigBird (Zaheer et al. 2020) in blocks of `block` tokens, with qb = i' / block and
   kb = j / block: (i, j) is allowed when
     |qb - kb| <= window                      (sliding window of 2*window+1 blocks), or
     kb < global  or  qb < global             (global blocks see and are seen by all), or
     kb is one of qb's random blocks.
   Random blocks: a splitmix64 generator seeded with `seed`; for qb = 0, 1, ..., nkb - 1
   (nkb = ceil(len_k / block), whatever len_q is, so that a decode mask is exactly the last rows
   of the full one) draw candidates kb = next() % nkb, keeping the first `random` distinct ones
   (all nkb if random >= nkb).
   A query row with i' < 0 (len_q > len_k) has no query block: it sees only the global key
   blocks. block >= 1, else SPATTN_E_ARG. The same arguments always give the same mask. */
SPATTN_API spattn_status spattn_mask_bigbird(size_t len_q, size_t len_k, size_t block,
                                             size_t window, size_t global, size_t random,
                                             uint64_t seed, spattn_mask **out);

/* Dilated window: keys j = i' - t * dilation for t = 0 .. left and j = i' + t * dilation for
   t = 1 .. right (those in [0, len_k)). dilation >= 1, else SPATTN_E_ARG. */
SPATTN_API spattn_status spattn_mask_dilated(size_t len_q, size_t len_k, size_t left, size_t right,
                                             size_t dilation, spattn_mask **out);

/* StreamingLLM (Xiao et al. 2023): sink tokens beside a causal window. Key j is allowed when
     j <= i'  and  (j < n_sink  or  j > i' - window),
   i.e. the first n_sink keys plus the `window` most recent ones up to i' itself. window 0
   leaves the sinks only (and with n_sink 0 too, an empty mask); n_sink >= len_k or
   window >= len_k make it spattn_mask_causal. As there, rows with i' < 0 (len_q > len_k) see
   nothing. No parameter value is invalid. Costs O(tiles). */
SPATTN_API spattn_status spattn_mask_streaming(size_t len_q, size_t len_k, size_t n_sink,
                                               size_t window, spattn_mask **out);

/* --- Packed sequences: documents laid end to end in one sequence, each attending only to
       itself (block diagonal). Both cost O(n_docs + tiles), never O(len_q * len_k). ------- */

/* len_q = len_k = L = doc_lens[0] + ... + doc_lens[n_docs-1]. Document d holds the positions
   [s_d, s_d + doc_lens[d]), s_d = the sum of the lengths before it. Query i of document d may
   see key j of document d only, and with causal != 0 only j <= i.
   A zero length is allowed and contributes nothing. L == 0 (n_docs 0, every length 0) or
   L > SPATTN_MAX_LEN -> SPATTN_E_SHAPE; doc_lens NULL with n_docs > 0 -> SPATTN_E_NULL. */
SPATTN_API spattn_status spattn_mask_documents(const size_t *doc_lens, size_t n_docs, int causal,
                                               spattn_mask **out);

/* The same with queries against KV caches of other lengths (a batch of prefills or decodes of
   different lengths in one call): len_q = sum of q_lens, len_k = sum of k_lens; document d
   holds query rows [qs_d, qs_d + q_lens[d]) and keys [ks_d, ks_d + k_lens[d]) (qs_d, ks_d the
   sums before d). Local query r of document d (row qs_d + r) may see the keys of document d
   only, and with causal != 0 only local keys t <= r + k_lens[d] - q_lens[d] (key ks_d + t):
   bottom-right aligned within the document. So with q_lens[d] > k_lens[d] and causal, the
   first q_lens[d] - k_lens[d] rows of d see nothing; with k_lens[d] == 0 none of its rows
   do. Zero lengths are allowed. len_q or len_k == 0 or > SPATTN_MAX_LEN -> SPATTN_E_SHAPE;
   q_lens or k_lens NULL with n_docs > 0 -> SPATTN_E_NULL.
   spattn_mask_documents(lens, n, c) == spattn_mask_documents_kv(lens, lens, n, c). */
SPATTN_API spattn_status spattn_mask_documents_kv(const size_t *q_lens, const size_t *k_lens,
                                                  size_t n_docs, int causal, spattn_mask **out);

/* allow(i, j, ctx) != 0 allows (i, j); called exactly once per pair, rows in order. */
typedef int (*spattn_allow_fn)(size_t i, size_t j, void *ctx);
SPATTN_API spattn_status spattn_mask_from_fn(size_t len_q, size_t len_k, spattn_allow_fn allow,
                                             void *ctx, spattn_mask **out);

/* ------------------------------------------------------------------------------------------ */
/* Attention                                                                                   */
/* ------------------------------------------------------------------------------------------ */

typedef struct spattn_shape {
    size_t batch, heads_q, heads_kv; /* heads_q % heads_kv == 0 (MHA, GQA, MQA) */
    size_t len_q, len_k;
    size_t dim_qk, dim_v;
} spattn_shape;

/* Element strides of a [batch][head][token][dim] view; the dim axis is contiguous.
   Strides must be >= 0 (0 broadcasts an input, e.g. one K for every batch). An output view
   (o) must not map two elements to one address. */
typedef struct spattn_layout {
    ptrdiff_t batch, head, token;
} spattn_layout;
SPATTN_API spattn_layout spattn_layout_bhtd(size_t heads, size_t len, size_t dim);
SPATTN_API spattn_layout spattn_layout_bthd(size_t heads, size_t len, size_t dim);

/* Element types (0.2). Each of q, k/v and o has its own; strides count elements of the
   tensor's own type. Every combination works everywhere (spattn_forward, spattn_plan_execute,
   spattn_reference_forward, spattn_probs); a value outside the enum is SPATTN_E_ARG. Scores,
   the softmax and the accumulation are float32 or better: what is computed is the formula
   above on the inputs' exact values (every bf16 and f16 value is exactly a float), with o
   rounded to nearest even into o_dtype. Accuracy against the float64 reference on the same
   inputs, for unit-scale inputs: every output within (t_in + t_out) * (1 + |ref|), with t_in
   2e-5 when q and kv are both F32, 2e-3 when the narrowest of them is F16, 1e-2 when one is
   BF16, and t_out 0 for F32, 2^-8 for BF16 and 2^-11 for F16 outputs. lse is always float.
   The fully-masked-row, NaN-isolation and thread-count guarantees hold for every type. */
typedef enum spattn_dtype {
    SPATTN_DTYPE_F32 = 0, /* IEEE binary32 */
    SPATTN_DTYPE_BF16,    /* bfloat16: the high 16 bits of a binary32, as uint16_t */
    SPATTN_DTYPE_F16      /* IEEE binary16, as uint16_t */
} spattn_dtype;

/* Conversions users need to prepare inputs and read outputs: n elements from x to y, which
   must not overlap. Rounding is to nearest, ties to even; NaN stays NaN (quiet, sign kept);
   a float beyond the f16 range gives +-Inf (bf16 has the float range: only a float that
   rounds past its largest finite value does). Widening to float is exact. */
SPATTN_API void spattn_f32_to_bf16(const float *x, uint16_t *y, size_t n);
SPATTN_API void spattn_bf16_to_f32(const uint16_t *x, float *y, size_t n);
SPATTN_API void spattn_f32_to_f16(const float *x, uint16_t *y, size_t n);
SPATTN_API void spattn_f16_to_f32(const uint16_t *x, float *y, size_t n);

typedef struct spattn_args {
    spattn_shape shape;
    const void *q; /* elements of q_dtype; a float * converts implicitly (likewise k, v, o) */
    spattn_layout q_layout;
    /* Any alignment of an element's size works; K and V rows on 64-byte boundaries (base and
       token stride) are read fastest where the mask is sparse (README, "Layouts"). */
    const void *k; /* elements of kv_dtype */
    spattn_layout k_layout;
    const void *v; /* elements of kv_dtype */
    spattn_layout v_layout;
    void *o; /* elements of o_dtype */
    spattn_layout o_layout;
    float *lse;    /* optional, NULL or [batch][heads_q][len_q] contiguous */
    float scale;   /* 0 = 1/sqrt(dim_qk); negative or non-finite -> SPATTN_E_ARG */
    float softcap; /* 0 = off; negative or non-finite -> SPATTN_E_ARG */
    /* Score modifiers (0.2). With i' = i + (len_k - len_q) + pos_offset, an allowed pair's
       score is softcap(scale * dot(Q_i, K_j)) - alibi_slopes[h] * |i' - j|. With sinks, each
       row's softmax gains the logit sinks[h], which has no value row: a row with no allowed
       key gives O = 0 and lse = sinks[h]. A slope must be finite (any sign), a sink finite or
       -INFINITY (no sink for that head), else SPATTN_E_ARG. With alibi_slopes, every |i' - j|
       of the shape must be at most 2^24 (distances are exact floats up to there), that is
       len_q - 1 - 2^24 <= pos_offset <= 2^24 - (len_k - 1), else SPATTN_E_ARG; without
       slopes pos_offset has no effect and any value is accepted. The two arrays must not
       overlap an output (SPATTN_E_ARG). */
    const float *alibi_slopes; /* NULL, or heads_q floats */
    const float *sinks;        /* NULL, or heads_q floats */
    ptrdiff_t pos_offset;      /* 0 for a whole sequence; for a key shard, see the 0.2 docs */
    spattn_dtype q_dtype;      /* element type of q (0.2; 0 = F32, see spattn_dtype) */
    spattn_dtype kv_dtype;     /* element type of k and v (the same for both) */
    spattn_dtype o_dtype;      /* element type of o; lse is always float */
} spattn_args;

/* The standard ALiBi slopes (Press et al. 2022, "Train Short, Test Long") for `heads` heads,
   into slopes[0 .. heads-1], for spattn_args.alibi_slopes. For heads = 2^m: slope k (1-based)
   is 2^(-8k / 2^m), so 8 heads get 1/2, 1/4, ..., 1/256. Otherwise, with p the largest power
   of two below heads: the p slopes of p heads, then slopes 1, 3, 5, ... of the 2p-head list
   until there are `heads` (12 heads: the 8-head list, then 2^-0.5, 2^-1.5, 2^-2.5, 2^-3.5).
   Slopes that are powers of two are exact; the others are within one float ulp of the exact
   value. Writes nothing else; costs O(heads).
   slopes NULL -> SPATTN_E_NULL; heads 0 -> SPATTN_E_SHAPE. */
SPATTN_API spattn_status spattn_alibi_slopes(size_t heads, float *slopes);

/* masks: NULL with n_masks == 0 = every pair allowed; otherwise n_masks is 1 (one mask for all),
   heads_q (per head, same for every batch) or batch*heads_q (index b*heads_q + h). Every mask
   must be len_q x len_k. o (and lse) must not overlap q, k, v or each other (SPATTN_E_ARG). */
SPATTN_API spattn_status spattn_forward(const spattn_args *args, const spattn_mask *const *masks,
                                        size_t n_masks, const spattn_options *opt);

/* Combines results of the same rows over disjoint sets of keys (o_s with its lse_s):
     lse = log(sum_s exp(lse_s)),   o = sum_s exp(lse_s - lse) * o_s,
   summed in the order s = 0, 1, ..., n_parts-1, so the result is reproducible bit for bit
   (also across ISAs: the weights are computed alike on each, the sum as one fma chain).
   o_parts[s] and o are rows x dim floats, contiguous; lse_parts[s] and lse are rows floats.
   A row whose every lse_s is -inf gives o = 0 and lse = -inf; a part whose lse_s is -inf adds
   nothing to its row and its o_s row is not read. o and lse may be o_parts[0] and
   lse_parts[0] (accumulating in place); no other overlap of an output with an input or with
   the other output is allowed (SPATTN_E_ARG). Inputs may overlap each other.
   Checks, first failing wins: o_parts, lse_parts, o or lse NULL -> SPATTN_E_NULL; n_parts,
   rows or dim == 0, or rows * dim floats above PTRDIFF_MAX bytes -> SPATTN_E_SHAPE; a NULL
   o_parts[s] or lse_parts[s] -> SPATTN_E_NULL; overlap -> SPATTN_E_ARG; SPATTN_ISA naming an
   ISA that is not runnable -> SPATTN_E_UNSUPPORTED. Nothing is written on error.
   Runs on the calling thread with the AUTO ISA.

   Attention over key shards (ring / sequence-parallel attention): for query rows [q0, q1) of a
   problem with lengths Lq, Lk and a shard [k0, k1) of its keys, call spattn_forward with
   len_q = q1 - q0, len_k = k1 - k0, the shard's Q, K, V, the mask
   spattn_mask_slice(m, q0, q1, k0, k1), an lse buffer and pos_offset = (Lk - k1) - (Lq - q1),
   passing sinks in exactly one shard's call; merging the shards' (o, lse) gives the unsharded
   result within the accuracy of spattn_forward. */
SPATTN_API spattn_status spattn_merge(size_t n_parts, size_t rows, size_t dim,
                                      const float *const *o_parts, const float *const *lse_parts,
                                      float *o, float *lse);

/* --- Split-KV (0.2 extension). A plan whose units (one query tile of one head, or of one KV
   head's query heads in decode) cannot keep threads busy, with long rows of keys, cuts each
   head's keys into segments, runs them as pieces of work of their own and merges them in
   segment order as spattn_merge does. The segments depend on the shape and the masks only,
   never on num_threads, so the result stays bitwise the same for any thread count.
   spattn_plan_kv_segments gives the number of key segments of head h of batch b (1: not
   split), or 0 when plan is NULL or b or h is out of range. When bounds is not NULL and cap is
   at least that number plus one, it also writes their bounds: segment s is the keys
   [bounds[s], bounds[s + 1]), bounds[0] = 0 and the last bound is len_k; otherwise it writes
   nothing. */
struct spattn_plan;
SPATTN_API size_t spattn_plan_kv_segments(const struct spattn_plan *plan, size_t b, size_t h,
                                          size_t *bounds, size_t cap);

/* The same, split: analyse shape and masks once (tile lists, gather decisions, a work split
   balanced by allowed pairs), execute many times. Execute is thread-safe: several threads may
   execute one plan at once with different arguments. */
typedef struct spattn_plan spattn_plan;
SPATTN_API spattn_status spattn_plan_create(const spattn_shape *shape,
                                            const spattn_mask *const *masks, size_t n_masks,
                                            const spattn_options *opt, spattn_plan **out);
/* args->shape must equal the plan's, else SPATTN_E_SHAPE. */
SPATTN_API spattn_status spattn_plan_execute(const spattn_plan *plan, const spattn_args *args);
/* NULL is a no-op. */
SPATTN_API void spattn_plan_free(spattn_plan *plan);

/* The ISA a plan runs on (never SPATTN_ISA_AUTO), and the number of threads it uses. */
SPATTN_API spattn_isa spattn_plan_isa(const spattn_plan *plan);
SPATTN_API int spattn_plan_threads(const spattn_plan *plan);

/* Row softmax of scale * x over the allowed entries of one mask (rows x cols = len_q x len_k);
   masked entries and rows with none allowed come out 0. x and y are rows x cols with leading
   dimension ld >= cols; scale 0 means 1; y may equal x (in place) but must not otherwise
   overlap it. */
SPATTN_API spattn_status spattn_softmax_masked(const float *x, float *y, size_t rows, size_t cols,
                                               size_t ld, const spattn_mask *mask, float scale,
                                               const spattn_options *opt);

/* ------------------------------------------------------------------------------------------ */
/* Reference                                                                                   */
/* ------------------------------------------------------------------------------------------ */

/* The formula above computed straight, in float64, pair by pair, with no tiling and no SIMD;
   same arguments, validation and statuses as spattn_forward (options aside). Slow: it is what
   the kernels are tested against, shipped so that users can test on their own data too. */
SPATTN_API spattn_status spattn_reference_forward(const spattn_args *args,
                                                  const spattn_mask *const *masks, size_t n_masks);

/* spattn_softmax_masked computed in float64. */
SPATTN_API spattn_status spattn_reference_softmax_masked(const float *x, float *y, size_t rows,
                                                         size_t cols, size_t ld,
                                                         const spattn_mask *mask, float scale);

/* ------------------------------------------------------------------------------------------ */
/* Attention probabilities                                                                     */
/* ------------------------------------------------------------------------------------------ */

/* The softmax probabilities p[i,j] = exp(s[i,j] - lse[i]) of a plan's problem, for the allowed
   pairs only, without a dense len_q x len_k matrix. Values are laid out (batch, head) after
   (batch, head), in the order b * heads_q + h; within one (b, h) they follow that head's mask in
   CSR order (rows in order, keys increasing within a row), so spattn_mask_to_csr of
   spattn_plan_mask(plan, b, h) gives the (i, j) of each value. */

/* Total number of values spattn_probs writes to `probs`: the sum over every (batch, head) of
   the allowed pairs of its mask (len_q * len_k per head for a plan made without masks).
   0 for a NULL plan. */
SPATTN_API uint64_t spattn_plan_probs_len(const spattn_plan *plan);

/* Index in `probs` of the first value of (b, h), i.e. the total length of the (batch, head)s
   before it; UINT64_MAX for a NULL plan or b >= batch or h >= heads_q. */
SPATTN_API uint64_t spattn_plan_probs_offset(const spattn_plan *plan, size_t b, size_t h);

/* The mask the plan applies to (b, h) (for a plan made without masks: an all-allowed mask the
   plan owns), for spattn_mask_to_csr / spattn_mask_nnz. Borrowed: valid while the plan lives,
   never to be passed to spattn_mask_free. NULL for a NULL plan or b, h out of range. */
SPATTN_API const spattn_mask *spattn_plan_mask(const spattn_plan *plan, size_t b, size_t h);

/* Attention probabilities of the allowed pairs, computed with the plan's ISA and kernels (each
   row's lse comes from the same kernel spattn_plan_execute runs; the scores are recomputed in
   float64 for the allowed pairs only).
     probs:    NULL, or spattn_plan_probs_len(plan) floats, laid out as described above.
     col_sums: NULL, or [batch][heads_q][len_k] floats: col_sums[b][h][j] = sum over query rows i
               of p[i,j] (0 for a key no row may see); the per-key attention mass that
               KV-cache eviction methods rank keys by. Needs no probs buffer.
   At least one of probs and col_sums must be non-NULL (else SPATTN_E_NULL).
   Of args, shape (must equal the plan's, else SPATTN_E_SHAPE), q, k, their layouts, scale,
   softcap, alibi_slopes, sinks and pos_offset are used, with the same meaning and checks as in
   spattn_forward; v, o and lse are neither read nor written and may be NULL. probs and
   col_sums must not overlap q, k, the slopes, the sinks or each other (SPATTN_E_ARG). With a
   sink, a row's probabilities sum to 1 - exp(sinks[h] - lse) (the sink's share has no key).
   Rows with no allowed key contribute nothing. Accuracy as in the header
   comment (2e-5 * (1 + |ref|) against float64 for unit-scale inputs); results are bitwise
   identical for any number of threads. Thread-safe like spattn_plan_execute. */
SPATTN_API spattn_status spattn_probs(const spattn_plan *plan, const spattn_args *args,
                                      float *probs, float *col_sums);

/* ------------------------------------------------------------------------------------------ */
/* Backward                                                                                    */
/* ------------------------------------------------------------------------------------------ */

/* Gradients of a loss L with respect to the inputs of one forward call. Layouts as in
   spattn_args (element strides, dim contiguous); outputs must map no two elements to one
   address. */
typedef struct spattn_grads {
    const float *d_o;
    spattn_layout d_o_layout; /* dL/dO, the shape of o */
    float *d_q;
    spattn_layout d_q_layout; /* written: dL/dQ, the shape of q */
    float *d_k;
    spattn_layout d_k_layout; /* written: dL/dK, the shape of k */
    float *d_v;
    spattn_layout d_v_layout; /* written: dL/dV, the shape of v */
    float *d_sinks;           /* NULL, or heads_q floats: written, dL/dsinks, when args->sinks
                                 is given (0 for a head whose sink is -INFINITY) */
} spattn_grads;

/* Gradients through spattn_plan_execute(plan, args): args is the forward call's, with o and
   lse holding what that call wrote (lse is required here: NULL -> SPATTN_E_NULL). F32 tensors
   only. d_k and d_v of a KV head sum over the query heads that share it; keys no allowed pair
   touches get 0, and NaN in their K or V rows reaches no gradient. Softcap, ALiBi (no slope
   gradient) and sinks are differentiated through. Validation and statuses as for execute;
   d_o, d_q, d_k, d_v NULL -> SPATTN_E_NULL; a bad gradient view -> SPATTN_E_SHAPE; an output
   (d_q, d_k, d_v, d_sinks when written) overlapping an input (q, k, v, o, lse, d_o, the slopes,
   the sinks) or another output -> SPATTN_E_ARG. Nothing is written on error. Accuracy: for
   unit-scale inputs and len_q, len_k <= 1024, every gradient within 1e-4 * (1 + |ref|) of
   spattn_reference_backward. Results are bitwise identical for any num_threads; thread-safe
   like execute. Cost follows the allowed pairs (about 2.5 times the forward's flops). The
   plan keeps the call's work buffers (packs of Q and dO, dK/dV accumulators, kept dS; a few
   times the size of Q, K and V) for its later backward calls, until spattn_plan_free. */
SPATTN_API spattn_status spattn_plan_backward(const spattn_plan *plan, const spattn_args *args,
                                              const spattn_grads *g);

/* The same in float64, pair by pair (the test oracle; slow): it recomputes O and the softmax
   itself, reading neither o nor lse (which must still be valid arguments, lse non-NULL).
   Masks as for spattn_forward. */
SPATTN_API spattn_status spattn_reference_backward(const spattn_args *args,
                                                   const spattn_mask *const *masks, size_t n_masks,
                                                   const spattn_grads *g);

#ifdef __cplusplus
}
#endif

#endif /* SPATTN_H */
