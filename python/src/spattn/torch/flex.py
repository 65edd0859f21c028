"""FlexAttention masks (a BlockMask or a mask_mod) as spattn masks, for a one-line switch.

A BlockMask allows a pair when its block is a full block, or a partial block where mask_mod
allows the pair: both are evaluated here, so block masks built from blocks alone
(BlockMask.from_kv_blocks with the default mask_mod) convert as faithfully as ones that
create_block_mask made from a mask_mod.
"""

import numpy as np
import torch

from ..mask import Mask


def _blocks_dense(num_blocks, indices, n_kv_blocks):
    """[B, H, nq, n_kv_blocks] bool of the blocks the (num_blocks, indices) lists hold."""
    b, h, nq, width = indices.shape
    live = torch.arange(width) < num_blocks[..., None].long()
    # Dead list slots go to one extra column, dropped after the scatter.
    cols = torch.where(live, indices.long(), torch.full_like(indices, n_kv_blocks).long())
    dense = torch.zeros((b, h, nq, n_kv_blocks + 1), dtype=torch.bool)
    dense.scatter_(3, cols, True)
    return dense[..., :n_kv_blocks]


def _to_elements(blocks, bq, bk, len_q, len_k):
    return blocks.repeat_interleave(bq, dim=2).repeat_interleave(bk, dim=3)[
        ..., :len_q, :len_k]


def _masks(allowed, heads):
    """One Mask from a [B, H, Lq, Lk] bool tensor whose B and H are 1, else a list by
    b * H + h (H broadcast to `heads` when it is 1 and batch is not)."""
    b, h = allowed.shape[:2]
    if b == 1 and h == 1:
        return Mask.from_dense(allowed[0, 0].numpy())
    if b > 1 and h == 1:
        if heads is None:
            raise ValueError(f"the mask has batch {b} and one head: pass heads=heads_q so "
                             "that it can be given per (batch, head)")
        allowed = allowed.expand(b, heads, *allowed.shape[2:])
    dense = allowed.reshape(-1, *allowed.shape[2:]).numpy()
    return [Mask.from_dense(np.asarray(d)) for d in dense]


def mask_mod_dense(mask_mod, B, H, Q_LEN, KV_LEN):
    """The mask_mod evaluated on every (b, h, q, kv): a [B, H, Q_LEN, KV_LEN] bool tensor."""
    from torch.nn.attention.flex_attention import create_mask

    return create_mask(mask_mod, B, H, Q_LEN, KV_LEN, device="cpu").bool()


def from_mask_mod(mask_mod, B, H, Q_LEN, KV_LEN, *, heads=None):
    """spattn mask(s) of a FlexAttention mask_mod(b, h, q_idx, kv_idx) -> bool.

    B and H as for create_block_mask (None means 1: the same mask for every batch / head).
    Returns one spattn.Mask when B and H are 1, else a list indexed b * H + h, as
    spattn.torch.attention takes it.
    """
    dense = mask_mod_dense(mask_mod, B or 1, H or 1, Q_LEN, KV_LEN)
    return _masks(dense, heads)


def from_block_mask(block_mask, *, heads=None):
    """spattn mask(s) allowing exactly the pairs a FlexAttention BlockMask allows.

    Full blocks are allowed whole; in partial blocks block_mask.mask_mod decides pair by pair.
    Returns one spattn.Mask when the BlockMask has batch and heads 1, else a list indexed
    b * H + h (pass heads=heads_q for a mask with batch > 1 and one head).
    """
    if block_mask.kv_indices.device.type != "cpu":
        block_mask = block_mask.to("cpu")
    len_q, len_k = block_mask.seq_lengths
    bq, bk = block_mask.BLOCK_SIZE
    n_kv = -(-len_k // bk)
    partial = _blocks_dense(block_mask.kv_num_blocks, block_mask.kv_indices, n_kv)
    b, h = partial.shape[:2]
    allowed = _to_elements(partial, bq, bk, len_q, len_k)
    if block_mask.mask_mod is not None:
        allowed = allowed & mask_mod_dense(block_mask.mask_mod, b, h, len_q, len_k)
    if block_mask.full_kv_num_blocks is not None:
        full = _blocks_dense(block_mask.full_kv_num_blocks, block_mask.full_kv_indices, n_kv)
        allowed = allowed | _to_elements(full, bq, bk, len_q, len_k)
    return _masks(allowed, heads)
