/* The grid. Within a (length, dim, threads) group the OpenBLAS runs come first and each ISA's
   dense run before its sparse ones, so that in a run without interleaved repetitions the
   sparse runs' speedup counters find times measured earlier in the same process (the report
   takes its ratios from the medians and does not depend on the order). */
#include "bench_grid.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_case.h"
#include "bench_masks.h"
#include "kernels/kernel.h"
#include "plan/test_hooks.h"

static const spattn_isa compiled[] = {
#define SPATTN_KERNEL(isa, table, cpu_bits, auto_bits) isa,
#include "kernels/kernels.inc"
#undef SPATTN_KERNEL
};
#define NCOMPILED (sizeof compiled / sizeof compiled[0])

static const int all_levels[] = {500, 750, 900, 950, 990, 999}; /* plus the dense problem */

static int registered;

static void trampoline(spb_state *st, void *user)
{
    const bench_case *c = user;
    switch (c->kind) {
    case BK_ATTN:
    case BK_PATH:
        bench_run_attn(c, st);
        break;
    case BK_BLAS:
        bench_run_blas(c, st);
        break;
    case BK_PLAN:
        bench_run_plan(c, st);
        break;
    case BK_MEMBW:
        bench_run_membw(c, st);
        break;
    case BK_PEAK:
        bench_run_peak(c, st);
        break;
    case BK_MERGE:
        bench_run_merge(c, st);
        break;
    case BK_BWD:
        bench_run_bwd(c, st);
        break;
    }
}

static void name_case(bench_case *c)
{
    char lv[16];
    bench_level_str(c->level, lv, sizeof lv);
    const char *impl = c->kind == BK_BLAS ? "openblas" : spattn_isa_name(c->isa);
    const char *pat = bench_pattern_name(c->pattern);
    /* a modifier is one more component after the pattern; without one the name is as ever */
    char mod[64] = "";
    if (c->mod != BMOD_NONE)
        snprintf(mod, sizeof mod, "/mod:%s", bench_mod_name(c->mod));
    /* the element types likewise, after the modifier */
    if (c->dtype != BD_F32)
        snprintf(mod + strlen(mod), sizeof mod - strlen(mod), "/dtype:%s",
                 bench_dtype_name(c->dtype));
    switch (c->kind) {
    case BK_ATTN:
    case BK_BLAS:
        if (c->len_q == 1)
            snprintf(c->name, sizeof c->name,
                     "decode/isa:%s/pattern:%s%s/sparsity:%s/lenk:%zu/dim:%zu/heads:%zux%zu/"
                     "threads:%d",
                     impl, pat, mod, lv, c->len_k, c->dim, c->heads_q, c->heads_kv, c->threads);
        else
            snprintf(c->name, sizeof c->name,
                     "attn/isa:%s/pattern:%s%s/sparsity:%s/len:%zu/dim:%zu/threads:%d", impl, pat,
                     mod, lv, c->len_q, c->dim, c->threads);
        break;
    case BK_PLAN:
        snprintf(c->name, sizeof c->name,
                 "plan/isa:%s/pattern:%s/sparsity:%s/len:%zu/dim:%zu/threads:%d", impl, pat, lv,
                 c->len_q, c->dim, c->threads);
        break;
    case BK_PATH:
        snprintf(c->name, sizeof c->name,
                 "path/isa:%s/path:%s/pattern:%s/sparsity:%s/len:%zu/dim:%zu/threads:%d", impl,
                 c->path == SPATTN_PATH_GATHER ? "gather" : "tiles", pat, lv, c->len_q, c->dim,
                 c->threads);
        break;
    case BK_MEMBW:
        if (c->rows)
            snprintf(c->name, sizeof c->name, "membw/rows:256/kib:%zu/threads:%d", c->bytes >> 10,
                     c->threads);
        else if (c->bytes < ((size_t)1 << 20)) /* cache-resident reads */
            snprintf(c->name, sizeof c->name, "membw/read/kib:%zu/threads:%d", c->bytes >> 10,
                     c->threads);
        else
            snprintf(c->name, sizeof c->name, "membw/read/mib:%zu/threads:%d", c->bytes >> 20,
                     c->threads);
        break;
    case BK_PEAK:
        snprintf(c->name, sizeof c->name, "peak/isa:%s/threads:1", impl);
        break;
    case BK_MERGE:
        snprintf(c->name, sizeof c->name, "merge/parts:%zu/rows:%zu/dim:%zu/threads:1", c->param,
                 c->len_q, c->dim);
        break;
    case BK_BWD:
        snprintf(c->name, sizeof c->name,
                 "backward/isa:%s/pattern:%s/sparsity:%s/len:%zu/dim:%zu/threads:%d", impl, pat, lv,
                 c->len_q, c->dim, c->threads);
        break;
    }
}

