"""Loads libspattn.so and declares the C functions the package calls.

The library shipped in the package is used unless the environment variable SPATTN_LIBRARY
names another file (a build tree's libspattn.so, say). Functions of later library versions
(element types, backward) are declared only when the loaded library exports them; `has`
tells, and the callers raise NotImplementedError naming the missing symbol.
"""

import ctypes
import functools
import os
from ctypes import POINTER, c_char_p, c_int, c_size_t, c_uint64, c_void_p

from ._errors import Error
from ._structs import Args, Grads, Layout, Options, Shape, c_enum

_path = os.environ.get("SPATTN_LIBRARY") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "libspattn.so"
)
lib = ctypes.CDLL(_path)
path = _path

_status = c_int
_mask_out = POINTER(c_void_p)
_size_p = POINTER(c_size_t)

# name: (restype, argtypes). Pointers to arrays are passed as c_void_p (array.ctypes.data).
_REQUIRED = {
    "spattn_status_string": (c_char_p, [_status]),
    "spattn_version": (c_char_p, []),
    "spattn_isa_available": (c_int, [c_enum]),
    "spattn_isa_selected": (c_enum, []),
    "spattn_isa_name": (c_char_p, [c_enum]),
    "spattn_isa_unavailable_reason": (c_char_p, [c_enum]),
    "spattn_isas_compiled": (c_size_t, [c_void_p, c_size_t]),
    "spattn_cpu_features": (c_char_p, []),
    "spattn_mask_causal": (_status, [c_size_t, c_size_t, _mask_out]),
    "spattn_mask_window": (_status, [c_size_t, c_size_t, c_size_t, c_size_t, _mask_out]),
    "spattn_mask_from_dense": (_status, [c_size_t, c_size_t, c_void_p, c_size_t, _mask_out]),
    "spattn_mask_from_csr": (_status, [c_size_t, c_size_t, c_void_p, c_void_p, _mask_out]),
    "spattn_mask_from_blocks": (
        _status,
        [c_size_t, c_size_t, c_size_t, c_size_t, c_void_p, _mask_out],
    ),
    "spattn_mask_and": (_status, [c_void_p, c_void_p, _mask_out]),
    "spattn_mask_or": (_status, [c_void_p, c_void_p, _mask_out]),
    "spattn_mask_slice": (
        _status,
        [c_void_p, c_size_t, c_size_t, c_size_t, c_size_t, _mask_out],
    ),
    "spattn_mask_len_q": (c_size_t, [c_void_p]),
    "spattn_mask_len_k": (c_size_t, [c_void_p]),
    "spattn_mask_nnz": (c_uint64, [c_void_p]),
    "spattn_mask_to_dense": (_status, [c_void_p, c_void_p, c_size_t]),
    "spattn_mask_to_csr": (_status, [c_void_p, c_void_p, c_void_p]),
    "spattn_mask_free": (None, [c_void_p]),
    "spattn_mask_strided": (_status, [c_size_t, c_size_t, c_size_t, _mask_out]),
    "spattn_mask_fixed": (_status, [c_size_t, c_size_t, c_size_t, c_size_t, _mask_out]),
    "spattn_mask_longformer": (
        _status,
        [c_size_t, c_size_t, c_size_t, c_size_t, c_void_p, c_size_t, _mask_out],
    ),
    "spattn_mask_bigbird": (
        _status,
        [c_size_t, c_size_t, c_size_t, c_size_t, c_size_t, c_size_t, c_uint64, _mask_out],
    ),
    "spattn_mask_dilated": (
        _status,
        [c_size_t, c_size_t, c_size_t, c_size_t, c_size_t, _mask_out],
    ),
    "spattn_mask_streaming": (_status, [c_size_t, c_size_t, c_size_t, c_size_t, _mask_out]),
    "spattn_mask_documents": (_status, [c_void_p, c_size_t, c_int, _mask_out]),
    "spattn_mask_documents_kv": (_status, [c_void_p, c_void_p, c_size_t, c_int, _mask_out]),
    "spattn_mask_from_fn": (_status, [c_size_t, c_size_t, c_void_p, c_void_p, _mask_out]),
    "spattn_alibi_slopes": (_status, [c_size_t, c_void_p]),
    "spattn_forward": (_status, [POINTER(Args), c_void_p, c_size_t, POINTER(Options)]),
    "spattn_merge": (
        _status,
        [c_size_t, c_size_t, c_size_t, c_void_p, c_void_p, c_void_p, c_void_p],
    ),
    "spattn_plan_create": (
        _status,
        [POINTER(Shape), c_void_p, c_size_t, POINTER(Options), _mask_out],
    ),
    "spattn_plan_execute": (_status, [c_void_p, POINTER(Args)]),
    "spattn_plan_free": (None, [c_void_p]),
    "spattn_plan_isa": (c_enum, [c_void_p]),
    "spattn_plan_threads": (c_int, [c_void_p]),
    "spattn_plan_probs_len": (c_uint64, [c_void_p]),
    "spattn_plan_probs_offset": (c_uint64, [c_void_p, c_size_t, c_size_t]),
    "spattn_plan_mask": (c_void_p, [c_void_p, c_size_t, c_size_t]),
    "spattn_probs": (_status, [c_void_p, POINTER(Args), c_void_p, c_void_p]),
    "spattn_reference_forward": (_status, [POINTER(Args), c_void_p, c_size_t]),
    "spattn_layout_bhtd": (Layout, [c_size_t, c_size_t, c_size_t]),
}

# Symbols of the 0.2 element types and backward, and later additions; absent from libraries
# built without them (or before them).
_OPTIONAL = {
    "spattn_isa_auto_skip_reason": (c_char_p, [c_enum]),
    "spattn_f32_to_bf16": (None, [c_void_p, c_void_p, c_size_t]),
    "spattn_bf16_to_f32": (None, [c_void_p, c_void_p, c_size_t]),
    "spattn_f32_to_f16": (None, [c_void_p, c_void_p, c_size_t]),
    "spattn_f16_to_f32": (None, [c_void_p, c_void_p, c_size_t]),
    "spattn_plan_backward": (_status, [c_void_p, POINTER(Args), POINTER(Grads)]),
    "spattn_reference_backward": (
        _status,
        [POINTER(Args), c_void_p, c_size_t, POINTER(Grads)],
    ),
}


def _declare(name, restype, argtypes):
    fn = getattr(lib, name)
    fn.restype = restype
    fn.argtypes = argtypes


for _name, (_res, _args) in _REQUIRED.items():
    _declare(_name, _res, _args)
for _name, (_res, _args) in _OPTIONAL.items():
    if hasattr(lib, _name):
        _declare(_name, _res, _args)


def has(name):
    """Whether the loaded library exports the function `name`."""
    return hasattr(lib, name)


def require(name, feature):
    """Raises NotImplementedError when the loaded library lacks `name`."""
    if not has(name):
        raise NotImplementedError(
            f"{feature} needs {name}, which the loaded libspattn ({path}, version "
            f"{version()}) does not export"
        )


def version():
    return lib.spattn_version().decode()


def check(status, function):
    """Raises spattn.Error for a status other than SPATTN_OK."""
    if status != 0:
        raise Error(status, lib.spattn_status_string(status).decode(), function)


@functools.lru_cache(maxsize=None)
def has_dtypes():
    """Whether the library reads the element-type fields of spattn_args (0.2 and later)."""
    return has("spattn_f32_to_bf16") and tuple(int(x) for x in version().split(".")[:2]) >= (0, 2)
