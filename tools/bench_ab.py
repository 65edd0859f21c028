#!/usr/bin/env python3
"""Compares two spattn-bench executables side by side on one machine, in one sitting.

    python3 tools/bench_ab.py BASE NEW [--filter REGEX] [--rounds N] [--min-time S]
                                       [--out FILE.json] [-- EXTRA BENCH FLAGS]

BASE and NEW are spattn-bench executables (two builds: two commits, two compilers, two sets of
flags). Each round runs both once on the entries REGEX selects, BASE first in odd rounds and NEW
first in even ones, so that a drift of the machine within a round does not favour either. Every
entry then has one time per round from each build (real time, ms; the fastest of a run's
repetitions when EXTRA asks for several). The table gives, per entry, each build's fastest and
median round and NEW / BASE of both: on a shared machine the fastest is the figure least
touched by neighbours and the median says how often that held. Each run's probed FMA peak of
the entries' ISA is printed too, the same in every round on a quiet machine. --out keeps every
round's times as JSON.
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile

import bench_report  # the same directory: its JSON reading and median


def run_once(exe, flt, min_time, extra):
    """One run of exe: {entry: fastest repetition in ms} and the run's context (the JSON read
    as bench_report.py reads it; entries with an errored repetition left out)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "run.json")
        cmd = [exe, "--benchmark_filter=" + flt, "--benchmark_min_time=%g" % min_time,
               "--benchmark_out=" + out, "--benchmark_out_format=json"] + extra
        res = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if res.returncode != 0:
            raise SystemExit("bench_ab: %s failed (exit %d):\n%s" % (exe, res.returncode,
                                                                     res.stderr[-2000:]))
        # A filter that matches nothing leaves the file empty (or absent), with exit status 0.
        if not os.path.exists(out) or os.path.getsize(out) == 0:
            return {}, {}
        ctx, results = bench_report.load(out)
    return {r["name"]: r["reps_ms"][0] for r in results if "error" not in r}, ctx


def peak_of(ctx, names):
    """The run's probed FMA peak of the ISA the entries name (isa:NAME/ of the first entry that
    has one; AUTO's choice when none does), as the context gives it, or '?'."""
    isa = next((m.group(1) for m in map(re.compile(r"/isa:([a-z0-9_]+)/").search, sorted(names))
                if m), ctx.get("isa_auto", ""))
    return ctx.get("peak_gflops_1t_" + str(isa), "?")


def compare(base, new, flt, rounds, min_time, extra, log=sys.stderr):
    """Alternating runs; returns ({entry: [base times]}, {entry: [new times]}, peaks)."""
    got = {"base": {}, "new": {}}
    peaks = {"base": [], "new": []}
    for r in range(rounds):
        order = [("base", base), ("new", new)] if r % 2 == 0 else [("new", new), ("base", base)]
        for tag, exe in order:
            times, ctx = run_once(exe, flt, min_time, extra)
            peaks[tag].append(peak_of(ctx, times))
            for name, t in times.items():
                got[tag].setdefault(name, []).append(t)
        print("bench_ab: round %d of %d done" % (r + 1, rounds), file=log)
    return got["base"], got["new"], peaks


def fmt(x):
    return "%.4g" % x


def table(base, new):
    """Markdown rows: entry, fastest and median of each build, NEW / BASE of both."""
    rows = ["| entry | base fastest | new fastest | new / base | base median | new median "
            "| new / base |", "|---|---|---|---|---|---|---|"]
    for name in sorted(set(base) | set(new)):
        b, n = base.get(name), new.get(name)
        if not b or not n:
            rows.append("| %s | %s | %s | | | | |" % (name, fmt(min(b)) if b else "missing",
                                                     fmt(min(n)) if n else "missing"))
            continue
        bm, nm = bench_report.median(b), bench_report.median(n)
        rows.append("| %s | %s | %s | %.3f | %s | %s | %.3f |" % (
            name, fmt(min(b)), fmt(min(n)), min(n) / min(b), fmt(bm), fmt(nm), nm / bm))
    return rows


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    extra = []
    if "--" in argv:
        i = argv.index("--")
        argv, extra = argv[:i], argv[i + 1:]
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("base", help="the spattn-bench to compare against")
    ap.add_argument("new", help="the spattn-bench to compare")
    ap.add_argument("--filter", default="attn/", help="entries, as --benchmark_filter takes them")
    ap.add_argument("--rounds", type=int, default=5, help="runs of each build (default 5)")
    ap.add_argument("--min-time", type=float, default=0.3,
                    help="seconds per entry and run (--benchmark_min_time, default 0.3)")
    ap.add_argument("--out", help="write every round's times here as JSON")
    a = ap.parse_args(argv)
    if a.rounds < 1:
        ap.error("--rounds must be at least 1")
    for exe in (a.base, a.new):
        if not os.access(exe, os.X_OK):
            ap.error("not an executable: %s" % exe)
    base, new, peaks = compare(a.base, a.new, a.filter, a.rounds, a.min_time, extra)
    if not base and not new:
        raise SystemExit("bench_ab: no entry matches --filter %r" % a.filter)
    print("Times in ms, %d alternating rounds of each build (base: %s, new: %s)." % (
        a.rounds, a.base, a.new))
    print("FMA peak probed per round, GFLOP/s: base %s; new %s." % (
        " ".join(peaks["base"]), " ".join(peaks["new"])))
    print()
    print("\n".join(table(base, new)))
    if a.out:
        with open(a.out, "w") as f:
            json.dump({"base": base, "new": new, "peaks": peaks, "filter": a.filter}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
