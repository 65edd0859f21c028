"""spattn.isas, isa_status and isa_selected against each other."""

import os

import spattn


def test_isa_status_agrees_with_isas_and_auto():
    st = spattn.isa_status()
    assert st[-1]["name"] == "scalar" and st[-1]["available"]
    assert [s["name"] for s in st if s["available"]] == spattn.isas()
    for s in st:
        assert (s["unavailable"] is None) == s["available"], s
        assert isinstance(s["unavailable"] or "", str) and isinstance(s["auto_skips"] or "", str)
        if not s["available"]:
            assert s["auto_skips"] is None and s["unavailable"], s
    if os.environ.get("SPATTN_ISA") in (None, "", "auto"):
        first = next(s["name"] for s in st if s["available"] and s["auto_skips"] is None)
        assert spattn.isa_selected() == first


def test_isa_status_reasons_name_what_is_missing():
    for s in spattn.isa_status():
        if s["auto_skips"] is not None:
            # the one rule so far: vdpbf16ps slower than float FMAs
            assert s["name"] == "avx512bf16" and "vdpbf16ps" in s["auto_skips"], s
