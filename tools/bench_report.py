#!/usr/bin/env python3
"""Turns a spattn-bench JSON file into bench-report/report.md and gnuplot data + script.

    tools/bench_report.py RESULTS.json OUT_DIR [COMMIT]
    tools/bench_report.py --targets-filter [ISA]   (bench-report.sh --targets: its filter;
                                                  ISA avx512 unless given)
    tools/bench_report.py --targets-text RESULTS.json   (the Targets table for a terminal)

Writes OUT_DIR/report.md, OUT_DIR/plots/*.dat and OUT_DIR/plots/plots.gp (run it with gnuplot
from OUT_DIR/plots to get the PNGs). Standard library only.
"""
import json
import os
import re
import sys
from collections import OrderedDict, defaultdict

IMPL_ORDER = ["avx512", "avx2", "neon", "scalar", "openblas"]
COUNTERS = ["GFLOP/s", "pct_peak", "speedup_dense", "vs_openblas", "sparsity_actual",
            "bytes/s", "pct_dram"]


def parse_name(name):
    """attn/isa:avx512/pattern:x/... -> ("attn", {"isa": "avx512", ...})"""
    parts = name.split("/")
    fields = OrderedDict()
    rest = []
    for p in parts[1:]:
        if ":" in p:
            k, v = p.split(":", 1)
            fields[k] = v
        else:
            rest.append(p)
    if rest:
        fields["what"] = "/".join(rest)
    return parts[0], fields


def to_ms(b):
    scale = {"ns": 1e-6, "us": 1e-3, "ms": 1.0, "s": 1e3}[b.get("time_unit", "ns")]
    return b["real_time"] * scale


def load(path):
    with open(path) as f:
        data = json.load(f)
    runs = OrderedDict()
    for b in data.get("benchmarks", []):
        if b.get("run_type", "iteration") != "iteration":
            continue
        name = b.get("run_name", b["name"])
        runs.setdefault(name, []).append(b)
    results = []
    for name, bs in runs.items():
        family, fields = parse_name(name)
        r = {"name": name, "family": family, "fields": fields}
        if any(b.get("error_occurred") for b in bs):
            r["error"] = next(b.get("error_message", "") for b in bs if b.get("error_occurred"))
        else:
            # Median over repetitions: on shared machines one slow repetition is common and
            # should not move the figure.
            r["ms"] = median([to_ms(b) for b in bs])
            r["reps_ms"] = sorted(to_ms(b) for b in bs)
            r["iterations"] = sum(b.get("iterations", 0) for b in bs)
            for b in bs:
                for k, v in b.items():
                    if isinstance(v, (int, float)) and k not in (
                            "real_time", "cpu_time", "iterations", "repetitions",
                            "repetition_index", "threads", "family_index",
                            "per_family_instance_index"):
                        r.setdefault("c", defaultdict(list))[k].append(v)
            r["c_reps"] = dict(r.get("c", {}))
            r["c"] = {k: median(v) for k, v in r.get("c", {}).items()}
        results.append(r)
    return data.get("context", {}), results

# The targets of docs/performance.md: (label, threshold, how the figure is computed). Each is
# computed twice from this run's repetitions: from medians, and from each entry's fastest
# repetition. A neighbour on a shared machine only ever adds time, so the fastest repetition
# is the estimate least disturbed by it; the median shows what a typical call met.
ATTN = "attn/isa:%s/pattern:%s/sparsity:%s/len:4096/dim:64/threads:%d"
DECODE = "decode/isa:%s/pattern:dense/sparsity:0/lenk:32768/dim:128/heads:32x8/threads:1"
PEAK = "peak/isa:%s/threads:1"
MEMBW = "membw/read/mib:1024/threads:1"
DECODE_BYTES = 8 * 32768 * 128 * 4 * 2  # 8 KV heads, K and V, fp32
DENSE_FLOP = 4.0 * 4096 * 4096 * 2 * 64  # 4 x pairs x dim, 2 heads
BWD = "backward/isa:%s/pattern:%s/sparsity:%s/len:4096/dim:64/threads:%d"
BWD_FLOP = 10.0 * 4096 * 4096 * 2 * 64  # the backward's 10 x pairs x dim, 2 heads


