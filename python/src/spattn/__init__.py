"""spattn: masked sparse softmax-attention on CPUs, from NumPy.

    o = spattn.attention(q, k, v, spattn.Mask.causal(1024))

q, k, v are [batch, heads, tokens, dim] arrays. See spattn.attention, spattn.Mask,
spattn.Plan, spattn.probs and spattn.merge; errors of the library raise spattn.Error.
spattn.empty and spattn.aligned give arrays on 64-byte boundaries, which sparse masks read
fastest.
"""

from ._aligned import aligned, empty
from ._errors import Error
from ._lib import has as _has
from ._lib import has_dtypes
from ._lib import version as _version
from ._options import cpu_features, isa_selected, isa_status, isas
from .attention import attention, reference_attention
from .mask import Mask
from .merge import merge
from .plan import Plan, probs, reference_backward
from .probs import Probs
from .slopes import alibi_slopes

version = _version()
__version__ = version

__all__ = [
    "Error",
    "Mask",
    "Plan",
    "Probs",
    "alibi_slopes",
    "aligned",
    "attention",
    "cpu_features",
    "empty",
    "has_backward",
    "has_dtypes",
    "isa_selected",
    "isa_status",
    "isas",
    "merge",
    "probs",
    "reference_attention",
    "reference_backward",
    "version",
]


def has_backward():
    """Whether the loaded library exports spattn_plan_backward (0.2 backward)."""
    return _has("spattn_plan_backward")
