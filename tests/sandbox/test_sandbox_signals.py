"""Ctrl-C and SIGTERM stop a serving sandbox cleanly, wherever they arrive."""

from __future__ import annotations

import signal
import threading

import pytest

from engage_soap.sandbox import Sandbox, run


def test_a_signal_during_start_up_does_not_interrupt_it() -> None:
    reached: list[str] = []

    def ready(sandbox: Sandbox) -> None:
        signal.raise_signal(signal.SIGINT)  # Ctrl-C while the banner is being printed
        reached.append(sandbox.url)  # not cut short by a KeyboardInterrupt

    run("127.0.0.1", 0, rate_limit=None, ready=ready)
    assert len(reached) == 1
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # restored


def test_ctrl_c_before_the_serving_thread_runs_leaves_nothing_to_wait_for(
        monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(self: threading.Thread) -> None:
        raise KeyboardInterrupt

    sandbox = Sandbox(rate_limit=None)
    with monkeypatch.context() as patch:
        patch.setattr(threading.Thread, "start", interrupted)
        with pytest.raises(KeyboardInterrupt):
            sandbox.start()
    assert not sandbox.running
    stopper = threading.Thread(target=sandbox.stop, daemon=True)
    stopper.start()
    stopper.join(10)
    assert not stopper.is_alive(), "stop() waits for a server thread that never started"
