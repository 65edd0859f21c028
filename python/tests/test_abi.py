"""The ctypes mirrors of the public structs against the C compiler's view of the header.

Needs a C compiler and the repository's include/spattn.h (as in a source checkout); every field
the header declares must sit at the offset the binding uses. Fields the header does not have
yet (a library older than the 0.2 contract) are left out of the comparison.
"""

import ctypes
import os
import re
import shutil
import subprocess

import pytest

from spattn import _structs

HEADER_DIR = os.path.join(os.path.dirname(__file__), "..", "..", "include")
HEADER = os.path.join(HEADER_DIR, "spattn.h")
CC = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")

pytestmark = [
    pytest.mark.skipif(CC is None, reason="no C compiler on PATH"),
    pytest.mark.skipif(not os.path.exists(HEADER), reason="include/spattn.h not beside the tests"),
]

STRUCTS = {
    "spattn_shape": _structs.Shape,
    "spattn_layout": _structs.Layout,
    "spattn_options": _structs.Options,
    "spattn_args": _structs.Args,
    "spattn_grads": _structs.Grads,
}


def header_fields(text, struct):
    """The field names of `typedef struct struct { ... } struct;` in the header, or None."""
    m = re.search(r"typedef struct %s \{(.*?)\} %s;" % (struct, struct), text, re.S)
    if not m:
        return None
    body = re.sub(r"/\*.*?\*/", "", m.group(1), flags=re.S)
    names = []
    for decl in body.split(";"):
        decl = decl.strip()
        if decl:
            names += [re.split(r"[\s*]+", n.strip())[-1] for n in decl.split(",")]
    return names


def test_struct_offsets_match_the_header(tmp_path):
    text = open(HEADER).read()
    lines = ["#include <spattn.h>", "#include <stddef.h>", "#include <stdio.h>", "int main(void) {"]
    expected = []
    for cname, mirror in STRUCTS.items():
        fields = header_fields(text, cname)
        if fields is None:
            continue
        ours = [f[0] for f in mirror._fields_]
        assert ours[:len(fields)] == fields, (cname, fields, ours)
        for f in fields:
            lines.append(f'printf("%zu\\n", offsetof({cname}, {f}));')
            expected.append(getattr(mirror, f).offset)
        if len(fields) == len(ours):
            lines.append(f'printf("%zu\\n", sizeof({cname}));')
            expected.append(ctypes.sizeof(mirror))
    lines.append("return 0; }")
    src = tmp_path / "abi.c"
    src.write_text("\n".join(lines))
    exe = tmp_path / "abi"
    subprocess.run([CC, "-std=c11", "-I", HEADER_DIR, str(src), "-o", str(exe)], check=True)
    got = [int(x) for x in subprocess.run([str(exe)], check=True, capture_output=True,
                                          text=True).stdout.split()]
    assert got == expected
