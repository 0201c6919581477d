"""Objects that must start afresh in a child process after ``os.fork()``.

Threads do not survive a fork and a lock held by another thread at that moment stays
held forever in the child. An object registered here gets its ``_after_fork()`` called in
the child, right after the fork, while the child still has a single thread.
"""

from __future__ import annotations

import os
import weakref
from typing import Protocol

__all__ = ["renew_after_fork"]


class _Renewable(Protocol):
    def _after_fork(self) -> None: ...


_OBJECTS: weakref.WeakSet[_Renewable] = weakref.WeakSet()


def renew_after_fork(obj: _Renewable) -> None:
    """Call ``obj._after_fork()`` in every child process forked from now on."""
    _OBJECTS.add(obj)


def _in_child() -> None:
    for obj in list(_OBJECTS):
        obj._after_fork()


os.register_at_fork(after_in_child=_in_child)
