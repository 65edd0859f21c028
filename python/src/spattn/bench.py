"""python -m spattn.bench: spattn beside dense and block-sparse attention on this CPU.

For the usual sparse patterns at one length, times spattn (planned once, as a model layer
would) and, when PyTorch is importable, scaled_dot_product_attention with the pattern as a
dense bool mask and FlexAttention (flex_attention under torch.compile, with a 64x64
BlockMask made from the same bool mask); without PyTorch, the dense formula in NumPy. Checks
that every result agrees with spattn's and prints one table of times and ratios (baseline
time / spattn time: above 1 means spattn is faster).
"""

import argparse
import time

import numpy as np

from . import Mask, Plan, aligned, attention, empty, isa_selected, version


def _block_layout(rng, nb, density):
    layout = rng.random((nb, nb)) < density
    np.fill_diagonal(layout, True)  # no query without keys
    return layout


def patterns(n, seed):
    """(name, a function making the spattn.Mask or None for every pair)."""
    rng = np.random.default_rng(seed)
    nb = -(-n // 64)
    b10, b1 = _block_layout(rng, nb, 0.10), _block_layout(rng, nb, 0.01)
    cols = np.sort(np.stack([rng.choice(n, min(16, n), replace=False) for _ in range(n)]),
                   axis=1)
    stride = max(1, int(n ** 0.5))
    return [
        ("dense", lambda: None),
        ("causal", lambda: Mask.causal(n)),
        ("window 256", lambda: Mask.window(n, n, 256, 0)),
        ("blocks 10%", lambda: Mask.from_blocks(b10, 64, 64, n, n)),
        ("blocks 1%", lambda: Mask.from_blocks(b1, 64, 64, n, n)),
        (f"strided {stride}", lambda: Mask.strided(n, n, stride)),
        ("16 keys/row", lambda: Mask.from_csr(np.arange(n + 1) * cols.shape[1],
                                              cols.reshape(-1), n)),
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


def interleaved(fns, rounds, calls=1):
    """Each function's time per call in each of `rounds` rounds (seconds, one list per
    function). A round runs every function `calls` times, in turn, starting one function
    further on each round: on a shared machine a neighbour's burst then falls on all of them
    alike, where timing one function's repeats after another's would give the burst to
    whichever ran during it."""
    times = [[] for _ in fns]
    for r in range(rounds):
        for i in range(len(fns)):
            j = (r + i) % len(fns)
            t0 = time.perf_counter()
            for _ in range(calls):
                fns[j]()
            times[j].append((time.perf_counter() - t0) / calls)
    return times


class NumpyRunners:
    """spattn.Plan on NumPy arrays beside the dense formula in NumPy."""

    baselines = ("numpy",)

    def __init__(self, a):
        rng = np.random.default_rng(a.seed)
        # On 64-byte boundaries, as PyTorch's tensors are (spattn.aligned).
        self.q, self.k, self.v = (
            aligned(rng.standard_normal((1, a.heads, a.len, a.dim)).astype(np.float32))
            for _ in range(3))
        self.scale = 1.0 / np.sqrt(a.dim)
        self.threads = a.threads
        self.o = empty(self.q.shape, np.float32)

    def spattn(self, mask, allowed):
        plan = Plan.like(self.q, self.k, self.v, mask, threads=self.threads)
        return lambda: plan(self.q, self.k, self.v, out=self.o)

    def baseline(self, name, mask, allowed):
        return lambda: dense_numpy(self.q, self.k, self.v, allowed, self.scale)

    @staticmethod
    def diff(a, b):
        return float(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64)).max())


