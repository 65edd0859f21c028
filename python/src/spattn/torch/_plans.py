"""Plans of the torch operator, cached by (mask serials, shape, threads, ISA).

The operator's schema names masks by their serials (spattn.Mask.serial), so a plan made by the
forward is found again by the backward, which needs the plan (spattn_plan_backward) and would
otherwise analyse the masks a second time. A plan keeps its masks alive by itself: the backward
still runs when the Mask objects were collected after the forward, as long as the plan is in
the cache.
"""

import collections
import threading

from ..mask import Mask
from ..plan import Plan

CAPACITY = 32

_lock = threading.Lock()
_plans = collections.OrderedDict()


def masks_of(serials):
    masks = []
    for s in serials:
        m = Mask.by_serial(s)
        if m is None:
            raise ValueError(
                f"spattn mask #{s} was collected: keep the Mask objects alive while "
                "spattn.torch.attention and its backward use them")
        masks.append(m)
    return masks


def get(serials, shape, threads, isa):
    """The cached plan for these masks and shape (batch, heads_q, heads_kv, len_q, len_k,
    dim_qk, dim_v), made on a miss."""
    key = (tuple(serials), tuple(shape), threads, isa)
    with _lock:
        plan = _plans.get(key)
        if plan is not None:
            _plans.move_to_end(key)
            return plan
    b, hq, hkv, lq, lk, dqk, dv = shape
    plan = Plan(masks_of(serials) or None, batch=b, heads_q=hq, heads_kv=hkv, len_q=lq,
                len_k=lk, dim_qk=dqk, dim_v=dv, threads=threads, isa=isa)
    with _lock:
        _plans[key] = plan
        while len(_plans) > CAPACITY:
            _plans.popitem(last=False)
    return plan


def clear():
    """Drops every cached plan (their masks are released with them)."""
    with _lock:
        _plans.clear()