def target_isa(by_name):
    """The ISA whose entries the targets read: avx512 where the run holds its dense entry
    (a CPU with AVX-512), else the first of avx2, neon and scalar that it holds."""
    for isa in ("avx512", "avx2", "neon", "scalar"):
        r = by_name.get(ATTN % (isa, "dense", "0", 1))
        if r is not None and "reps_ms" in r:
            return isa
    return "avx512"


def target_rows(ctx, by_name, pick, pick_best, isa="avx512"):
    """[(label, threshold, value or None, detail)] with times chosen by pick(result). The
    targets are set for avx512; on a CPU without it (isa) the same figures of its best ISA
    are given, their labels naming it."""
    def ms(name):
        r = by_name.get(name)
        return pick(r) if r is not None and "reps_ms" in r else None

    def density(name):
        return 1.0 - by_name[name]["c"]["sparsity_actual"] / 100.0

    def probe(key, entry, counter, scale):
        """The start-up probe's figure, or the grid entry's sampled over the run when the
        run holds it: its median for medians, its best (or the start-up one if higher)
        for the fastest repetitions."""
        try:
            start = float(ctx.get(key, ""))
        except ValueError:
            start = None
        r = by_name.get(entry)
        reps = r.get("c_reps", {}).get(counter) if r is not None else None
        if not reps:
            return start
        if pick_best:
            return max([max(reps) / scale] + ([start] if start else []))
        return median(reps) / scale

    def peak(isa):
        return probe("peak_gflops_1t_%s" % isa, PEAK % isa, "GFLOP/s", 1.0)

    rows = []
    for own, need in (("avx512", 0.60), ("avx2", 0.55)):
        t, pk = ms(ATTN % (own, "dense", "0", 1)), peak(own)
        v = DENSE_FLOP / (t * 1e6) / pk if t and pk else None
        rows.append(("dense %s, share of its FMA peak" % own, need, v,
                     "%.1f ms, peak %.1f GFLOP/s" % (t, pk) if v is not None else ""))
    tag = "" if isa == "avx512" else " (%s)" % isa
    dense = ms(ATTN % (isa, "dense", "0", 1))
    for pat, lv, label, need in (("causal", "50", "causal efficiency", 0.85),
                                 ("blocks64", "90", "64x64 blocks 10 % efficiency", 0.85),
                                 ("blocks64", "99", "64x64 blocks 1 % efficiency", 0.60),
                                 ("fewkeys", "99.6", "CSR 16 keys per row efficiency", 0.25)):
        name = ATTN % (isa, pat, lv, 1)
        t = ms(name)
        v = dense * density(name) / t if t and dense else None
        rows.append((label + tag, need, v, "%.3g ms" % t if t else ""))
    for pat, lv in (("dense", "0"), ("causal", "50")):
        t1, t2 = ms(ATTN % (isa, pat, lv, 1)), ms(ATTN % (isa, pat, lv, 2))
        v = t1 / t2 if t1 and t2 else None
        rows.append(("2 threads over 1, %s%s" % (pat, tag), 1.8, v,
                     "%.3g -> %.3g ms" % (t1, t2) if v is not None else ""))
    t = ms(DECODE % isa)
    bw = probe("dram_read_gbps_1t", MEMBW, "bytes/s", 1e9)
    v = DECODE_BYTES / (t * 1e6) / bw if t and bw else None
    rows.append(("decode K/V stream, share of 1-thread DRAM read" + tag, 0.70, v,
                 "%.3g ms, %.2f GB/s, probe %.1f GB/s" % (t, DECODE_BYTES / (t * 1e6), bw)
                 if v is not None else ""))
    t, pk = ms(BWD % (isa, "dense", "0", 1)), peak(isa)
    v = BWD_FLOP / (t * 1e6) / pk if t and pk else None
    rows.append(("backward dense, share of the %s FMA peak" % isa, 0.65, v,
                 "%.1f ms, peak %.1f GFLOP/s" % (t, pk) if v is not None else ""))
    bdense = t
    for pat, lv, label, need in (("causal", "50", "backward causal efficiency", 0.8),
                                 ("blocks64", "90", "backward 64x64 blocks 10 % efficiency", 0.8),
                                 ("blocks64", "99", "backward 64x64 blocks 1 % efficiency", 0.5)):
        name = BWD % (isa, pat, lv, 1)
        t = ms(name)
        v = bdense * density(name) / t if t and bdense else None
        rows.append((label + tag, need, v, "%.3g ms" % t if t else ""))
    for pat, lv in (("dense", "0"), ("causal", "50")):
        t1, t2 = ms(BWD % (isa, pat, lv, 1)), ms(BWD % (isa, pat, lv, 2))
        v = t1 / t2 if t1 and t2 else None
        rows.append(("backward 2 threads over 1, %s%s" % (pat, tag), 1.8, v,
                     "%.3g -> %.3g ms" % (t1, t2) if v is not None else ""))
    return rows


