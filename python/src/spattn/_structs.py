"""ctypes mirrors of the public structs, field by field as in the 0.2 contract."""

import ctypes
from ctypes import c_float, c_int, c_size_t, c_ssize_t, c_void_p

# C enums (spattn_isa, spattn_dtype) are int-sized on every ABI the library supports.
c_enum = c_int


class Shape(ctypes.Structure):
    _fields_ = [
        ("batch", c_size_t),
        ("heads_q", c_size_t),
        ("heads_kv", c_size_t),
        ("len_q", c_size_t),
        ("len_k", c_size_t),
        ("dim_qk", c_size_t),
        ("dim_v", c_size_t),
    ]


class Layout(ctypes.Structure):
    _fields_ = [("batch", c_ssize_t), ("head", c_ssize_t), ("token", c_ssize_t)]


class Options(ctypes.Structure):
    _fields_ = [("isa", c_enum), ("num_threads", c_int)]


class Args(ctypes.Structure):
    # A 0.1 library reads only the fields before alibi_slopes, a library without element types
    # those before q_dtype: the later ones are zero ("as in 0.1") unless a caller sets them.
    _fields_ = [
        ("shape", Shape),
        ("q", c_void_p),
        ("q_layout", Layout),
        ("k", c_void_p),
        ("k_layout", Layout),
        ("v", c_void_p),
        ("v_layout", Layout),
        ("o", c_void_p),
        ("o_layout", Layout),
        ("lse", c_void_p),
        ("scale", c_float),
        ("softcap", c_float),
        ("alibi_slopes", c_void_p),
        ("sinks", c_void_p),
        ("pos_offset", c_ssize_t),
        ("q_dtype", c_enum),
        ("kv_dtype", c_enum),
        ("o_dtype", c_enum),
    ]


class Grads(ctypes.Structure):
    _fields_ = [
        ("d_o", c_void_p),
        ("d_o_layout", Layout),
        ("d_q", c_void_p),
        ("d_q_layout", Layout),
        ("d_k", c_void_p),
        ("d_k_layout", Layout),
        ("d_v", c_void_p),
        ("d_v_layout", Layout),
        ("d_sinks", c_void_p),
    ]