/* Registers a copy of *proto when its pattern can reach its level on its shape. */
static void add(const bench_case *proto)
{
    bench_case *c = malloc(sizeof *c);
    if (!c)
        return;
    *c = *proto;
    /* The AVX512-BF16 and AMX tiers run every job but bf16 Q and K (and on AMX f16 K with
       f16 or float32 Q) on the AVX-512 kernels: of their entries only those types' and their peaks
       (of vdpbf16ps, of tdpbf16ps) measure anything of their own, and their plans are AVX-512's
       (the same crossover and scratch), under the names they had. */
    const int avx512_tier = c->isa == SPATTN_ISA_AVX512BF16 || c->isa == SPATTN_ISA_AVX512AMX;
    const int own_dtype = c->dtype == BD_BF16 || (c->isa == SPATTN_ISA_AVX512AMX &&
                                                  (c->dtype == BD_F16 || c->dtype == BD_F32_F16KV));
    if (c->kind == BK_PLAN && avx512_tier)
        c->isa = SPATTN_ISA_AVX512;
    if (avx512_tier && !own_dtype &&
        (c->kind == BK_ATTN || c->kind == BK_PATH || c->kind == BK_BWD)) {
        free(c);
        return;
    }
    /* The NEON BF16 tier likewise runs every job but bf16 Q and K on the NEON kernels. */
    if (c->kind == BK_PLAN && c->isa == SPATTN_ISA_NEON_BF16)
        c->isa = SPATTN_ISA_NEON;
    if (c->isa == SPATTN_ISA_NEON_BF16 && c->dtype != BD_BF16 &&
        (c->kind == BK_ATTN || c->kind == BK_PATH || c->kind == BK_BWD)) {
        free(c);
        return;
    }
    if (c->kind != BK_MEMBW && c->kind != BK_PEAK && c->kind != BK_MERGE && !bench_masks_fit(c)) {
        free(c);
        return;
    }
    name_case(c);
    /* cases live until the process ends: Google Benchmark holds their pointers */
    spb_register(c->name, trampoline, c, SPB_UNIT_MS);
    registered++;
}

static bench_case attn_case(bench_kind kind, spattn_isa isa, bench_pattern p, int level, size_t len,
                            size_t dim, int threads)
{
    bench_case c = {0};
    c.kind = kind;
    c.isa = isa;
    c.pattern = p;
    c.level = level;
    c.batch = 1;
    c.heads_q = c.heads_kv = 2;
    c.len_q = c.len_k = len;
    c.dim = dim;
    c.threads = threads;
    return c;
}

/* One (length, dim, threads) group: OpenBLAS, then each ISA dense then sparse, for the
   patterns and levels given. `simd_only` leaves the scalar tier out (it is slow at length). */
typedef struct group_spec {
    size_t len, dim;
    int threads;
    const bench_pattern *patterns;
    size_t npatterns;
    const int *levels;
    size_t nlevels;
    int with_blas; /* 0: none, 1: every pattern and level, 2: dense only */
    int simd_only;
} group_spec;