MOD_NEED = 1.05  # a modifier may cost this much over the same problem without it
LONG_MASK_NEED = 0.85  # streaming and document masks: efficiency against dense x density


def modifier_rows(results):
    """(modifier rows, long-mask rows) of docs/benchmarks.md's "Score modifiers" entries:
    [(name, ms, base name, base ms, ratio)] for each `mod:` entry against the same name
    without it, and [(name, ms, density, dense ms, efficiency)] for the streaming and
    documents patterns against the dense entry of their ISA and length, each sorted by name
    (interleaved repetitions leave the run's order random). Figures are None where an entry
    is absent or failed."""
    by_name = {r["name"]: r for r in results}

    def ms(name):
        r = by_name.get(name)
        return r["ms"] if r is not None and "ms" in r else None

    mods, longs = [], []
    for r in results:
        f = r["fields"]
        if r["family"] != "attn":
            continue
        if "mod" in f:
            base = r["name"].replace("/mod:%s" % f["mod"], "", 1)
            t, tb = ms(r["name"]), ms(base)
            mods.append((r["name"], t, base, tb, t / tb if t and tb else None))
        elif f.get("pattern") in ("streaming", "documents"):
            dense = re.sub(r"/pattern:[^/]+/sparsity:[^/]+/", "/pattern:dense/sparsity:0/",
                           r["name"], 1)
            t, td = ms(r["name"]), ms(dense)
            dens = 1.0 - r["c"]["sparsity_actual"] / 100.0 if t else None
            longs.append((r["name"], t, dens, td, td * dens / t if t and td else None))
    return sorted(mods), sorted(longs)


def write_modifiers(results, w):
    mods, longs = modifier_rows(results)
    if not mods and not longs:
        return
    w("## Score modifiers and packed sequences\n")
    if mods:
        w("Each modifier entry against the same problem without it (medians of this run); "
          "the aim is a ratio of at most %.2f.\n" % MOD_NEED)
        w("| benchmark | ms | without | ratio |")
        w("|---|---|---|---|")
        for name, t, _, tb, v in mods:
            w("| %s | %s | %s | %s |" % (name, fmt(t, 4) if t else "absent",
                                         fmt(tb, 4) if tb else "absent",
                                         "" if v is None else "%.3f %s" % (
                                             v, "met" if v <= MOD_NEED else "**missed**")))
        w("")
    if longs:
        w("Efficiency = dense time x density / time, the dense entry of the same ISA and length; "
          "the aim is at least %.2f.\n" % LONG_MASK_NEED)
        w("| benchmark | ms | density | dense ms | efficiency |")
        w("|---|---|---|---|---|")
        for name, t, d, td, v in longs:
            w("| %s | %s | %s | %s | %s |" % (name, fmt(t, 4) if t else "absent",
                                              "" if d is None else "%.4f" % d,
                                              fmt(td, 4) if td else "absent",
                                              "" if v is None else "%.3f %s" % (
                                                  v, "met" if v >= LONG_MASK_NEED
                                                  else "**missed**")))
        w("")


DTYPE_ORDER = ["bf16", "f16", "f32-f16kv"]


def dtype_rows(results):
    """[(problem, isa, dtype, ms, f32 ms, speedup, GB/s, pct_dram)] for every `dtype:` entry
    against the float32 entry of the same name without it, sorted by problem, ISA and type.
    The problem is the name without isa and dtype; GB/s and pct_dram are the decode entries'
    counters (K/V bytes of the entry's own type), None elsewhere or where absent."""
    by_name = {r["name"]: r for r in results}
    rows = []
    for r in results:
        f = r["fields"]
        if "dtype" not in f or r["family"] not in ("attn", "decode"):
            continue
        base = by_name.get(r["name"].replace("/dtype:%s" % f["dtype"], "", 1))
        t = r.get("ms")
        tb = base.get("ms") if base is not None else None
        problem = re.sub(r"/dtype:[^/]+", "", re.sub(r"/isa:[^/]+", "", r["name"], 1), 1)
        c = r.get("c", {})
        bw = c.get("bytes/s")
        rows.append((problem, f.get("isa"), f["dtype"], t, tb, tb / t if t and tb else None,
                     bw / 1e9 if bw else None, c.get("pct_dram")))
    return sorted(rows, key=lambda x: (x[0], impl_key(x[1]), DTYPE_ORDER.index(x[2])
                                       if x[2] in DTYPE_ORDER else len(DTYPE_ORDER)))


