"""python -m spattn.bench: spattn beside dense masked attention in NumPy, on this CPU.

For the usual sparse patterns at one length, times spattn.Plan (planned once, as a model layer
would) and the dense formula NumPy computes with BLAS (scores for every pair, masked, softmax,
times V), checks that the two agree, and prints one table of times and ratios.
"""

import argparse
import time

import numpy as np

from . import Mask, Plan, isa_selected, version


def patterns(n, seed):
    rng = np.random.default_rng(seed)
    nb = -(-n // 64)
    layout = np.tril(rng.random((nb, nb)) < 0.25) | np.eye(nb, dtype=bool)
    cols = np.sort(np.stack([rng.choice(n, 16, replace=False) for _ in range(n)]), axis=1)
    return [
        ("causal", lambda: Mask.causal(n)),
        ("window 256", lambda: Mask.window(n, n, 256, 0)),
        (f"strided {int(n ** 0.5)}", lambda: Mask.strided(n, n, int(n ** 0.5))),
        ("bigbird 64", lambda: Mask.bigbird(n, n, 64, 1, 1, 2, seed=seed)),
        ("blocks 64x64", lambda: Mask.from_blocks(layout, 64, 64, n, n)),
        ("16 keys/row", lambda: Mask.from_csr(np.arange(n + 1) * 16, cols.reshape(-1), n)),
    ]


def dense_numpy(q, k, v, allowed, scale):
    o = np.empty_like(q)
    for b in range(q.shape[0]):
        for h in range(q.shape[1]):
            s = (q[b, h] @ k[b, h].T) * scale
            s[~allowed] = -np.inf
            s -= s.max(axis=1, keepdims=True)
            p = np.exp(s, out=s)
            p /= p.sum(axis=1, keepdims=True)
            o[b, h] = p @ v[b, h]
    return o


def best_time(fn, repeat):
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m spattn.bench", description=__doc__.split("\n")[0])
    ap.add_argument("--len", type=int, default=2048, help="len_q = len_k (default 2048)")
    ap.add_argument("--heads", type=int, default=8)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--threads", type=int, default=0, help="spattn threads, 0 = all cores")
    ap.add_argument("--repeat", type=int, default=3, help="best of this many runs")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)

    rng = np.random.default_rng(a.seed)
    q, k, v = (rng.standard_normal((1, a.heads, a.len, a.dim)).astype(np.float32)
               for _ in range(3))
    scale = 1.0 / np.sqrt(a.dim)
    print(f"spattn {version} on {isa_selected()}, batch 1, {a.heads} heads, len {a.len}, "
          f"dim {a.dim}, float32, best of {a.repeat}")
    head = f"{'pattern':<14} {'density':>8} {'spattn ms':>10} {'numpy ms':>10} {'ratio':>7} " \
           f"{'max |diff|':>10}"
    print(head)
    print("-" * len(head))
    worst = 0.0
    for name, make in patterns(a.len, a.seed):
        with make() as m:
            allowed = m.to_dense()
            plan = Plan.like(q, k, v, m, threads=a.threads)
        o = np.empty_like(q)
        t_sp = best_time(lambda: plan(q, k, v, out=o), a.repeat)
        ref = dense_numpy(q, k, v, allowed, scale)
        t_np = best_time(lambda: dense_numpy(q, k, v, allowed, scale), a.repeat)
        err = float(np.abs(o - ref).max())
        worst = max(worst, err)
        plan.close()
        print(f"{name:<14} {allowed.mean():>8.4f} {t_sp * 1e3:>10.3f} {t_np * 1e3:>10.3f} "
              f"{t_np / t_sp:>6.1f}x {err:>10.2e}")
    if worst > 1e-3:
        raise SystemExit(f"spattn and the dense formula disagree by {worst}")


if __name__ == "__main__":
    main()
