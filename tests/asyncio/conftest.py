"""The asyncio suite reuses the recorded-envelope table of tests/core (not a copy)."""

from __future__ import annotations

import sys
from pathlib import Path

_CORE = str(Path(__file__).resolve().parents[1] / "core")  # recorded, test_core_errors
if _CORE not in sys.path:
    sys.path.append(_CORE)