def write_dtypes(results, w):
    rows = dtype_rows(results)
    if not rows:
        return
    w("## Element types\n")
    w("Each 16-bit entry against the float32 entry of the same problem and ISA (medians of "
      "this run): `x f32` is the float32 time over this time. Decode rows add the K/V read "
      "rate and its share of the run's one-thread DRAM read figure.\n")
    w("| problem | isa | dtype | ms | f32 ms | x f32 | GB/s | %DRAM |")
    w("|---|---|---|---|---|---|---|---|")
    for problem, isa, dt, t, tb, x, bw, pd in rows:
        w("| %s | %s | %s | %s | %s | %s | %s | %s |" % (
            problem, isa, dt, fmt(t, 4) if t else "absent", fmt(tb, 4) if tb else "absent",
            fmt(x), fmt(bw), fmt(pd)))
    w("")


def target_entries(isa="avx512"):
    """The names of every entry target_rows reads for isa, in order, found by running it on a
    run that holds nothing: the --targets run's filter, so the list lives in one place."""
    class Asked(dict):
        def __init__(self):
            super().__init__()
            self.names = []

        def get(self, key, default=None):
            self.names.append(key)
            return default

    asked = Asked()
    target_rows({}, asked, None, False, isa)
    return list(OrderedDict.fromkeys(asked.names))


def targets_filter(isa="avx512"):
    """A --benchmark_filter regex matching exactly the target entries of isa."""
    return "^(%s)$" % "|".join(re.escape(n) for n in target_entries(isa))


def targets(ctx, results):
    """(rows from medians, rows from the fastest repetitions, repetitions, [met, met]) or None
    when the run holds none of the target entries."""
    by_name = {r["name"]: r for r in results}
    isa = target_isa(by_name)
    med = target_rows(ctx, by_name, lambda r: r["ms"], False, isa)
    best = target_rows(ctx, by_name, lambda r: r["reps_ms"][0], True, isa)
    if all(v is None for _, _, v, _ in med):
        return None
    nrep = max(len(r.get("reps_ms", [])) for r in results)
    met = [sum(1 for _, need, v, _ in rows if v is not None and v >= need) for rows in (med, best)]
    return med, best, nrep, met


def met_line(med, best, met):
    return ("Met: %d of %d from medians, %d of %d from the fastest repetitions."
            % (met[0], len(med), met[1], len(best)))


def write_targets(ctx, results, w):
    t = targets(ctx, results)
    if t is None:
        return
    med, best, nrep, met = t
    w("## Targets\n")
    w("The targets of docs/performance.md, from this run: once from medians, once from each "
      "entry's fastest of %d repetitions (a neighbour on a shared machine only adds time). "
      "Shares are of the FMA peak and the read bandwidth sampled the same way (the `peak/` and "
      "`membw/` entries; the fastest figures take the start-up probe's when it is higher).\n"
      % nrep)
    w("| target | needs | from medians | | from fastest | |")
    w("|---|---|---|---|---|---|")
    for (label, need, vm, dm), (_, _, vb, db) in zip(med, best):
        cells = []
        for v, d in ((vm, dm), (vb, db)):
            if v is None:
                cells += ["absent", ""]
            else:
                cells += ["%.3f %s" % (v, "met" if v >= need else "**missed**"), d]
        w("| %s | >= %.2f | %s |" % (label, need, " | ".join(cells)))
    w("\n%s\n" % met_line(med, best, met))


