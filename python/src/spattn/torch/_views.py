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
    if t.device.type != "cpu":
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