def overhead(a):
    """Per-call times of the Python entry points on one small causal problem, beside the
    library call itself (spattn_plan_execute through ctypes with its arguments made once;
    python/bench/call_overhead.c times the same problem from C)."""
    from ._lib import lib

    rng = np.random.default_rng(a.seed)
    q, k, v = (rng.standard_normal((1, a.heads, a.len, a.dim)).astype(np.float32)
               for _ in range(3))
    m = Mask.causal(a.len)
    plan = Plan.like(q, k, v, m, threads=1)
    o = np.empty_like(q)
    p = plan._problem(q, k, v, {})
    p.outputs(out=o)
    execute, plan_ptr, args = lib.spattn_plan_execute, plan.ptr, p.args
    rows = [("spattn_plan_execute (ctypes, C call)", lambda: execute(plan_ptr, args)),
            ("spattn.Plan(q, k, v, out=o)", lambda: plan(q, k, v, out=o)),
            ("spattn.attention(q, k, v, m)", lambda: attention(q, k, v, m, threads=1))]
    if a.torch == "auto":
        try:
            import torch

            from . import torch as st
        except ImportError:
            pass
        else:
            torch.set_num_threads(1)
            tq, tk, tv = (torch.from_numpy(x) for x in (q, k, v))

            def no_grad():
                with torch.no_grad():
                    st.attention(tq, tk, tv, m)

            rows += [("spattn.torch.attention(q, k, v, m)", lambda: st.attention(tq, tk, tv, m)),
                     ("  the same under torch.no_grad()", no_grad)]
    for _name, fn in rows:
        fn()
    rounds = 15
    print(f"spattn {version} on {isa_selected()}: batch 1, {a.heads} head(s), len {a.len}, "
          f"dim {a.dim}, causal, float32, 1 thread; us per call in the fastest / median of "
          f"{rounds} rounds of {a.calls} calls, and the fastest less the C call's")
    times = [(min(t) * 1e6, sorted(t)[rounds // 2] * 1e6)
             for t in interleaved([fn for _name, fn in rows], rounds, a.calls)]
    for (name, _fn), (fast, med) in zip(rows, times):
        print(f"{name:<36} {fast:>9.2f} {med:>9.2f} {fast - times[0][0]:>+9.2f} us")


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m spattn.bench",
                                 description=__doc__.split("\n")[0])
    ap.add_argument("--len", type=int, default=None, help="len_q = len_k (default 4096)")
    ap.add_argument("--heads", type=int, default=1, help="heads (default 1)")
    ap.add_argument("--dim", type=int, default=64, help="dim_qk = dim_v (default 64)")
    ap.add_argument("--threads", type=int, default=1,
                    help="threads of spattn and torch (default 1; 0 = all cores)")
    ap.add_argument("--repeat", type=int, default=10,
                    help="rounds: each program runs once a round, in turn (default 10); "
                         "the table gives each one's fastest")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--torch", choices=("auto", "off"), default="auto",
                    help="compare with PyTorch when importable (default) or with NumPy")
    ap.add_argument("--flex", choices=("compiled", "eager", "off"), default=None,
                    help="FlexAttention under torch.compile (default), eager (unfused, "
                         "for checks) or not at all")
    ap.add_argument("--overhead", action="store_true",
                    help="time one call of each Python entry point on a small problem "
                         "(len 128, one head, unless given) instead of the table")
    ap.add_argument("--calls", type=int, default=2000, help="calls per round of --overhead")
    ap.add_argument("--quick", action="store_true",
                    help="a small check run: len 256, 2 heads, dim 16, one repeat, eager "
                         "FlexAttention")
    a = ap.parse_args(argv)
    if a.overhead:
        a.len = a.len or 128
        overhead(a)
        return
    a.len = a.len or 4096
    if a.quick:
        a.len, a.heads, a.dim, a.repeat = 256, 2, 16, 1
        a.flex = a.flex or "eager"
    a.flex = a.flex or "compiled"

    runners = None
    if a.torch == "auto":
        try:
            from ._bench_torch import TorchRunners
        except ImportError:
            pass
        else:
            runners = TorchRunners(a)
    if runners is None:
        runners = NumpyRunners(a)

    print(f"spattn {version} on {isa_selected()}, batch 1, {a.heads} heads, len {a.len}, "
          f"dim {a.dim}, float32, {a.threads or 'all'} thread(s), fastest of {a.repeat} "
          "interleaved rounds")
    if hasattr(runners, "describe"):
        print(runners.describe())
    head = f"{'pattern':<12} {'density':>8} {'spattn ms':>10}"
    for b in runners.baselines:
        head += f" {b + ' ms':>10} {'ratio':>7}"
    head += f" {'max |diff|':>10}"
    print(head)
    print("-" * len(head))
    worst = 0.0
    for name, make in patterns(a.len, a.seed):
        mask = make()
        allowed = (mask.to_dense() if mask is not None
                   else np.ones((a.len, a.len), dtype=bool))
        run = runners.spattn(mask, allowed)
        ours = run()
        bases = [runners.baseline(b, mask, allowed) for b in runners.baselines]
        err = 0.0
        for base in bases:
            if base is not None:  # the first call also compiles FlexAttention's kernel
                err = max(err, runners.diff(ours, base()))
        timed = [run] + [base for base in bases if base is not None]
        times = iter(min(t) for t in interleaved(timed, a.repeat))
        t_sp = next(times)
        row = f"{name:<12} {allowed.mean():>8.4f} {t_sp * 1e3:>10.3f}"
        for base in bases:
            if base is None:
                row += f" {'-':>10} {'-':>7}"
                continue
            t = next(times)
            row += f" {t * 1e3:>10.3f} {t / t_sp:>6.1f}x"
        worst = max(worst, err)
        print(f"{row} {err:>10.2e}", flush=True)
        if mask is not None:
            mask.close()
    if worst > 1e-3:
        raise SystemExit(f"spattn and a baseline disagree by {worst}")


if __name__ == "__main__":
    main()
