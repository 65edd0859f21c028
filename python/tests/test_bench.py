"""python -m spattn.bench runs, agrees with its baselines, and prints every pattern."""

import importlib.util
import subprocess
import sys

import pytest

PATTERNS = ["dense", "causal", "window", "blocks", "blocks", "strided", "16"]


def run(*args):
    r = subprocess.run([sys.executable, "-m", "spattn.bench", "--quick", *args],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    rule = next(i for i, line in enumerate(lines) if line.startswith("---"))
    return lines[rule - 1].split(), [row.split() for row in lines[rule + 1:]]


def test_bench_against_numpy():
    head, rows = run("--torch", "off")
    assert [row[0] for row in rows] == PATTERNS
    assert "numpy" in head
    for row in rows:
        assert float(row[-1]) < 1e-3  # max |diff| against the dense formula


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="torch is not installed")
def test_bench_against_sdpa_and_flex_attention():
    head, rows = run()
    assert [row[0] for row in rows] == PATTERNS
    assert "sdpa" in head and "flex" in head
    for row in rows:
        assert row.count("-") == 0
        assert float(row[-1]) < 1e-3  # max |diff| against SDPA and FlexAttention


def test_overhead_times_every_entry_point():
    r = subprocess.run([sys.executable, "-m", "spattn.bench", "--overhead", "--len", "16",
                        "--dim", "8", "--calls", "3"], capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    rows = [line for line in r.stdout.splitlines() if line.endswith(" us")]
    names = [row.rsplit(None, 4)[0].strip() for row in rows]
    assert names[:3] == ["spattn_plan_execute (ctypes, C call)", "spattn.Plan(q, k, v, out=o)",
                         "spattn.attention(q, k, v, m)"]
    assert len(names) == (5 if importlib.util.find_spec("torch") else 3)
    assert all(0 < float(row.split()[-4]) <= float(row.split()[-3]) for row in rows)


def test_interleaved_rounds_take_turns_and_keep_each_fastest(monkeypatch):
    import spattn.bench as bench

    now, calls = [0.0], []
    durations = {"a": [3, 1, 2], "b": [1, 5, 4], "c": [2, 2, 6]}

    def fn(name):
        def call():
            calls.append(name)
            now[0] += durations[name][calls.count(name) - 1]
        return call

    # A clock that only the calls advance: the test times nothing.
    monkeypatch.setattr(bench.time, "perf_counter", lambda: now[0])
    times = bench.interleaved([fn("a"), fn("b"), fn("c")], 3)
    # Each round runs every function once, starting one further on each round.
    assert calls == ["a", "b", "c", "b", "c", "a", "c", "a", "b"]
    assert times == [[3, 1, 2], [1, 5, 4], [2, 2, 6]]
    assert [min(t) for t in times] == [1, 1, 2]
    # With several calls a round, each round's time is per call, over that round's calls.
    calls.clear()
    durations["a"] = [1, 3, 2, 2]
    assert bench.interleaved([fn("a")], 2, calls=2) == [[2, 2]]
