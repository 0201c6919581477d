"""XML equality for recorded envelopes: C14N 2.0 with text stripped and prefixes rewritten."""

from __future__ import annotations

import difflib
from xml.etree.ElementTree import canonicalize


def canonical(xml: bytes | str) -> str:
    """``xml`` in C14N 2.0 form: whitespace-only text dropped, prefixes renamed n0, n1..."""
    if isinstance(xml, bytes):
        xml = xml.decode("utf-8")
    return canonicalize(xml, strip_text=True, rewrite_prefixes=True)


def _pretty(c14n: str) -> str:
    return c14n.replace("><", ">\n<")


def assert_xml_equal(actual: bytes | str, expected: bytes | str) -> None:
    """Fail unless both documents are equal after canonicalisation; show both and a diff."""
    got, want = canonical(actual), canonical(expected)
    if got != want:
        diff = "\n".join(difflib.unified_diff(_pretty(want).splitlines(),
                                              _pretty(got).splitlines(),
                                              "expected", "actual", lineterm=""))
        raise AssertionError(f"XML differs after C14N 2.0\n--- expected:\n{want}\n"
                             f"--- actual:\n{got}\n--- diff:\n{diff}")
