#!/usr/bin/env python3
"""Checks the Targets table of tools/bench_report.py on a made-up run whose figures are worked
out here from the definitions in docs/performance.md, not from the script; and what the report
says of the build types.

    python3 tools/test_bench_report.py      (ctest runs it as bench-report-targets)
"""
import json
import os
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_report  # noqa: E402

ATTN = "attn/isa:%s/pattern:%s/sparsity:%s/len:4096/dim:64/threads:%d"
DECODE = "decode/isa:avx512/pattern:dense/sparsity:0/lenk:32768/dim:128/heads:32x8/threads:1"
PEAK512 = "peak/isa:avx512/threads:1"
MEMBW = "membw/read/mib:1024/threads:1"
BWD = "backward/isa:avx512/pattern:%s/sparsity:%s/len:4096/dim:64/threads:%d"

FLOP = 4.0 * 4096 * 4096 * 2 * 64      # dense: 4 x pairs x dim, two heads
KV = 8.0 * 32768 * 128 * 4 * 2         # decode: 8 KV heads of K and V, fp32
BWD_FLOP = 10.0 * 4096 * 4096 * 2 * 64  # backward: 10 x pairs x dim, two heads


def reps(name, times_ms, **counters):
    """One iteration entry per repetition; counters give one value per repetition."""
    out = []
    for i, t in enumerate(times_ms):
        b = {"name": name, "run_name": name, "run_type": "iteration", "repetition_index": i,
             "real_time": t, "cpu_time": t, "time_unit": "ms", "iterations": 3}
        for k, v in counters.items():
            b[k] = v[i] if isinstance(v, list) else v
        out.append(b)
    return out


def made_up_run():
    bms = []
    bms += reps(ATTN % ("avx512", "dense", "0", 1), [100.0, 80.0, 120.0], sparsity_actual=0.0)
    bms += reps(ATTN % ("avx512", "causal", "50", 1), [50.0, 45.0, 55.0], sparsity_actual=50.0)
    bms += reps(ATTN % ("avx512", "blocks64", "90", 1), [12.0, 10.0, 11.0], sparsity_actual=90.0)
    bms += reps(ATTN % ("avx512", "dense", "0", 2), [60.0, 50.0, 70.0], sparsity_actual=0.0)
    bms += reps(DECODE, [30.0, 25.0, 35.0], sparsity_actual=0.0)
    bms += reps(PEAK512, [10.0, 10.0, 10.0], **{"GFLOP/s": [150.0, 170.0, 160.0]})
    bms += reps(MEMBW, [90.0, 90.0, 90.0], **{"bytes/s": [10e9, 12e9, 11e9]})
    bms += reps(BWD % ("dense", "0", 1), [250.0, 200.0, 300.0], sparsity_actual=0.0)
    bms += reps(BWD % ("causal", "50", 1), [130.0, 110.0, 140.0], sparsity_actual=50.0)
    bms += reps(BWD % ("blocks64", "90", 1), [30.0, 28.0, 35.0], sparsity_actual=90.0)
    bms += reps(BWD % ("blocks64", "99", 1), [6.0, 5.0, 7.0], sparsity_actual=99.0)
    bms += reps(BWD % ("dense", "0", 2), [140.0, 120.0, 150.0], sparsity_actual=0.0)
    # an entry that failed: counted as absent, never as a figure
    bms.append({"name": ATTN % ("avx512", "fewkeys", "99.6", 1),
                "run_name": ATTN % ("avx512", "fewkeys", "99.6", 1), "run_type": "iteration",
                "error_occurred": True, "error_message": "skipped", "real_time": 0,
                "time_unit": "ms"})
    ctx = {"peak_gflops_1t_avx512": "100.0", "dram_read_gbps_1t": "11.5"}
    return {"context": ctx, "benchmarks": bms}