def targets_text(ctx, results):
    """The Targets table as plain aligned text for a terminal (figures only; the report has
    the times behind them), or None when the run holds none of the target entries."""
    t = targets(ctx, results)
    if t is None:
        return None
    med, best, nrep, met = t

    def cell(v, need):
        return "absent" if v is None else "%.3f %s" % (v, "met" if v >= need else "MISSED")

    rows = [("target", "needs", "from medians", "from fastest of %d" % nrep)]
    rows += [(label, ">= %.2f" % need, cell(vm, need), cell(vb, need))
             for (label, need, vm, _), (_, _, vb, _) in zip(med, best)]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = ["  ".join(c.ljust(wd) for c, wd in zip(r, widths)).rstrip() for r in rows]
    return "\n".join(lines + [met_line(med, best, met)])


def median(xs):
    xs = sorted(xs)
    n = len(xs)
    return xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2


def level_key(s):
    return float(s)


def impl_key(i):
    return IMPL_ORDER.index(i) if i in IMPL_ORDER else len(IMPL_ORDER)


def fmt(v, digits=3):
    if v is None:
        return ""
    if abs(v) >= 1e9:
        return "%.2fG" % (v / 1e9)
    if abs(v) >= 1e6:
        return "%.2fM" % (v / 1e6)
    if abs(v) >= 100:
        return "%.0f" % v
    return ("%." + str(digits) + "g") % v


def sweep_groups(results):
    """attn/decode results grouped by everything but isa, pattern and sparsity."""
    groups = OrderedDict()
    for r in results:
        if r["family"] not in ("attn", "decode"):
            continue
        f = r["fields"]
        key = (r["family"],) + tuple((k, v) for k, v in f.items()
                                     if k not in ("isa", "pattern", "sparsity"))
        groups.setdefault(key, []).append(r)
    return groups


def group_title(key):
    return key[0] + " " + " ".join("%s %s" % kv for kv in key[1:])


def group_slug(key):
    return "_".join([key[0]] + ["%s%s" % kv for kv in key[1:]])


def build_type_note(ctx):
    """Google Benchmark's library_build_type is how its own library was built; Debian's is a
    debug build, and its console warning is easily read as being about spattn."""
    lib = ctx["library_build_type"]
    if lib != "debug":
        return lib
    return ("debug: Google Benchmark's own library as Debian builds it, which is what the "
            "console's \"Library was built as DEBUG\" refers to; spattn and spattn-bench are "
            "built %s (spattn_build_type), and the timed code is theirs"
            % ctx.get("spattn_build_type", "Release by tools/bench-report.sh"))


