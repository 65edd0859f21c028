/* One benchmark of the grid: what it runs, on what problem. Shared by every bench_*.c. */
#ifndef SPATTN_BENCH_CASE_H
#define SPATTN_BENCH_CASE_H

#include <stddef.h>
#include <stdint.h>

#include "bench_shim.h"
#include "spattn.h"

typedef enum bench_kind {
    BK_ATTN,  /* spattn_plan_execute on one ISA */
    BK_BLAS,  /* OpenBLAS sgemm + masked softmax loop + sgemm, everything computed */
    BK_PLAN,  /* spattn_plan_create time, mask and plan memory */
    BK_PATH,  /* BK_ATTN with every query tile forced down one path (tiles or gather) */
    BK_MEMBW, /* streaming read of a buffer far larger than the caches */
    BK_PEAK,  /* the ISA's FMA probe (one thread) */
    BK_MERGE, /* spattn_merge of param parts, len_q rows by dim (AUTO ISA, calling thread) */
    BK_BWD    /* spattn_plan_backward on one ISA */
} bench_kind;

typedef enum bench_pattern {
    BP_DENSE,    /* every pair: the dense problem of the same shape */
    BP_BLOCKS64, /* random 64x64 blocks, diagonal blocks first */
    BP_ELEMENTS, /* random single pairs */
    BP_CAUSAL,
    BP_WINDOW,     /* causal sliding window */
    BP_STRIDED,    /* Sparse Transformer strided */
    BP_BIGBIRD,    /* blocks of 64: window + 1 global + random */
    BP_FEWKEYS,    /* CSR, each row its own scattered keys (plus itself), distinct per head */
    BP_STREAMING,  /* StreamingLLM: param sink tokens plus a causal window of param2 keys */
    BP_DOCUMENTS,  /* a packed batch of param documents of seeded random lengths, causal */
    BP_GPT2HEADS,  /* one few-key pattern per head (12 kinds, 4-32 keys per row), see bench_masks */
    BP_FIXED,      /* Sparse Transformer fixed: param stride, param2 summary columns */
    BP_LONGFORMER, /* band of param keys either side, key 0 global */
    BP_DILATED,    /* causal, param keys back, every param2-th */
    BP_COUNT
} bench_pattern;

/* Score modifiers of spattn_args; entries without one keep the names they always had. */
typedef enum bench_mod {
    BMOD_NONE,
    BMOD_SINKS, /* a learned sink logit per head (gpt-oss) */
    BMOD_ALIBI, /* the standard ALiBi slopes of heads_q heads */
    BMOD_COUNT
} bench_mod;

/* Element types of Q, K/V and O (spattn_dtype); entries in F32 keep the names they always
   had. */
typedef enum bench_dtype {
    BD_F32,
    BD_BF16,      /* Q, K, V and O in bf16 */
    BD_F16,       /* Q, K, V and O in f16 */
    BD_F32_F16KV, /* f32 Q and O over an f16 KV cache (llama.cpp's case) */
    BD_COUNT
} bench_dtype;

typedef struct bench_case {
    bench_kind kind;
    spattn_isa isa; /* BK_ATTN, BK_PLAN, BK_PATH, BK_PEAK */
    bench_pattern pattern;
    int level; /* target sparsity in tenths of a percent: 0, 500, ..., 999 */
    size_t batch, heads_q, heads_kv, len_q, len_k, dim;
    int threads;   /* the number asked for (1 or all cores), never 0 */
    int path;      /* BK_PATH: SPATTN_PATH_TILES or SPATTN_PATH_GATHER */
    size_t param;  /* pattern parameter fitted to the level (window, stride, ...) */
    size_t param2; /* second one (BigBird random blocks) */
    int fixed;     /* param and param2 given: the level is computed from them, not fitted */
    bench_mod mod;
    bench_dtype dtype; /* BK_ATTN, BK_PATH */
    size_t bytes;      /* BK_MEMBW buffer size */
    int rows;          /* BK_MEMBW: 256-byte rows in random order (0: one streaming read) */
    char name[192];
} bench_case;

const char *bench_pattern_name(bench_pattern p);
const char *bench_mod_name(bench_mod m);     /* "" for BMOD_NONE */
const char *bench_dtype_name(bench_dtype d); /* "f32", "bf16", "f16", "f32-f16kv" */
/* The spattn_dtype of q, of k and v, and of o in a case of type d. */
void bench_dtypes(bench_dtype d, spattn_dtype *q, spattn_dtype *kv, spattn_dtype *o);
/* "90", "99.9", ... */
void bench_level_str(int level, char *buf, size_t n);

/* Measured at start-up (bench_probe.c). */
double bench_peak_gflops(spattn_isa isa); /* one core; 0 when unknown */
double bench_dram_gbps(int threads);      /* read bandwidth; 0 when unknown */
int bench_all_threads(void);              /* what num_threads = 0 means here */

/* Times of finished runs, so that later runs can report speedups over them. */
void bench_times_put(const char *key, double seconds);
double bench_times_get(const char *key); /* 0 when absent */
/* The key of c's problem run by `impl` (an ISA name or "openblas"); with dense != 0, of the
   dense problem of the same shape and modifiers. */
void bench_time_key(char *buf, size_t n, const char *impl, const bench_case *c, int dense);

/* Q, K, V, O of c's shape (BHTD, uniform in [-1, 1)) in *args, in c's element types, reused
   while consecutive cases share a shape and types. Returns 0 when memory runs out. */
int bench_data_args(const bench_case *c, spattn_args *args);

/* Counters of an attention run (spattn or a baseline) that took t seconds per call:
   GFLOP/s, pct_peak (of `peak` GFLOP/s per thread), sparsity_actual, speedup_dense and
   vs_openblas (against earlier runs of this process), bytes/s and pct_dram for decode.
   `impl` names the implementation in the time table. */
void bench_report_attn(const bench_case *c, spb_state *st, const char *impl, double peak, double t,
                       uint64_t pairs, int threads, double kv_bytes);
/* K and V bytes the allowed keys of c's masks need (the decode traffic). */
double bench_kv_bytes(const bench_case *c, spattn_mask *const *masks, size_t n);

/* OpenBLAS picks its kernels from the CPU model when it loads and falls back to generic SSE3
   code on models it does not know (VMs often report such a model): a baseline several times
   slower than OpenBLAS really is. When that happens and the CPU has AVX-512 or AVX2, this
   restarts the program with OPENBLAS_CORETYPE set (unless the user set it); else returns. */
void bench_blas_fix_core(char **argv);
const char *bench_blas_core(void); /* the kernel set OpenBLAS uses */

/* The runners (one file each). */
void bench_run_attn(const bench_case *c, spb_state *st); /* BK_ATTN, BK_PATH */
void bench_run_blas(const bench_case *c, spb_state *st);
void bench_run_plan(const bench_case *c, spb_state *st);
void bench_run_membw(const bench_case *c, spb_state *st);
void bench_run_peak(const bench_case *c, spb_state *st);
void bench_run_merge(const bench_case *c, spb_state *st);
void bench_run_bwd(const bench_case *c, spb_state *st);

#endif