class Targets(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        path = os.path.join(self.dir.name, "results.json")
        with open(path, "w") as f:
            json.dump(made_up_run(), f)
        self.ctx, self.results = bench_report.load(path)
        self.by = {r["name"]: r for r in self.results}

    def tearDown(self):
        self.dir.cleanup()

    def rows(self, fastest):
        if fastest:
            return bench_report.target_rows(self.ctx, self.by, lambda r: r["reps_ms"][0], True)
        return bench_report.target_rows(self.ctx, self.by, lambda r: r["ms"], False)

    def values(self, fastest):
        return {label: v for label, _, v, _ in self.rows(fastest)}

    @staticmethod
    def expected(dense, causal, blocks, dense2, decode, peak, bw, bdense, bcausal, b10, b1,
                 bdense2):
        """Each target from the definitions, given the times (ms) and denominators picked."""
        return {
            "backward dense, share of the avx512 FMA peak": BWD_FLOP / (bdense / 1e3) / peak,
            "backward causal efficiency": bdense * 0.5 / bcausal,
            "backward 64x64 blocks 10 % efficiency": bdense * 0.1 / b10,
            "backward 64x64 blocks 1 % efficiency": bdense * 0.01 / b1,
            "backward 2 threads over 1, dense": bdense / bdense2,
            "dense avx512, share of its FMA peak": FLOP / (dense / 1e3) / peak,
            "causal efficiency": dense * 0.5 / causal,
            "64x64 blocks 10 % efficiency": dense * 0.1 / blocks,
            "2 threads over 1, dense": dense / dense2,
            "decode K/V stream, share of 1-thread DRAM read": KV / (decode / 1e3) / bw,
        }

    # Medians: the samples' median peak (160) and bandwidth (11), not the start-up probes.
    # Fastest: the best samples (170, 12), which beat the start-up probes (100, 11.5).
    EXPECTED = {False: (100.0, 50.0, 11.0, 60.0, 30.0, 160e9, 11e9, 250.0, 130.0, 30.0, 6.0,
                        140.0),
                True: (80.0, 45.0, 10.0, 50.0, 25.0, 170e9, 12e9, 200.0, 110.0, 28.0, 5.0,
                       120.0)}

    def test_values(self):
        for fastest, picked in self.EXPECTED.items():
            got = self.values(fastest)
            for label, v in self.expected(*picked).items():
                self.assertAlmostEqual(got[label], v, msg="%s (fastest=%s)" % (label, fastest))

    def test_startup_probe_when_higher(self):
        self.ctx["peak_gflops_1t_avx512"] = "400.0"
        v = self.values(True)
        self.assertAlmostEqual(v["dense avx512, share of its FMA peak"], FLOP / 0.080 / 400e9)
        # the medians keep the samples' median
        v = self.values(False)
        self.assertAlmostEqual(v["dense avx512, share of its FMA peak"], FLOP / 0.100 / 160e9)

    def test_absent_and_failed(self):
        v = self.values(True)
        self.assertEqual(len(v), 15)
        for label in ("dense avx2, share of its FMA peak", "64x64 blocks 1 % efficiency",
                      "CSR 16 keys per row efficiency", "2 threads over 1, causal",
                      "backward 2 threads over 1, causal"):
            self.assertIsNone(v[label], label)

    def test_table(self):
        lines = []
        bench_report.write_targets(self.ctx, self.results, lines.append)
        text = "\n".join(lines)
        # medians: causal 1.0, blocks 0.91 and decode 0.81 met; dense 0.54, 2 threads 1.67
        # missed. Fastest: dense 0.63, causal 0.89, decode 0.89 met; blocks 0.80, 2 threads
        # 1.60 missed. Backward, medians: causal 0.96 and 10 % 0.83 met; peak 0.54, 1 % 0.42
        # and 2 threads 1.79 missed. Fastest: causal 0.91 met; peak 0.63, 10 % 0.71, 1 % 0.40
        # and 2 threads 1.67 missed.
        self.assertIn("Met: 5 of 15 from medians, 4 of 15 from the fastest repetitions.", text)
        self.assertIn("fastest of 3 repetitions", text)
        self.assertEqual(text.count("absent"), 2 * 5)
        row = next(l for l in lines if l.startswith("| 64x64 blocks 10 %"))
        self.assertIn("0.909 met", row)
        self.assertIn("0.800 **missed**", row)

    def test_filter(self):
        import re
        f = re.compile(bench_report.targets_filter())
        names = {b["run_name"] for b in made_up_run()["benchmarks"]}
        for n in names | {ATTN % ("avx2", "dense", "0", 1), ATTN % ("avx512", "causal", "50", 2),
                          ATTN % ("avx512", "blocks64", "99", 1), "peak/isa:avx2/threads:1"}:
            self.assertTrue(f.match(n), n)
        for n in (ATTN % ("avx512", "dense", "0", 16), ATTN % ("avx512", "fewkeys", "9916", 1),
                  ATTN % ("scalar", "dense", "0", 1), "peak/isa:scalar/threads:1",
                  "membw/read/mib:1024/threads:2", DECODE.replace("threads:1", "threads:2")):
            self.assertFalse(f.match(n), n)
        self.assertEqual(len(bench_report.target_entries()), 18)

    def test_cpu_without_avx512(self):
        """A run of an AVX2-only CPU: the ISA-wide targets come from its avx2 entries, labelled
        so, and the avx2 filter asks for those entries."""
        bms = [b for b in made_up_run()["benchmarks"] if "isa:avx512" not in b["run_name"]]
        bms += reps(ATTN % ("avx2", "dense", "0", 1), [200.0, 160.0, 240.0], sparsity_actual=0.0)
        bms += reps(ATTN % ("avx2", "causal", "50", 1), [110.0, 90.0, 100.0],
                    sparsity_actual=50.0)
        bms += reps(DECODE.replace("avx512", "avx2"), [60.0, 50.0, 70.0], sparsity_actual=0.0)
        path = os.path.join(self.dir.name, "avx2.json")
        with open(path, "w") as f:
            json.dump({"context": {"dram_read_gbps_1t": "11.5"}, "benchmarks": bms}, f)
        ctx, results = bench_report.load(path)
        by = {r["name"]: r for r in results}
        self.assertEqual(bench_report.target_isa(by), "avx2")
        med, best, _, _ = bench_report.targets(ctx, results)
        got = {label: v for label, _, v, _ in med}
        self.assertAlmostEqual(got["causal efficiency (avx2)"], 200.0 * 0.5 / 100.0)
        self.assertAlmostEqual(got["decode K/V stream, share of 1-thread DRAM read (avx2)"],
                               KV / 0.060 / 11e9)
        self.assertIsNone(got["dense avx512, share of its FMA peak"])
        self.assertNotIn("causal efficiency", got)
        import re
        f = re.compile(bench_report.targets_filter("avx2"))
        for n in (ATTN % ("avx2", "causal", "50", 2), DECODE.replace("avx512", "avx2"),
                  BWD.replace("avx512", "avx2") % ("blocks64", "99", 1)):
            self.assertTrue(f.match(n), n)
        self.assertFalse(f.match(ATTN % ("avx512", "causal", "50", 1)))

    def test_no_target_entries(self):
        lines = []
        only_membw = [r for r in self.results if r["family"] == "membw"]
        bench_report.write_targets(self.ctx, only_membw, lines.append)
        self.assertEqual(lines, [])

    def test_text(self):
        text = bench_report.targets_text(self.ctx, self.results)
        lines = text.split("\n")
        self.assertEqual(len(lines), 1 + 15 + 1)
        self.assertEqual(lines[0].split(), ["target", "needs", "from", "medians", "from",
                                            "fastest", "of", "3"])
        row = next(l for l in lines if l.startswith("64x64 blocks 10 %"))
        self.assertEqual(row.split()[-6:], [">=", "0.85", "0.909", "met", "0.800", "MISSED"])
        row = next(l for l in lines if l.startswith("2 threads over 1, causal"))
        self.assertEqual(row.split()[-2:], ["absent", "absent"])
        # columns line up: every figure column starts where its heading does
        at = lines[0].index("from medians")
        self.assertTrue(all(l[at - 2:at] == "  " and l[at] != " " for l in lines[1:16]))
        self.assertEqual(lines[-1], "Met: 5 of 15 from medians, 4 of 15 from the fastest "
                                    "repetitions.")
        only_membw = [r for r in self.results if r["family"] == "membw"]
        self.assertIsNone(bench_report.targets_text(self.ctx, only_membw))


class Modifiers(unittest.TestCase):
    """The "Score modifiers and packed sequences" section: ratios against the entry without
    the modifier, efficiencies against dense x density."""
    CAUSAL = ATTN % ("avx512", "causal", "50", 1)
    SINKS = "attn/isa:avx512/pattern:causal/mod:sinks/sparsity:50/len:4096/dim:64/threads:1"
    ALIBI = "attn/isa:avx2/pattern:dense/mod:alibi/sparsity:0/len:4096/dim:64/threads:1"
    DENSE16K = "attn/isa:avx512/pattern:dense/sparsity:0/len:16384/dim:64/threads:1"
    DOCS = "attn/isa:avx512/pattern:documents/sparsity:94.1/len:16384/dim:64/threads:1"

    def setUp(self):
        bms = reps(self.CAUSAL, [50.0, 40.0, 60.0], sparsity_actual=50.0)
        bms += reps(self.SINKS, [52.0, 53.0, 51.0], sparsity_actual=50.0)
        bms += reps(self.ALIBI, [10.0, 10.0, 10.0], sparsity_actual=0.0)  # no plain twin
        bms += reps(self.DENSE16K, [1000.0, 1000.0, 1000.0], sparsity_actual=0.0)
        bms += reps(self.DOCS, [80.0, 75.0, 70.0], sparsity_actual=94.0)
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "results.json")
            with open(path, "w") as f:
                json.dump({"context": {}, "benchmarks": bms}, f)
            _, self.results = bench_report.load(path)

    def test_rows(self):
        mods, longs = bench_report.modifier_rows(self.results)
        # sorted by name: avx2 before avx512
        self.assertEqual([(m[0], m[2]) for m in mods],
                         [(self.ALIBI, self.ALIBI.replace("/mod:alibi", "")),
                          (self.SINKS, self.CAUSAL)])
        self.assertIsNone(mods[0][4])
        self.assertAlmostEqual(mods[1][4], 52.0 / 50.0)
        self.assertEqual(len(longs), 1)
        name, t, dens, td, eff = longs[0]
        self.assertEqual((name, t, td), (self.DOCS, 75.0, 1000.0))
        self.assertAlmostEqual(eff, 1000.0 * 0.06 / 75.0)

    def test_section(self):
        lines = []
        bench_report.write_modifiers(self.results, lines.append)
        text = "\n".join(lines)
        self.assertIn("| %s | 52 | 50 | 1.040 met |" % self.SINKS, text)
        self.assertIn("| %s | 10 | absent |  |" % self.ALIBI, text)
        self.assertIn("| 0.0600 | 1000 | 0.800 **missed** |", text)
        lines = []
        bench_report.write_modifiers([r for r in self.results if r["name"] == self.CAUSAL],
                                     lines.append)
        self.assertEqual(lines, [])


