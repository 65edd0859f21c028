"""ISA names and spattn_options."""

import ctypes

from ._lib import has, lib
from ._structs import Options


def _isa_table():
    # The names come from the library itself (spattn_isa_name), so that a new ISA needs no
    # change here: enum values are consecutive from SPATTN_ISA_AUTO = 0.
    table = {}
    for value in range(64):
        name = lib.spattn_isa_name(value).decode()
        if name == "unknown":
            break
        table[name] = value
    return table


ISA_VALUES = _isa_table()
ISA_NAMES = {v: k for k, v in ISA_VALUES.items()}


def isa_value(name):
    if not isinstance(name, str) or name not in ISA_VALUES:
        raise ValueError(f"isa must be one of {sorted(ISA_VALUES)}, not {name!r}")
    return ISA_VALUES[name]


def make_options(threads, isa):
    if isinstance(threads, bool) or not isinstance(threads, int):
        raise TypeError(f"threads must be an int, not {type(threads).__name__}")
    if threads < 0:
        raise ValueError(f"threads must be >= 0 (0 = all cores), not {threads}")
    return Options(isa_value(isa), threads)


def isas():
    """The ISAs this build has kernels for and this CPU can run, best first."""
    n = lib.spattn_isas_compiled(None, 0)
    arr = (ctypes.c_int * n)()
    lib.spattn_isas_compiled(ctypes.cast(arr, ctypes.c_void_p), n)
    return [ISA_NAMES[v] for v in arr if lib.spattn_isa_available(v)]


def _text(p):
    return None if p is None else p.decode()


def isa_status():
    """Every ISA this build has kernels for, best first, as dicts: "name"; "available" (this
    CPU and OS run it); "unavailable" (why not, or None); "auto_skips" (why "auto" passes over
    it although it runs here, or None; always None with a library that predates the reason)."""
    n = lib.spattn_isas_compiled(None, 0)
    arr = (ctypes.c_int * n)()
    lib.spattn_isas_compiled(ctypes.cast(arr, ctypes.c_void_p), n)
    skip = has("spattn_isa_auto_skip_reason")
    return [
        {
            "name": ISA_NAMES[v],
            "available": bool(lib.spattn_isa_available(v)),
            "unavailable": _text(lib.spattn_isa_unavailable_reason(v)),
            "auto_skips": _text(lib.spattn_isa_auto_skip_reason(v)) if skip else None,
        }
        for v in arr
    ]


def isa_selected():
    """The ISA "auto" resolves to, or None when SPATTN_ISA names one that cannot run."""
    v = lib.spattn_isa_selected()
    return None if v == 0 else ISA_NAMES[v]


def cpu_features():
    """The CPU features the library detected, as a list of names."""
    return lib.spattn_cpu_features().decode().split()
