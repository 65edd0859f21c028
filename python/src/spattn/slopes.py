"""The standard ALiBi slopes (spattn_alibi_slopes)."""

import numpy as np

from ._lib import check, lib


def alibi_slopes(heads):
    """The ALiBi slopes of Press et al. for `heads` heads, float32, for attention(alibi_slopes=)."""
    out = np.empty(max(int(heads), 1), dtype=np.float32)
    check(lib.spattn_alibi_slopes(int(heads), out.ctypes.data), "spattn_alibi_slopes")
    return out
