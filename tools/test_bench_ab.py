#!/usr/bin/env python3
"""Checks tools/bench_ab.py against two made-up spattn-bench executables whose times per run are
fixed here, so that every figure of the table is known in advance.

    python3 tools/test_bench_ab.py      (ctest runs it as bench-ab)
"""
import io
import json
import os
import stat
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_ab  # noqa: E402

# A stand-in for spattn-bench: logs its tag and arguments, then writes Google Benchmark JSON
# whose times are TIMES[tag][run][entry] (ms; run = how many times this tag ran before). An
# entry given as a list is written as several repetitions, plus a mean aggregate that must not
# count; None leaves the entry out; "error" marks it as an errored run.
FAKE = r'''#!/usr/bin/env python3
import json, os, sys
tag, log, times = sys.argv[1], sys.argv[2], json.load(open(sys.argv[3]))
args = sys.argv[4:]
with open(log, "a") as f:
    f.write(json.dumps([tag] + args) + "\n")
if os.environ.get("FAKE_FAIL") == tag:
    sys.stderr.write("fake failure\n")
    sys.exit(3)
run = sum(1 for line in open(log) if json.loads(line)[0] == tag) - 1
out = [a.split("=", 1)[1] for a in args if a.startswith("--benchmark_out=")][0]
if os.environ.get("FAKE_EMPTY"):  # as spattn-bench does when the filter matches nothing
    open(out, "w").close()
    sys.exit(0)
benches = []
for name, t in times[tag][run].items():
    if t is None:
        continue
    if t == "error":
        benches.append({"name": name, "run_name": name, "run_type": "iteration",
                        "error_occurred": True, "real_time": 0, "time_unit": "ns"})
        continue
    for x in (t if isinstance(t, list) else [t]):
        benches.append({"name": name, "run_name": name, "run_type": "iteration",
                        "real_time": x * 1e6, "time_unit": "ns"})
    if isinstance(t, list):
        benches.append({"name": name + "_mean", "run_name": name, "run_type": "aggregate",
                        "real_time": 1.0, "time_unit": "ns"})
ctx = {"isa_auto": "avx2", "peak_gflops_1t_avx2": "%d.0" % (40 + run),
       "peak_gflops_1t_avx512": "%d.0" % (100 + run)}
json.dump({"context": ctx, "benchmarks": benches}, open(out, "w"))
'''


