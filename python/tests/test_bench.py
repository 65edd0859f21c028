"""python -m spattn.bench runs, agrees with the dense formula, and prints every pattern."""

import subprocess
import sys


def test_bench_small_run():
    r = subprocess.run([sys.executable, "-m", "spattn.bench", "--len", "128", "--heads", "2",
                        "--dim", "16", "--repeat", "1", "--threads", "1"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    rows = r.stdout.splitlines()[3:]
    assert [row.split()[0] for row in rows] == ["causal", "window", "strided", "bigbird",
                                                "blocks", "16"]
    for row in rows:
        assert float(row.split()[-1]) < 1e-3  # max |diff| against NumPy
