"""spattn for PyTorch: sparse attention on CPU tensors, a torch.library operator.

    import spattn.torch as st
    mask = st.from_block_mask(block_mask)          # or a spattn.Mask built directly
    o = st.attention(q, k, v, mask)                # in place of flex_attention(q, k, v, ...)

spattn.torch.attention differentiates (float32) through spattn_plan_backward and compiles
with torch.compile as one opaque node.
"""

try:
    import torch as _torch  # noqa: F401
except ImportError as e:  # pragma: no cover - the message is the point
    raise ImportError("spattn.torch needs PyTorch (pip install torch)") from e

from . import _plans
from ._api import attention
from .flex import from_block_mask, from_mask_mod

clear_plan_cache = _plans.clear

__all__ = ["attention", "clear_plan_cache", "from_block_mask", "from_mask_mod"]