static void add_group(const group_spec *g)
{
    if (g->with_blas) {
        bench_case c = attn_case(BK_BLAS, SPATTN_ISA_AUTO, BP_DENSE, 0, g->len, g->dim, g->threads);
        add(&c);
        for (size_t p = 0; p < g->npatterns && g->with_blas == 1; p++)
            for (size_t l = 0; l < g->nlevels; l++) {
                c = attn_case(BK_BLAS, SPATTN_ISA_AUTO, g->patterns[p], g->levels[l], g->len,
                              g->dim, g->threads);
                add(&c);
            }
    }
    for (size_t i = 0; i < NCOMPILED; i++) {
        if (g->simd_only && compiled[i] == SPATTN_ISA_SCALAR)
            continue;
        bench_case c = attn_case(BK_ATTN, compiled[i], BP_DENSE, 0, g->len, g->dim, g->threads);
        add(&c);
        for (size_t p = 0; p < g->npatterns; p++)
            for (size_t l = 0; l < g->nlevels; l++) {
                c = attn_case(BK_ATTN, compiled[i], g->patterns[p], g->levels[l], g->len, g->dim,
                              g->threads);
                add(&c);
            }
    }
}

/* One attention entry of the problem for every SIMD ISA compiled. */
static void add_simd(bench_pattern pattern, int level, size_t len, int threads)
{
    for (size_t i = 0; i < NCOMPILED; i++) {
        if (compiled[i] == SPATTN_ISA_SCALAR)
            continue;
        bench_case c = attn_case(BK_ATTN, compiled[i], pattern, level, len, 64, threads);
        add(&c);
    }
}

static void add_plans(const bench_pattern *patterns, size_t np, const int *levels, size_t nl,
                      size_t len)
{
    for (size_t p = 0; p < np; p++)
        for (size_t l = 0; l < nl; l++) {
            bench_case c = attn_case(BK_PLAN, compiled[0], patterns[p], levels[l], len, 64, 1);
            add(&c);
        }
}

static void add_paths(const bench_pattern *patterns, size_t np, const int *levels, size_t nl,
                      size_t len)
{
    for (size_t i = 0; i < NCOMPILED; i++)
        for (size_t p = 0; p < np; p++)
            for (size_t l = 0; l < nl; l++)
                for (int path = SPATTN_PATH_TILES; path <= SPATTN_PATH_GATHER; path++) {
                    bench_case c =
                        attn_case(BK_PATH, compiled[i], patterns[p], levels[l], len, 64, 1);
                    c.path = path;
                    add(&c);
                }
}

/* Decode: one new token against a long KV cache, 32 query heads sharing 8 KV heads. */
static void add_decode(size_t len_k, const bench_pattern *patterns, const int *levels, size_t n,
                       int threads, int with_blas)
{
    for (int impl = with_blas ? -1 : 0; impl < (int)NCOMPILED; impl++)
        for (size_t i = 0; i < n; i++) {
            bench_case c =
                attn_case(impl < 0 ? BK_BLAS : BK_ATTN, impl < 0 ? SPATTN_ISA_AUTO : compiled[impl],
                          patterns[i], levels[i], 1, 128, threads);
            c.len_k = len_k;
            c.heads_q = 32;
            c.heads_kv = 8;
            add(&c);
        }
}

static void add_membw(size_t bytes, int threads)
{
    bench_case c = {0};
    c.kind = BK_MEMBW;
    c.bytes = bytes;
    c.threads = threads;
    add(&c);
}

/* The gather path's ceiling: K or V rows of 256 bytes (dim 64, float32) read from L2 in a
   random order, as the keys of a few-key row give them. */
static void add_membw_rows(size_t bytes)
{
    bench_case c = {0};
    c.kind = BK_MEMBW;
    c.bytes = bytes;
    c.threads = 1;
    c.rows = 1;
    add(&c);
}

/* The FMA peak of every compiled ISA (skipped where it cannot run), sampled over the run like
   the kernels the report's Targets table divides by it (the `pct_peak` counters keep the
   start-up probe). */
