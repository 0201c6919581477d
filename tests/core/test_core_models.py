"""The public models are values: frozen, hashable, picklable, with read-only attributes."""

from __future__ import annotations

import pickle

import pytest

from engage_soap import Attachment, Contact


def test_contact_is_hashable_frozen_and_picklable() -> None:
    a = Contact(33457, "j.mcexample@example.com", attributes={"FIRSTNAME": "J."})
    b = Contact(33457, "j.mcexample@example.com", attributes={"FIRSTNAME": "J."})
    assert a == b and len({a, b}) == 1
    assert pickle.loads(pickle.dumps(a)) == a
    with pytest.raises(TypeError):
        a.attributes["FIRSTNAME"] = "x"  # type: ignore[index]
    with pytest.raises(AttributeError):
        a.id = 1  # type: ignore[misc]


def test_attachment_repr_hides_content() -> None:
    att = Attachment("invoice.pdf", b"secret-bytes" * 100)
    assert "secret-bytes" not in repr(att) and "1200 bytes" in repr(att)
    assert att.content_type == "application/pdf"