class BenchAb(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        d = self.tmp.name
        self.log = os.path.join(d, "log")
        self.times = os.path.join(d, "times.json")
        fake = os.path.join(d, "fake.py")
        with open(fake, "w") as f:
            f.write(FAKE)
        self.exe = {}
        for tag in ("base", "new"):
            p = os.path.join(d, tag)
            with open(p, "w") as f:
                f.write('#!/bin/sh\nexec "%s" "%s" %s "%s" %s "$@"\n'
                        % (sys.executable, fake, tag, self.log, self.times))
            os.chmod(p, os.stat(p).st_mode | stat.S_IXUSR)
            self.exe[tag] = p

    def tearDown(self):
        self.tmp.cleanup()

    def run_tool(self, times, args):
        """bench_ab on the two fakes, whose run counts start again from 0."""
        with open(self.times, "w") as f:
            json.dump(times, f)
        open(self.log, "w").close()
        out, err = io.StringIO(), io.StringIO()
        old = sys.stdout
        sys.stdout = out
        try:
            rc = bench_ab.main([self.exe["base"], self.exe["new"]] + args)
        finally:
            sys.stdout = old
        return rc, out.getvalue()

    def test_table_order_and_arguments(self):
        # entry a: base 10, 12, 11 (fastest 10, median 11); new 9, 8, 8.5 (8, 8.5)
        # entry b: repetitions; base fastest per run 3, 2, 4 (2, 3); new 1.5, 3, 2 (1.5, 2)
        times = {"base": [{"a": 10, "b": [3, 5]}, {"a": 12, "b": [2]}, {"a": 11, "b": [6, 4]}],
                 "new": [{"a": 9, "b": [1.5]}, {"a": 8, "b": [3, 7]}, {"a": 8.5, "b": [2, 9]}]}
        rc, out = self.run_tool(times, ["--filter", "^x/", "--rounds", "3", "--min-time", "0.05",
                                        "--", "--benchmark_repetitions=2"])
        self.assertEqual(rc, 0)
        rows = {line.split(" | ")[0][2:]: line for line in out.splitlines()
                if line.startswith("| a ") or line.startswith("| b ")}
        self.assertEqual(rows["a"], "| a | 10 | 8 | 0.800 | 11 | 8.5 | 0.773 |")
        self.assertEqual(rows["b"], "| b | 2 | 1.5 | 0.750 | 3 | 2 | 0.667 |")
        self.assertIn("base 40.0 41.0 42.0; new 40.0 41.0 42.0", out)
        with open(self.log) as f:
            calls = [json.loads(line) for line in f]
        # base first in odd rounds, new first in even ones
        self.assertEqual([c[0] for c in calls], ["base", "new", "new", "base", "base", "new"])
        for c in calls:
            self.assertIn("--benchmark_filter=^x/", c)
            self.assertIn("--benchmark_min_time=0.05", c)
            self.assertEqual(c[-1], "--benchmark_repetitions=2")

    def test_peak_of_the_entries_isa(self):
        # entries that name an ISA get that ISA's probe, not the one AUTO would pick
        times = {"base": [{"attn/isa:avx512/x": 5}], "new": [{"attn/isa:avx512/x": 4}]}
        rc, out = self.run_tool(times, ["--rounds", "1"])
        self.assertEqual(rc, 0)
        self.assertIn("base 100.0; new 100.0", out)

    def test_missing_and_errored_entries(self):
        times = {"base": [{"a": 5, "gone": 1, "bad": "error"}],
                 "new": [{"a": 4, "gone": None, "bad": "error", "added": 2}]}
        rc, out = self.run_tool(times, ["--rounds", "1"])
        self.assertEqual(rc, 0)
        self.assertIn("| a | 5 | 4 | 0.800 | 5 | 4 | 0.800 |", out)
        self.assertIn("| gone | 1 | missing | | | | |", out)
        self.assertIn("| added | missing | 2 | | | | |", out)
        self.assertNotIn("| bad ", out)

    def test_out_file(self):
        times = {"base": [{"a": 5}, {"a": 6}], "new": [{"a": 4}, {"a": 3}]}
        path = os.path.join(self.tmp.name, "ab.json")
        self.run_tool(times, ["--rounds", "2", "--out", path])
        with open(path) as f:
            saved = json.load(f)
        self.assertEqual(saved["base"], {"a": [5, 6]})
        self.assertEqual(saved["new"], {"a": [4, 3]})

    def test_failures_are_reported(self):
        times = {"base": [{"a": 5}], "new": [{"a": 4}]}
        os.environ["FAKE_FAIL"] = "new"
        try:
            with self.assertRaises(SystemExit) as cm:
                self.run_tool(times, ["--rounds", "1"])
        finally:
            del os.environ["FAKE_FAIL"]
        self.assertIn("failed (exit 3)", str(cm.exception.code))
        self.assertIn("fake failure", str(cm.exception.code))
        with self.assertRaises(SystemExit) as cm:  # nothing matched
            self.run_tool({"base": [{"a": None}], "new": [{"a": None}]}, ["--rounds", "1"])
        self.assertIn("no entry matches", str(cm.exception.code))
        os.environ["FAKE_EMPTY"] = "1"
        try:
            with self.assertRaises(SystemExit) as cm:
                self.run_tool({"base": [{}], "new": [{}]}, ["--rounds", "1"])
        finally:
            del os.environ["FAKE_EMPTY"]
        self.assertIn("no entry matches", str(cm.exception.code))
        with self.assertRaises(SystemExit):  # argparse: not an executable
            bench_ab.main([self.log, self.exe["new"]])
        with self.assertRaises(SystemExit):
            bench_ab.main([self.exe["base"], self.exe["new"], "--rounds", "0"])


if __name__ == "__main__":
    unittest.main()