static void add_peaks(void)
{
    for (size_t i = 0; i < NCOMPILED; i++) {
        bench_case c = {0};
        c.kind = BK_PEAK;
        c.isa = compiled[i];
        c.threads = 1;
        add(&c);
    }
}

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* Decode that cannot fill the threads without split-KV: MQA, 8 query heads on one KV head,
   dense over a long cache, with 1 thread and all. */
static void add_decode_mqa(size_t len_k, int all)
{
    for (size_t i = 0; i < NCOMPILED; i++) {
        if (compiled[i] == SPATTN_ISA_SCALAR)
            continue;
        for (int t = 0; t < (all > 1 ? 2 : 1); t++) {
            bench_case c = attn_case(BK_ATTN, compiled[i], BP_DENSE, 0, 1, 128, t ? all : 1);
            c.len_k = len_k;
            c.heads_q = 8;
            c.heads_kv = 1;
            add(&c);
        }
    }
}

/* spattn_merge of `parts` parts of rows x dim. */
static void add_merge(size_t parts, size_t rows, size_t dim)
{
    bench_case c = {0};
    c.kind = BK_MERGE;
    c.param = parts;
    c.len_q = rows;
    c.dim = dim;
    c.threads = 1;
    add(&c);
}

/* Score modifiers beside the same problems without them (the plain dense and causal runs are
   in the grid already): dense and causal with sinks and with ALiBi, and the gpt-oss layer, a
   causal window of 128 keys with sinks, next to the window alone. */
static void add_mods(size_t len, int simd_only, int with_window)
{
    static const bench_pattern pats[] = {BP_DENSE, BP_CAUSAL};
    static const int levels[] = {0, 500};
    for (size_t i = 0; i < NCOMPILED; i++) {
        if (simd_only && compiled[i] == SPATTN_ISA_SCALAR)
            continue;
        for (size_t p = 0; p < N(pats); p++)
            for (int m = BMOD_SINKS; m <= BMOD_ALIBI; m++) {
                bench_case c = attn_case(BK_ATTN, compiled[i], pats[p], levels[p], len, 64, 1);
                c.mod = (bench_mod)m;
                add(&c);
            }
        for (int m = BMOD_NONE; with_window && m <= BMOD_SINKS; m++) {
            bench_case c = attn_case(BK_ATTN, compiled[i], BP_WINDOW, 0, len, 64, 1);
            c.fixed = 1;
            c.param = 127; /* the key itself and 127 before it: gpt-oss's window of 128 */
            c.mod = (bench_mod)m;
            add(&c);
        }
    }
}

/* The StreamingLLM mask (4 sinks + a window of 1024) and a packed batch of 16 causal
   documents, whose efficiency the suite compares with dense x density at the same length. */
static void add_long_masks(size_t len, int simd_only, int with_streaming)
{
    for (size_t i = 0; i < NCOMPILED; i++) {
        if (simd_only && compiled[i] == SPATTN_ISA_SCALAR)
            continue;
        bench_case c = attn_case(BK_ATTN, compiled[i], BP_STREAMING, 0, len, 64, 1);
        c.fixed = 1;
        c.param = 4;
        c.param2 = 1024;
        if (with_streaming)
            add(&c);
        c.pattern = BP_DOCUMENTS;
        c.param = 16;
        c.param2 = 0;
        add(&c);
    }
}

/* Element types (spattn_dtype) beside the F32 entries of the same problems: decode over a
   16-bit KV cache (what halving the bytes buys) and prefill, dense, causal and 64x64 blocks
   at 10 % and 1 % (whether sparsity still pays), and 16 random keys per row (the gather
   path), in every type set. */
static void add_dtypes(size_t len, size_t len_k, int simd_only)
{
    static const bench_pattern pats[] = {BP_DENSE, BP_CAUSAL, BP_BLOCKS64, BP_BLOCKS64, BP_FEWKEYS};
    static const int levels[] = {0, 500, 900, 990, 996};
    for (size_t i = 0; i < NCOMPILED; i++) {
        if (simd_only && compiled[i] == SPATTN_ISA_SCALAR)
            continue;
        for (int d = BD_BF16; d < BD_COUNT; d++) {
            for (size_t p = 0; p < N(pats); p++) {
                bench_case c = attn_case(BK_ATTN, compiled[i], pats[p], levels[p], len, 64, 1);
                c.dtype = (bench_dtype)d;
                add(&c);
            }
            bench_case c = attn_case(BK_ATTN, compiled[i], BP_DENSE, 0, 1, 128, 1);
            c.len_k = len_k;
            c.heads_q = 32;
            c.heads_kv = 8;
            c.dtype = (bench_dtype)d;
            add(&c);
        }
    }
}

