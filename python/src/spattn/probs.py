"""spattn.Probs: the attention probabilities of the allowed pairs, head by head."""

import numpy as np

from ._lib import lib
from .mask import csr_of


class Probs:
    """What Plan.probs / spattn.probs return.

    values: float32, every (batch, head) after the other (b * heads_q + h), each in the CSR
    order of its mask (rows in order, keys increasing); None when not asked for.
    col_sums: [B, Hq, Lk] float32 per-key sums over the rows, or None.
    head(b, h) gives (row_ptr, col_idx, values) of one head; to_dense() the whole
    [B, Hq, Lq, Lk] array (0 for pairs that are not allowed), for small problems.
    """

    def __init__(self, plan, values, col_sums):
        self._plan = plan  # kept alive: its masks say where each value belongs
        self.values = values
        self.col_sums = col_sums

    def offset(self, b, h):
        """Index in values of the first probability of (b, h)."""
        b_, hq = self._plan.shape[:2]
        if not (0 <= b < b_ and 0 <= h < hq):
            raise IndexError(f"(b, h) = ({b}, {h}) outside ({b_}, {hq})")
        return lib.spattn_plan_probs_offset(self._plan.ptr, b, h)

    def head(self, b, h):
        if self.values is None:
            raise ValueError("the probabilities were not computed (values=False)")
        start = self.offset(b, h)
        row_ptr, col_idx = csr_of(lib.spattn_plan_mask(self._plan.ptr, b, h))
        return row_ptr, col_idx, self.values[start:start + col_idx.size]

    def to_dense(self):
        batch, hq, _, lq, lk = self._plan.shape[:5]
        out = np.zeros((batch, hq, lq, lk), dtype=np.float32)
        for b in range(batch):
            for h in range(hq):
                row_ptr, col_idx, vals = self.head(b, h)
                rows = np.repeat(np.arange(lq), np.diff(row_ptr))
                out[b, h, rows, col_idx] = vals
        return out
