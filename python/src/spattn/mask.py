"""spattn.Mask: which (query, key) pairs of one len_q x len_k head are allowed."""

import ctypes
import itertools
import weakref

import numpy as np

from ._lib import check, lib

_SIZE_T = np.dtype(np.uintp)  # size_t
_INT32_MAX = np.iinfo(np.int32).max


def _size_array(x, what):
    arr = np.asarray(x)
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"{what} must hold integers, not {arr.dtype}")
    if arr.size and arr.min() < 0:
        raise ValueError(f"{what} must be non-negative")
    return np.ascontiguousarray(arr.reshape(-1), dtype=_SIZE_T)


def _nonneg(name, x):
    if isinstance(x, bool) or not isinstance(x, (int, np.integer)):
        raise TypeError(f"{name} must be an int, not {type(x).__name__}")
    if x < 0:
        raise ValueError(f"{name} must be >= 0, not {x}")
    return int(x)


def csr_of(ptr):
    """(row_ptr int64 [len_q + 1], col_idx int32 [nnz]) of a mask pointer."""
    len_q = lib.spattn_mask_len_q(ptr)
    nnz = lib.spattn_mask_nnz(ptr)
    row_ptr = np.empty(len_q + 1, dtype=np.int64)
    col_idx = np.empty(max(nnz, 1), dtype=np.int32)
    check(lib.spattn_mask_to_csr(ptr, row_ptr.ctypes.data, col_idx.ctypes.data),
          "spattn_mask_to_csr")
    return row_ptr, col_idx[:nnz]


