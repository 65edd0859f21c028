"""The PyTorch side of python -m spattn.bench: spattn.torch, SDPA and FlexAttention."""

import warnings

import torch
import torch.nn.functional as F

from . import torch as st


class TorchRunners:
    """spattn.torch.attention beside SDPA (dense bool mask) and FlexAttention (BlockMask)."""

    def __init__(self, a):
        if a.threads:
            torch.set_num_threads(a.threads)
        g = torch.Generator().manual_seed(a.seed)
        self.q, self.k, self.v = (torch.randn(1, a.heads, a.len, a.dim, generator=g)
                                  for _ in range(3))
        self.n = a.len
        self.flex_mode = a.flex
        self.baselines = ("sdpa",) + (("flex",) if a.flex != "off" else ())
        self._flex = None
        # One mask_mod reading one tensor whose contents change by pattern: torch.compile
        # then compiles FlexAttention once for every pattern (same shapes, same function).
        self._allowed = torch.zeros((a.len, a.len), dtype=torch.bool)

    def describe(self):
        flex = {"compiled": "torch.compile(flex_attention)", "eager": "eager flex_attention",
                "off": None}[self.flex_mode]
        return (f"torch {torch.__version__}, {torch.get_num_threads()} thread(s): sdpa = "
                "scaled_dot_product_attention with a dense bool mask"
                + (f", flex = {flex} with a 64x64 BlockMask" if flex else ""))

    def spattn(self, mask, allowed):
        q, k, v = self.q, self.k, self.v
        return lambda: st.attention(q, k, v, mask)

    def baseline(self, name, mask, allowed):
        q, k, v = self.q, self.k, self.v
        dense = torch.from_numpy(allowed)
        if name == "sdpa":
            return lambda: F.scaled_dot_product_attention(q, k, v, attn_mask=dense)
        from torch.nn.attention.flex_attention import create_block_mask, flex_attention

        self._allowed.copy_(dense)
        table = self._allowed

        def mask_mod(b, h, qi, ki):
            return table[qi, ki]

        bm = create_block_mask(mask_mod, None, None, self.n, self.n, device="cpu",
                               BLOCK_SIZE=64)
        if self._flex is None:
            if self.flex_mode == "compiled":
                self._flex = torch.compile(flex_attention, dynamic=False)
            else:
                # The unfused path is what --flex eager asks for: no advice needed.
                warnings.filterwarnings("ignore", "flex_attention called without torch.compile")
                self._flex = flex_attention
        fn = self._flex
        return lambda: fn(q, k, v, block_mask=bm)

    @staticmethod
    def diff(a, b):
        return (a.double() - b.double()).abs().max().item()
