"""CPU tensors as NumPy views of the same memory, for the NumPy binding's calls."""

import numpy as np
import torch

try:
    import ml_dtypes

    _BF16 = np.dtype(ml_dtypes.bfloat16)
except ImportError:
    _BF16 = None

DTYPES = (torch.float32, torch.float16, torch.bfloat16)


def check(t, what):
    """TypeError / ValueError unless t is a 4-D CPU tensor the library reads as it is."""
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{what} must be a torch.Tensor, not {type(t).__name__}")
    if not t.is_cpu:  # (t.device builds an object: a few times slower)
        raise ValueError(f"{what} is on {t.device}: spattn runs on CPU tensors only")
    if t.dtype not in DTYPES:
        raise TypeError(f"{what} must be float32, float16 or bfloat16, not {t.dtype}")
    if t.dim() != 4:
        raise ValueError(f"{what} must be [batch, heads, tokens, dim], has shape "
                         f"{tuple(t.shape)}")
    if t.numel() == 0:
        raise ValueError(f"{what} is empty (shape {tuple(t.shape)})")
    if t.shape[3] > 1 and t.stride(3) != 1:
        raise ValueError(
            f"{what}: the last (dim) axis must be contiguous, has stride {t.stride(3)}; pass "
            f"{what}.contiguous() if a copy is meant")


def check_problem(q, k, v):
    """check() for each of q, k, v, and their shapes and types against each other."""
    for t, name in ((q, "q"), (k, "k"), (v, "v")):
        check(t, name)
    b, hq = q.shape[0], q.shape[1]
    if k.shape[0] != b or v.shape[0] != b:
        raise ValueError(f"q has batch {b}, k {k.shape[0]}, v {v.shape[0]} (expand() shares "
                         "one K/V without a copy)")
    if k.shape[3] != q.shape[3]:
        raise ValueError(f"q has dim {q.shape[3]}, k {k.shape[3]}")
    if v.shape[:3] != k.shape[:3]:
        raise ValueError(f"v has shape {tuple(v.shape)}, k {tuple(k.shape)}: batch, heads and "
                         "length must match")
    if hq % k.shape[1]:
        raise ValueError(f"heads_q = {hq} is not a multiple of heads_kv = {k.shape[1]}")
    if k.dtype != v.dtype:
        raise TypeError(f"k and v must have one dtype, have {k.dtype} and {v.dtype}")


def numpy(t):
    """A NumPy array over t's memory (no copy); bfloat16 through ml_dtypes."""
    if t.dtype == torch.bfloat16:
        if _BF16 is None:
            raise TypeError("bfloat16 tensors need the ml_dtypes package (pip install "
                            "ml_dtypes)")
        return t.view(torch.int16).numpy().view(_BF16)
    return t.numpy()


def head_floats(x):
    """An optional per-head float tensor as a float32 NumPy array."""
    return None if x is None else x.detach().to(torch.float32).contiguous().numpy()