/* The backward by sparsity, each ISA's dense run first (the efficiency reference): dense,
   causal, 64x64 blocks at 10 % and 1 %, 16 keys per row; `threads` > 1 adds dense and causal
   on that many threads. */
static void add_backward(size_t len, int simd_only, int threads)
{
    static const bench_pattern pats[] = {BP_DENSE, BP_CAUSAL, BP_BLOCKS64, BP_BLOCKS64, BP_FEWKEYS};
    static const int levels[] = {0, 500, 900, 990, 996};
    for (size_t i = 0; i < NCOMPILED; i++) {
        if (simd_only && compiled[i] == SPATTN_ISA_SCALAR)
            continue;
        for (size_t p = 0; p < N(pats); p++) {
            bench_case c = attn_case(BK_BWD, compiled[i], pats[p], levels[p], len, 64, 1);
            add(&c);
        }
        for (size_t p = 0; threads > 1 && p < 2; p++) {
            bench_case c = attn_case(BK_BWD, compiled[i], pats[p], levels[p], len, 64, threads);
            add(&c);
        }
    }
}

static void grid_quick(int all)
{
    static const bench_pattern pats[] = {BP_BLOCKS64, BP_CAUSAL, BP_FEWKEYS};
    static const int levels[] = {500, 900, 990};
    group_spec g = {512, 64, 1, pats, N(pats), levels, N(levels), 1, 0};
    add_group(&g);
    static const bench_pattern plan_pats[] = {BP_BLOCKS64, BP_FEWKEYS};
    static const int plan_levels[] = {990};
    add_plans(plan_pats, N(plan_pats), plan_levels, 1, 512);
    static const bench_pattern path_pats[] = {BP_FEWKEYS};
    add_paths(path_pats, 1, plan_levels, 1, 512);
    static const bench_pattern dec_pats[] = {BP_DENSE, BP_WINDOW};
    static const int dec_levels[] = {0, 900};
    add_decode(4096, dec_pats, dec_levels, N(dec_pats), 1, 1);
    /* smoke-tests the modifiers and the document mask beside the len 512 dense and causal */
    add_mods(512, 0, 0);
    add_long_masks(512, 0, 0);
    add_dtypes(512, 4096, 0);
    if (all > 1) {
        group_spec g2 = {512, 64, all, pats, 1, levels + 1, 1, 0, 1};
        add_group(&g2);
    }
    add_membw((size_t)64 << 20, 1);
    add_merge(4, 4096, 128);
    add_backward(512, 0, 1);
}

/* Patterns whose PARTIAL tiles hold few pairs (the mixed path's cases), at len 4096 and 16384:
   the Sparse Transformer's strided mask with stride 64 (one key per row in each key tile
   below its window) with its plan (whose counters show the paths chosen), and 12 heads of
   few-key patterns (BP_GPT2HEADS); then a 512 KiB read, L2-resident, to set the gather and
   mixed kernels' bytes per pair against. */
