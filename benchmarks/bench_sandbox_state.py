"""Cost of one sandbox send (SandboxState.record_send with a state file) as the outbox grows.

    python benchmarks/bench_sandbox_state.py [10 1000 10000]

For each outbox size N: a state file holding N sends, then the mean time of 20 more sends.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from engage_soap.sandbox.state import SandboxState


def cost_of_one_send(entries: int, folder: Path) -> float:
    state = SandboxState(folder / f"state-{entries}.json")
    message = state.messages[23541]
    contact = state.contacts[33457]
    sample = state.record_send(message, contact, [("FIRSTNAME", "Jo")], [])
    with state.lock:
        state.outbox.extend([sample] * (entries - 1))  # filled in memory, then saved once
        state.save()
    state = SandboxState(folder / f"state-{entries}.json")  # as a restarted sandbox
    assert len(state.outbox) == entries
    started = time.perf_counter()
    for _ in range(20):
        state.record_send(message, contact, [("FIRSTNAME", "Jo")], [])
    return (time.perf_counter() - started) / 20


def main() -> None:
    sizes = [int(a) for a in sys.argv[1:]] or [10, 1000, 10000]
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            print(f"outbox {n:>6}: one send {cost_of_one_send(n, Path(tmp)) * 1000:8.2f} ms")


if __name__ == "__main__":
    main()