class Dtypes(unittest.TestCase):
    DEC = "decode/isa:avx512/pattern:dense/sparsity:0/lenk:32768/dim:128/heads:32x8/threads:1"
    DEC16 = DEC.replace("/sparsity:", "/dtype:bf16/sparsity:")
    PRE = ATTN % ("avx2", "dense", "0", 1)
    PRE16 = PRE.replace("/sparsity:", "/dtype:f16/sparsity:")
    PRE_KV = PRE.replace("/sparsity:", "/dtype:f32-f16kv/sparsity:")

    def setUp(self):
        bms = []
        bms += reps(self.DEC, [30.0, 20.0, 40.0], **{"bytes/s": 9e9, "pct_dram": 40.0})
        bms += reps(self.DEC16, [16.0, 15.0, 14.0], **{"bytes/s": [8e9, 9e9, 10e9],
                                                      "pct_dram": [30.0, 35.0, 40.0]})
        bms += reps(self.PRE, [100.0, 100.0, 100.0])
        bms += reps(self.PRE16, [125.0, 125.0, 125.0])
        bms += reps(self.PRE_KV, [50.0, 50.0, 50.0])
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "results.json")
            with open(path, "w") as f:
                json.dump({"context": {}, "benchmarks": bms}, f)
            _, self.results = bench_report.load(path)

    def test_rows(self):
        rows = bench_report.dtype_rows(self.results)
        self.assertEqual(len(rows), 3)
        # attn before decode; within a problem bf16, f16, f32-f16kv
        self.assertEqual([(r[1], r[2]) for r in rows],
                         [("avx2", "f16"), ("avx2", "f32-f16kv"), ("avx512", "bf16")])
        self.assertEqual(rows[0][0], "attn/pattern:dense/sparsity:0/len:4096/dim:64/threads:1")
        self.assertAlmostEqual(rows[0][5], 100.0 / 125.0)
        self.assertAlmostEqual(rows[1][5], 2.0)
        self.assertIsNone(rows[0][6])
        problem, isa, dt, t, tb, x, bw, pd = rows[2]
        self.assertEqual((t, tb), (15.0, 30.0))
        self.assertAlmostEqual(x, 2.0)
        self.assertAlmostEqual(bw, 9.0)
        self.assertAlmostEqual(pd, 35.0)

    def test_section_and_plot(self):
        lines = []
        bench_report.write_dtypes(self.results, lines.append)
        text = "\n".join(lines)
        self.assertIn("| avx512 | bf16 | 15 | 30 | 2 | 9 | 35 |", text)
        self.assertIn("| avx2 | f16 | 125 | 100 | 0.8 |  |  |", text)
        with tempfile.TemporaryDirectory() as d:
            made = bench_report.write_plots(self.results, d)
            self.assertIn("dtypes.png", made)
            with open(os.path.join(d, "plots", "dtypes.dat")) as f:
                dat = f.read().split("\n")
            self.assertEqual(dat[0], "# problem bf16 f16 f32-f16kv")
            self.assertIn('"prefill dense 4096 avx2" NaN 0.8 2', dat)
        lines = []
        bench_report.write_dtypes([r for r in self.results if "dtype" not in r["fields"]],
                                  lines.append)
        self.assertEqual(lines, [])


class BuildTypes(unittest.TestCase):
    def report(self, ctx):
        with tempfile.TemporaryDirectory() as d:
            bench_report.write_report(ctx, [], d, "abc")
            with open(os.path.join(d, "report.md")) as f:
                return f.read()

    def test_debug_library_explained(self):
        text = self.report({"library_build_type": "debug", "spattn_build_type": "Release"})
        row = next(l for l in text.split("\n") if l.startswith("| library_build_type |"))
        self.assertIn("Library was built as DEBUG", row)
        self.assertIn("Google Benchmark's own library", row)
        self.assertIn("built Release", row)
        self.assertIn("| spattn_build_type | Release |", text)

    def test_release_library_plain(self):
        text = self.report({"library_build_type": "release", "spattn_build_type": "Release"})
        self.assertIn("| library_build_type | release |", text)
        self.assertNotIn("DEBUG", text)


if __name__ == "__main__":
    unittest.main()