def write_report(ctx, results, out, commit):
    lines = []
    w = lines.append
    w("# spattn benchmark report\n")
    w("Generated by `tools/bench-report.sh` from `results.json` (Google Benchmark JSON).\n")
    w("| | |\n|---|---|")
    if commit:
        w("| commit | `%s` |" % commit)
    for k in ["date", "host_name", "num_cpus", "mhz_per_cpu", "spattn_version",
              "spattn_build_type", "grid", "isa_auto", "threads_all", "openblas", "attn_shape"]:
        if k in ctx:
            w("| %s | %s |" % (k, ctx[k]))
    if "library_build_type" in ctx:
        w("| library_build_type | %s |" % build_type_note(ctx))
    for k in sorted(ctx):
        if k.startswith("peak_gflops") or k.startswith("dram_read"):
            w("| %s | %s |" % (k, ctx[k]))
    caches = ctx.get("caches", [])
    if caches:
        w("| caches | %s |" % ", ".join("L%d %s %d KiB" % (c["level"], c["type"], c["size"] // 1024)
                                        for c in caches))
    w("")
    w("Times are wall time per call. GFLOP/s counts useful work only: 2 x allowed pairs x "
      "(dim_qk + dim_v). `%peak` is that over the FMA peak measured at start-up for the ISA "
      "(x threads). `x dense` is the same ISA's dense time over this time; `x openblas` the "
      "OpenBLAS baseline's time over this time (both from the medians above). Repetitions "
      "are interleaved at random across the whole run, so a neighbour's burst on this "
      "shared machine lands on one repetition of many benchmarks rather than on every "
      "repetition of a few.\n")

    write_targets(ctx, results, w)
    write_modifiers(results, w)
    write_dtypes(results, w)

    for key, rs in sweep_groups(results).items():
        impls = sorted({r["fields"].get("isa") for r in rs}, key=impl_key)
        levels = sorted({r["fields"].get("sparsity") for r in rs}, key=level_key)
        patterns = sorted({r["fields"].get("pattern") for r in rs if r["fields"].get("pattern") != "dense"})
        w("## %s\n" % group_title(key))
        for pat in patterns or ["dense"]:
            rows = [r for r in rs if r["fields"].get("pattern") in (pat, "dense")]
            lv = sorted({r["fields"].get("sparsity") for r in rows}, key=level_key)
            if len(lv) < 2 and pat != "dense":
                continue
            w("### pattern %s\n" % pat)
            head = ["sparsity %"]
            for i in impls:
                head += ["%s ms" % i, "%s GFLOP/s" % i]
                if i != "openblas":
                    head += ["%s %%peak" % i, "%s x dense" % i, "%s x openblas" % i]
            if key[0] == "decode":
                head += ["%s GB/s" % i for i in impls]
            w("| " + " | ".join(head) + " |")
            w("|" + "---|" * len(head))
            # Ratios between medians of this run (the in-process counters compare against
            # whichever dense repetition ran last, which interleaving makes any of them).
            dense_ms = {r["fields"].get("isa"): r["ms"] for r in rows
                        if r["fields"].get("pattern") == "dense" and "ms" in r}
            for l in lv:
                cells = [l]
                by_impl = {r["fields"].get("isa"): r for r in rows if r["fields"].get("sparsity") == l}
                ob = by_impl.get("openblas")
                ob_ms = ob["ms"] if ob is not None and "ms" in ob else dense_ms.get("openblas")
                for i in impls:
                    r = by_impl.get(i)
                    n = 2 if i == "openblas" else 5
                    if r is None:
                        cells += [""] * n
                    elif "error" in r:
                        cells += ["skipped"] + [""] * (n - 1)
                    else:
                        c = r["c"]
                        cells += [fmt(r["ms"]), fmt(c.get("GFLOP/s"))]
                        if i != "openblas":
                            xd = dense_ms[i] / r["ms"] if i in dense_ms else None
                            xo = ob_ms / r["ms"] if ob_ms else None
                            cells += [fmt(c.get("pct_peak")), fmt(xd), fmt(xo)]
                if key[0] == "decode":
                    for i in impls:
                        r = by_impl.get(i)
                        v = r["c"].get("bytes/s") if r and "c" in r else None
                        cells.append(fmt(v / 1e9) if v else "")
                w("| " + " | ".join(cells) + " |")
            w("")

    for fam, title in [("plan", "Plan building and memory"), ("path", "Tiles versus gather path"),
                       ("membw", "Read bandwidth"), ("merge", "Merging partial results (spattn_merge)"),
                       ("peak", "FMA peak, sampled over the run")]:
        rs = [r for r in results if r["family"] == fam]
        if not rs:
            continue
        w("## %s\n" % title)
        keys = sorted({k for r in rs for k in r.get("c", {})})
        w("| benchmark | ms | " + " | ".join(keys) + " |")
        w("|---|---|" + "---|" * len(keys))
        for r in rs:
            if "error" in r:
                w("| %s | skipped: %s |%s" % (r["name"], r["error"], " |" * len(keys)))
            else:
                w("| %s | %s | %s |" % (r["name"], fmt(r["ms"], 4),
                                        " | ".join(fmt(r["c"].get(k)) for k in keys)))
        w("")

    skipped = [r for r in results if "error" in r]
    if skipped:
        w("## Skipped\n")
        msgs = defaultdict(int)
        for r in skipped:
            msgs[r["error"]] += 1
        for m, n in msgs.items():
            w("- %d benchmarks: %s" % (n, m))
        w("")
    with open(os.path.join(out, "report.md"), "w") as f:
        f.write("\n".join(lines))


def write_plots(results, out):
    pdir = os.path.join(out, "plots")
    os.makedirs(pdir, exist_ok=True)
    gp = ["set terminal pngcairo size 900,560 noenhanced font ',10'",
          "set grid", "set key outside right top", "set logscale x",
          "set xlabel 'density = 100 - sparsity (%), log scale'",
          "set xtics ('dense' 100, '50' 50, '25' 25, '10' 10, '5' 5, '1' 1, '0.1' 0.1)",
          "set xrange [130:0.07]"]
    made = []
    for key, rs in sweep_groups(results).items():
        for pat in sorted({r["fields"].get("pattern") for r in rs} - {"dense"}):
            rows = [r for r in rs if r["fields"].get("pattern") in (pat, "dense") and "error" not in r]
            if len({r["fields"]["sparsity"] for r in rows}) < 3:
                continue
            slug = group_slug(key) + "_" + pat
            series = []
            for i in sorted({r["fields"]["isa"] for r in rows}, key=impl_key):
                pts = sorted(((100.0 - float(r["fields"]["sparsity"]), r["ms"], r["c"].get("GFLOP/s", 0))
                              for r in rows if r["fields"]["isa"] == i), reverse=True)
                fn = "%s_%s.dat" % (slug, i)
                with open(os.path.join(pdir, fn), "w") as f:
                    f.write("# density_pct ms gflops\n")
                    for p in pts:
                        f.write("%g %g %g\n" % p)
                series.append((i, fn))
            title = "%s, pattern %s" % (group_title(key), pat)
            for what, col, ylabel, logy in [("time", 2, "time per call (ms), log scale", True),
                                            ("gflops", 3, "useful GFLOP/s", False)]:
                png = "%s_%s.png" % (what, slug)
                gp.append("set output '%s'" % png)
                gp.append("set title '%s: %s vs sparsity'" % (title, what))
                gp.append("set ylabel '%s'" % ylabel)
                gp.append("set logscale y" if logy else "unset logscale y")
                gp.append("set yrange [*:*]" if logy else "set yrange [0:*]")
                gp.append("plot " + ", ".join("'%s' using 1:%d with linespoints lw 2 title '%s'" % (fn, col, i)
                                              for i, fn in series))
                made.append(png)
    made += dtype_plot(results, pdir, gp)
    with open(os.path.join(pdir, "plots.gp"), "w") as f:
        f.write("\n".join(gp) + "\n")
    return made


def dtype_plot(results, pdir, gp):
    """A histogram of each problem and ISA's speed-up over float32 per 16-bit type."""
    rows = [r for r in dtype_rows(results) if r[5] is not None]
    if not rows:
        return []
    types = [t for t in DTYPE_ORDER if any(r[2] == t for r in rows)]
    types += sorted({r[2] for r in rows} - set(types))
    groups = OrderedDict()
    for problem, isa, dt, _, _, x, _, _ in rows:
        fam, f = parse_name(problem)
        label = " ".join([{"attn": "prefill"}.get(fam, fam), f.get("pattern", "")] +
                         [f[k] for k in ("len", "lenk", "heads") if k in f] + [isa])
        groups.setdefault(label, {})[dt] = x
    with open(os.path.join(pdir, "dtypes.dat"), "w") as f:
        f.write("# problem " + " ".join(types) + "\n")
        for label, xs in groups.items():
            f.write('"%s" %s\n' % (label, " ".join("%g" % xs[t] if t in xs else "NaN"
                                                   for t in types)))
    png = "dtypes.png"
    gp += ["set output '%s'" % png, "unset logscale x", "unset logscale y", "set xrange [*:*]",
           "set yrange [0:*]", "set xtics autofreq rotate by -30", "set xlabel ''",
           "set title 'time of float32 over time of each 16-bit type (higher is faster)'",
           "set ylabel 'x float32'", "set style data histograms",
           "set style histogram clustered gap 1", "set style fill solid 0.8 border -1",
           "plot " + ", ".join("'dtypes.dat' using %d:xtic(1) title '%s'" % (i + 2, t)
                               for i, t in enumerate(types))]
    return [png]


def main():
    if sys.argv[1:2] == ["--targets-filter"] and len(sys.argv) <= 3:
        print(targets_filter(*sys.argv[2:]))
        return
    if len(sys.argv) == 3 and sys.argv[1] == "--targets-text":
        text = targets_text(*load(sys.argv[2]))
        print(text if text is not None else
              "(no Targets table: this run holds none of its entries; --targets or the "
              "default grid do)")
        return
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    ctx, results = load(sys.argv[1])
    out = sys.argv[2]
    commit = sys.argv[3] if len(sys.argv) > 3 else ""
    os.makedirs(out, exist_ok=True)
    made = write_plots(results, out)
    write_report(ctx, results, out, commit)
    if made:
        with open(os.path.join(out, "report.md"), "a") as f:
            f.write("\n## Plots\n\n" + "\n".join("![%s](plots/%s)" % (m, m) for m in made) + "\n")
    print("bench_report: %d results, %d plots" % (len(results), len(made)))


if __name__ == "__main__":
    main()
