"""Where the bundled WSDL and XSD live (inside the wheel, or at the top of a source checkout)."""

from __future__ import annotations

from functools import cache
from pathlib import Path

__all__ = ["bundled_wsdl", "bundled_xsd"]

_HERE = Path(__file__).resolve().parent


@cache
def _wsdl_dir() -> Path:
    for candidate in (_HERE / "wsdl", _HERE.parent / "wsdl"):
        if (candidate / "ecmapi.wsdl").is_file():
            return candidate
    raise FileNotFoundError("the bundled ecmapi WSDL is missing from this installation")


def bundled_wsdl() -> Path:
    """The bundled ecmapi WSDL."""
    return _wsdl_dir() / "ecmapi.wsdl"


def bundled_xsd() -> Path:
    """The schema the bundled WSDL imports."""
    return _wsdl_dir() / "ecmapi.xsd"
