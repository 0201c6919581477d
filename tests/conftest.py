"""Fixtures shared by the suites."""

from __future__ import annotations

import shutil
import subprocess

import pytest


def _seconds(item: pytest.Item) -> float:
    mark = item.get_closest_marker("long")
    return float(mark.args[0]) if mark is not None else 0.0


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Modules marked ``long(seconds)`` first, longest first, the rest in their order:
    ``make test`` hands whole modules to its workers in this order, so the long ones start
    at once and the workers end together (xdist's own order, by test count, would start
    them last)."""
    items.sort(key=lambda item: -_seconds(item))


@pytest.fixture(scope="session")
def cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """A self-signed certificate for 127.0.0.1 and localhost: (cert.pem, key.pem)."""
    assert shutil.which("openssl") is not None, "the TLS tests need openssl"
    d = tmp_path_factory.mktemp("tls")
    key, crt = str(d / "key.pem"), str(d / "cert.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
                    "-out", crt, "-days", "2", "-subj", "/CN=127.0.0.1", "-addext",
                    "subjectAltName=IP:127.0.0.1,DNS:localhost"], check=True,
                   capture_output=True)
    return crt, key