static void add_sparse_patterns(void)
{
    static const size_t lens[] = {4096, 16384};
    for (size_t l = 0; l < N(lens); l++)
        for (size_t i = 0; i < NCOMPILED; i++) {
            if (compiled[i] == SPATTN_ISA_SCALAR)
                continue;
            bench_case c = attn_case(BK_ATTN, compiled[i], BP_STRIDED, 0, lens[l], 64, 1);
            c.fixed = 1;
            c.param = 64;
            add(&c);
            c.kind = BK_PLAN; /* its counters show the paths the plan chose */
            add(&c);
        }
    /* 12 heads, each its own few-key pattern */
    for (size_t l = 0; l < N(lens); l++)
        for (size_t i = 0; i < NCOMPILED; i++) {
            if (compiled[i] == SPATTN_ISA_SCALAR)
                continue;
            bench_case c = attn_case(BK_ATTN, compiled[i], BP_GPT2HEADS, 0, lens[l], 64, 1);
            c.heads_q = c.heads_kv = 12;
            c.fixed = 1;
            add(&c);
        }
    /* The other pattern builders of the API with their usual settings: Sparse Transformer
       fixed (stride 128, 8 summary columns), Longformer (256 keys either side, token 0
       global), dilated (2048 keys back, every 16th: 128 per row). */
    static const bench_pattern params[] = {BP_FIXED, BP_LONGFORMER, BP_DILATED};
    static const size_t p1[] = {128, 256, 2048}, p2[] = {8, 0, 16};
    for (size_t l = 0; l < N(lens); l++)
        for (size_t p = 0; p < N(params); p++)
            for (size_t i = 0; i < NCOMPILED; i++) {
                if (compiled[i] == SPATTN_ISA_SCALAR)
                    continue;
                bench_case c = attn_case(BK_ATTN, compiled[i], params[p], 0, lens[l], 64, 1);
                c.fixed = 1;
                c.param = p1[p];
                c.param2 = p2[p];
                add(&c);
            }
    add_membw((size_t)512 << 10, 1);
    add_membw_rows((size_t)512 << 10);
}

static void grid_default(int all)
{
    static const int levels[] = {500, 750, 900, 950, 990, 999};
    static const int few_levels[] = {900, 990};
    static const bench_pattern blocks[] = {BP_BLOCKS64};
    /* the headline sweep: every level, every ISA and baseline */
    group_spec sweep = {4096, 64, 1, blocks, 1, levels, N(levels), 1, 0};
    add_group(&sweep);
    /* the other patterns at their usual sparsities, SIMD ISAs only */
    static const bench_pattern others[] = {BP_ELEMENTS, BP_CAUSAL,  BP_WINDOW,
                                           BP_STRIDED,  BP_BIGBIRD, BP_FEWKEYS};
    static const int other_levels[] = {500, 900, 950, 990, 999};
    for (size_t p = 0; p < N(others); p++)
        for (size_t l = 0; l < N(other_levels); l++) {
            if (others[p] == BP_ELEMENTS && other_levels[l] < 900)
                continue; /* random single pairs at 50%: nothing a sparse kernel can skip */
            add_simd(others[p], other_levels[l], 4096, 1);
        }
    /* 16 random keys per row at len 4096 (99.6 %): the CSR case of per-head sparse patterns */
    add_simd(BP_FEWKEYS, 996, 4096, 1);
    add_mods(4096, 1, 1);
    add_sparse_patterns();
    /* dim 128, and all threads */
    group_spec d128 = {4096, 128, 1, blocks, 1, few_levels, N(few_levels), 2, 1};
    add_group(&d128);
    if (all > 1) {
        group_spec mt = {4096, 64, all, blocks, 1, few_levels, N(few_levels), 2, 1};
        add_group(&mt);
        /* causal next to its one-thread run (the scaling the suite reports) */
        add_simd(BP_CAUSAL, 500, 4096, all);
    }
    /* lengths; OpenBLAS only dense there (it computes every pair whatever the mask, and one
       call at 16384 takes seconds) */
    static const size_t lens[] = {1024, 2048, 8192, 16384};
    for (size_t i = 0; i < N(lens); i++) {
        group_spec gl = {lens[i], 64, 1, blocks, 1, few_levels, N(few_levels), 2, 1};
        add_group(&gl);
    }
    add_long_masks(4096, 1, 1);
    add_long_masks(16384, 1, 1);
    /* the other pattern builders at 16384 too, one usual level each */
    static const bench_pattern long_pats[] = {BP_CAUSAL, BP_WINDOW, BP_BIGBIRD};
    static const int long_levels[] = {500, 990, 950};
    for (size_t p = 0; p < N(long_pats); p++)
        add_simd(long_pats[p], long_levels[p], 16384, 1);
    /* analysis cost per pattern */
    static const bench_pattern plan_pats[] = {BP_BLOCKS64, BP_ELEMENTS, BP_CAUSAL, BP_WINDOW,
                                              BP_STRIDED,  BP_BIGBIRD,  BP_FEWKEYS};
    static const int plan_levels[] = {500, 900, 990};
    add_plans(plan_pats, N(plan_pats), plan_levels, N(plan_levels), 4096);
    /* where gather beats tiles */
    static const bench_pattern path_pats[] = {BP_ELEMENTS, BP_FEWKEYS};
    static const int path_levels[] = {900, 950, 990, 999};
    add_paths(path_pats, N(path_pats), path_levels, N(path_levels), 2048);
    /* decode, next to the bandwidth it is bounded by */
    add_membw((size_t)1 << 30, 1);
    if (all > 1)
        add_membw((size_t)1 << 30, all);
    static const bench_pattern dec_pats[] = {BP_DENSE, BP_WINDOW, BP_BLOCKS64, BP_FEWKEYS};
    static const int dec_levels[] = {0, 900, 900, 990};
    add_decode(32768, dec_pats, dec_levels, N(dec_pats), 1, 1);
    if (all > 1)
        add_decode(32768, dec_pats, dec_levels, N(dec_pats), all, 1);
    /* split-KV decode, and the merge it and ring attention rest on (4 parts of 32 MiB) */
    add_decode_mqa(131072, all);
    add_merge(4, 65536, 128);
    add_dtypes(4096, 32768, 1);
    add_backward(4096, 1, all);
}