class Mask:
    """An immutable mask of one len_q x len_k head, held by the library.

    Build one with a class method (causal, window, strided, ...). Masks combine with ``&`` and
    ``|``; ``m.slice(q0, q1, k0, k1)`` or ``m[q0:q1, k0:k1]`` is a rectangle of m. The C mask
    is released when the object is collected, or at once by ``close()`` / ``with``.
    """

    __slots__ = ("_ptr", "_serial", "__weakref__")

    def __init__(self, _ptr):
        # Internal: masks are made by the class methods.
        self._ptr = _ptr
        # A number never reused, unlike the C pointer: spattn.torch names masks by it in its
        # operator's schema and caches plans under it.
        self._serial = next(_SERIALS)
        _LIVE[self._serial] = self

    @classmethod
    def _make(cls, fn_name, *args):
        out = ctypes.c_void_p()
        check(getattr(lib, fn_name)(*args, ctypes.byref(out)), fn_name)
        return cls(out.value)

    # --- builders -------------------------------------------------------------------------

    @classmethod
    def causal(cls, len_q, len_k=None):
        """Bottom-right aligned causal: query i sees key j <= i + (len_k - len_q)."""
        len_k = len_q if len_k is None else len_k
        return cls._make("spattn_mask_causal", _nonneg("len_q", len_q), _nonneg("len_k", len_k))

    @classmethod
    def window(cls, len_q, len_k, left, right=0):
        """Band, bottom-right aligned: keys [i' - left, i' + right]."""
        return cls._make("spattn_mask_window", _nonneg("len_q", len_q), _nonneg("len_k", len_k),
                         _nonneg("left", left), _nonneg("right", right))

    @classmethod
    def strided(cls, len_q, len_k, stride):
        """Sparse Transformer strided: j <= i' with (i' - j) < stride or (i' - j) % stride == 0."""
        return cls._make("spattn_mask_strided", _nonneg("len_q", len_q),
                         _nonneg("len_k", len_k), _nonneg("stride", stride))

    @classmethod
    def fixed(cls, len_q, len_k, stride, summary):
        """Sparse Transformer fixed: j <= i' in i's block or in a block's last `summary` keys."""
        return cls._make("spattn_mask_fixed", _nonneg("len_q", len_q), _nonneg("len_k", len_k),
                         _nonneg("stride", stride), _nonneg("summary", summary))

    @classmethod
    def longformer(cls, len_q, len_k, left, right, global_tokens=()):
        """Band [i' - left, i' + right] plus global key positions (seen by and seeing all)."""
        g = _size_array(global_tokens, "global_tokens")
        return cls._make("spattn_mask_longformer", _nonneg("len_q", len_q),
                         _nonneg("len_k", len_k), _nonneg("left", left),
                         _nonneg("right", right), g.ctypes.data if g.size else None, g.size)

    @classmethod
    def bigbird(cls, len_q, len_k, block, window, global_blocks, random, seed=0):
        """BigBird in blocks: a window of blocks, global blocks and seeded random blocks."""
        return cls._make("spattn_mask_bigbird", _nonneg("len_q", len_q),
                         _nonneg("len_k", len_k), _nonneg("block", block),
                         _nonneg("window", window), _nonneg("global_blocks", global_blocks),
                         _nonneg("random", random), _nonneg("seed", seed))

    @classmethod
    def dilated(cls, len_q, len_k, left, right, dilation):
        """Keys i' - t * dilation (t = 0..left) and i' + t * dilation (t = 1..right)."""
        return cls._make("spattn_mask_dilated", _nonneg("len_q", len_q),
                         _nonneg("len_k", len_k), _nonneg("left", left),
                         _nonneg("right", right), _nonneg("dilation", dilation))

    @classmethod
    def streaming(cls, len_q, len_k, n_sink, window):
        """StreamingLLM: the first n_sink keys plus the `window` most recent up to i'."""
        return cls._make("spattn_mask_streaming", _nonneg("len_q", len_q),
                         _nonneg("len_k", len_k), _nonneg("n_sink", n_sink),
                         _nonneg("window", window))

    @classmethod
    def documents(cls, doc_lens, causal=False, k_lens=None):
        """Packed sequences: each document attends only to itself (causally if asked).

        With k_lens, document d has doc_lens[d] queries against k_lens[d] keys
        (spattn_mask_documents_kv), bottom-right aligned within the document.
        """
        q = _size_array(doc_lens, "doc_lens")
        if k_lens is None:
            return cls._make("spattn_mask_documents", q.ctypes.data if q.size else None, q.size,
                             int(bool(causal)))
        k = _size_array(k_lens, "k_lens")
        if k.size != q.size:
            raise ValueError(f"doc_lens has {q.size} documents, k_lens {k.size}")
        return cls._make("spattn_mask_documents_kv", q.ctypes.data if q.size else None,
                         k.ctypes.data if k.size else None, q.size, int(bool(causal)))

    @classmethod
    def from_dense(cls, allowed):
        """From a 2-D array: allowed[i, j] true (nonzero) allows (i, j)."""
        a = np.asarray(allowed)
        if a.ndim != 2:
            raise ValueError(f"allowed must be 2-D, has shape {a.shape}")
        a = np.ascontiguousarray(a != 0).view(np.uint8)
        return cls._make("spattn_mask_from_dense", a.shape[0], a.shape[1], a.ctypes.data,
                         a.shape[1])

    @classmethod
    def from_csr(cls, row_ptr, col_idx, len_k):
        """Row i allows col_idx[row_ptr[i]:row_ptr[i+1]] (strictly increasing, < len_k)."""
        rp = np.asarray(row_ptr)
        ci = np.asarray(col_idx)
        for name, arr in (("row_ptr", rp), ("col_idx", ci)):
            if arr.ndim != 1:
                raise ValueError(f"{name} must be 1-D, has shape {arr.shape}")
            if arr.size and not np.issubdtype(arr.dtype, np.integer):
                raise TypeError(f"{name} must hold integers, not {arr.dtype}")
        if rp.size < 2:
            raise ValueError("row_ptr needs len_q + 1 >= 2 entries")
        if ci.size and (ci.min() < 0 or ci.max() > _INT32_MAX):
            raise ValueError("col_idx holds a value outside [0, 2^31)")
        rp = np.ascontiguousarray(rp, dtype=np.int64)
        ci = np.ascontiguousarray(ci, dtype=np.int32)
        if rp[-1] > ci.size:
            raise ValueError(f"row_ptr[-1] = {rp[-1]} but col_idx has {ci.size} entries")
        return cls._make("spattn_mask_from_csr", rp.size - 1, _nonneg("len_k", len_k),
                         rp.ctypes.data, ci.ctypes.data if ci.size else None)

    @classmethod
    def from_blocks(cls, layout, block_q, block_k=None, len_q=None, len_k=None):
        """Block layout [nbq, nbk]: a true entry allows its whole block_q x block_k block.

        len_q and len_k default to nbq * block_q and nbk * block_k (edge blocks are clipped
        when they are shorter).
        """
        block_k = block_q if block_k is None else block_k
        lay = np.asarray(layout)
        if lay.ndim != 2:
            raise ValueError(f"layout must be 2-D, has shape {lay.shape}")
        bq, bk = _nonneg("block_q", block_q), _nonneg("block_k", block_k)
        len_q = lay.shape[0] * bq if len_q is None else _nonneg("len_q", len_q)
        len_k = lay.shape[1] * bk if len_k is None else _nonneg("len_k", len_k)
        if bq and bk and lay.shape != (-(-len_q // bq), -(-len_k // bk)):
            raise ValueError(
                f"layout has shape {lay.shape}, lengths {len_q} x {len_k} in blocks of "
                f"{bq} x {bk} need {(-(-len_q // bq), -(-len_k // bk))}"
            )
        lay = np.ascontiguousarray(lay != 0).view(np.uint8)
        return cls._make("spattn_mask_from_blocks", len_q, len_k, bq, bk, lay.ctypes.data)

    @classmethod
    def from_fn(cls, allow, len_q, len_k):
        """From a Python predicate allow(i, j) -> bool, called once per pair (slow)."""
        failure = []

        def call(i, j, _ctx):
            if failure:
                return 0
            try:
                return 1 if allow(i, j) else 0
            except BaseException as e:  # re-raised below; C cannot unwind through it
                failure.append(e)
                return 0

        cb = _ALLOW_FN(call)
        m = cls._make("spattn_mask_from_fn", _nonneg("len_q", len_q), _nonneg("len_k", len_k),
                      ctypes.cast(cb, ctypes.c_void_p), None)
        if failure:
            m.close()
            raise failure[0]
        return m

    # --- combination ----------------------------------------------------------------------

    def _combine(self, other, fn_name):
        if not isinstance(other, Mask):
            return NotImplemented
        return Mask._make(fn_name, self.ptr, other.ptr)

    def __and__(self, other):
        return self._combine(other, "spattn_mask_and")

    def __or__(self, other):
        return self._combine(other, "spattn_mask_or")

    def slice(self, q0, q1, k0, k1):
        """Rows [q0, q1) and keys [k0, k1) of this mask as a (q1-q0) x (k1-k0) mask."""
        return Mask._make("spattn_mask_slice", self.ptr, _nonneg("q0", q0), _nonneg("q1", q1),
                          _nonneg("k0", k0), _nonneg("k1", k1))

    def __getitem__(self, key):
        if not (isinstance(key, tuple) and len(key) == 2
                and all(isinstance(s, slice) for s in key)):
            raise TypeError("a mask is sliced as m[q0:q1, k0:k1]")
        bounds = []
        for s, n in zip(key, self.shape):
            start, stop, step = s.indices(n)
            if step != 1:
                raise ValueError("mask slices take no step")
            bounds += [start, stop]
        return self.slice(*bounds)

    @staticmethod
    def by_serial(serial):
        """The live mask whose `serial` this is, or None once it was collected."""
        return _LIVE.get(serial)

    # --- queries --------------------------------------------------------------------------

    @property
    def ptr(self):
        """The spattn_mask * (as an int) for C calls; ValueError once closed."""
        if self._ptr is None:
            raise ValueError("the mask is closed")
        return self._ptr

    @property
    def serial(self):
        """A number naming this mask for the life of the process (never reused)."""
        return self._serial

    @property
    def len_q(self):
        return lib.spattn_mask_len_q(self.ptr)

    @property
    def len_k(self):
        return lib.spattn_mask_len_k(self.ptr)

    @property
    def shape(self):
        return (self.len_q, self.len_k)

    @property
    def nnz(self):
        """The number of allowed pairs."""
        return lib.spattn_mask_nnz(self.ptr)

    def to_dense(self):
        """A len_q x len_k bool array, True where a pair is allowed."""
        out = np.empty(self.shape, dtype=np.uint8)
        check(lib.spattn_mask_to_dense(self.ptr, out.ctypes.data, out.shape[1]),
              "spattn_mask_to_dense")
        return out.view(np.bool_)

    def to_csr(self):
        """(row_ptr int64 [len_q + 1], col_idx int32 [nnz]), keys increasing in a row."""
        return csr_of(self.ptr)

    # --- lifetime -------------------------------------------------------------------------

    def close(self):
        """Releases the C mask now (plans made from it keep what they need)."""
        ptr, self._ptr = self._ptr, None
        if ptr is not None:
            lib.spattn_mask_free(ptr)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        if getattr(self, "_ptr", None) is not None and lib is not None:
            self.close()

    def __repr__(self):
        if self._ptr is None:
            return "<spattn.Mask closed>"
        return f"<spattn.Mask {self.len_q} x {self.len_k}, {self.nnz} allowed pairs>"


_SERIALS = itertools.count(1)
_LIVE = weakref.WeakValueDictionary()
_ALLOW_FN = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_size_t, ctypes.c_size_t, ctypes.c_void_p)