static void grid_full(int all)
{
    static const bench_pattern pats[] = {BP_BLOCKS64, BP_ELEMENTS, BP_CAUSAL, BP_WINDOW,
                                         BP_STRIDED,  BP_BIGBIRD,  BP_FEWKEYS};
    static const size_t lens[] = {1024, 2048, 4096, 8192, 16384};
    static const size_t dims[] = {64, 128};
    int threads[] = {1, all};
    for (size_t t = 0; t < (all > 1 ? 2u : 1u); t++)
        for (size_t d = 0; d < N(dims); d++)
            for (size_t l = 0; l < N(lens); l++) {
                /* the scalar tier only up to 4096: beyond it one call takes minutes */
                group_spec g = {lens[l],    dims[d],       threads[t], pats,          N(pats),
                                all_levels, N(all_levels), 1,          lens[l] > 4096};
                add_group(&g);
            }
    add_plans(pats, N(pats), all_levels, N(all_levels), 4096);
    add_plans(pats, N(pats), all_levels, N(all_levels), 16384);
    static const bench_pattern path_pats[] = {BP_BLOCKS64, BP_ELEMENTS, BP_FEWKEYS};
    add_paths(path_pats, N(path_pats), all_levels, N(all_levels), 4096);
    add_membw((size_t)1 << 30, 1);
    if (all > 1)
        add_membw((size_t)1 << 30, all);
    static const bench_pattern dec_pats[] = {BP_DENSE,    BP_WINDOW,  BP_WINDOW,  BP_BLOCKS64,
                                             BP_BLOCKS64, BP_FEWKEYS, BP_FEWKEYS, BP_STRIDED};
    static const int dec_levels[] = {0, 900, 990, 900, 990, 990, 999, 990};
    for (size_t t = 0; t < (all > 1 ? 2u : 1u); t++)
        add_decode(32768, dec_pats, dec_levels, N(dec_pats), threads[t], 1);
    add_backward(1024, 0, all);
    add_backward(4096, 1, all);
}

int bench_grid_register(bench_mode mode)
{
    int all = bench_all_threads();
    registered = 0;
    add_peaks();
    if (mode == BM_QUICK)
        grid_quick(all);
    else if (mode == BM_FULL)
        grid_full(all);
    else
        grid_default(all);
    return registered;
}
