"""The installed console script, run for real: the main job, --help, and `sandbox` serving."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result

pytestmark = pytest.mark.long(3)

Invoke = Callable[..., Result]


def test_main_job_through_the_console_script(console_script: str,
                                             child_env: dict[str, str]) -> None:
    proc = subprocess.run(
        [console_script, "send-prepared", "--sandbox", "--message-id", "23541",
         "--email", "j.mcexample@example.com", "--param", "FIRSTNAME=Jo"],
        capture_output=True, text=True, env=child_env, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [
        "lookup: EMAIL j.mcexample@example.com -> contact id 33457",
        "send: message 23541 -> contact 33457: sent",
        "sandbox outbox: message 23541 -> contact 33457 <j.mcexample@example.com>, group 4711",
        "  parameter FIRSTNAME = Jo",
    ]
    assert proc.stderr == ""


def test_console_script_error_has_no_traceback(console_script: str,
                                               child_env: dict[str, str]) -> None:
    proc = subprocess.run(
        [console_script, "contact", "get", "--sandbox", "--email", "nobody@example.com"],
        capture_output=True, text=True, env=child_env, timeout=60, check=False)
    assert proc.returncode == 3
    assert proc.stderr.startswith("error: ContactNotFoundError: ")
    assert "Traceback" not in proc.stderr


def test_help_imports_no_client_zeep_or_sandbox(child_env: dict[str, str]) -> None:
    code = ("import sys\n"
            "sys.argv = ['engage-soap', '--help']\n"
            "from engage_soap.cli import main\n"
            "try:\n    main()\nexcept SystemExit as e:\n    assert e.code == 0, e.code\n"
            "heavy = [m for m in ('zeep', 'requests', 'engage_soap.client', 'engage_soap.sandbox',"
            " 'lxml.etree') if m in sys.modules]\n"
            "print('HEAVY', heavy)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=child_env, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "HEAVY []" in proc.stdout


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_sandbox_command_serves_until_sigterm(console_script: str, child_env: dict[str, str],
                                              invoke: Invoke, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    state = tmp_path / "state.json"
    proc = subprocess.Popen(
        [console_script, "sandbox", "--port", "0", "--state", str(state), "--rate-limit", "0",
         "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=child_env)
    watchdog = threading.Timer(60, proc.kill)
    watchdog.start()
    try:
        assert proc.stdout is not None
        ready = json.loads(proc.stdout.readline())
        assert ready["username"] == "sandbox-api" and ready["password"] == "sandbox-secret"
        assert ready["endpoint"].startswith("http://127.0.0.1:")
        monkeypatch.setenv("ENGAGE_ENDPOINT", ready["endpoint"])
        monkeypatch.setenv("ENGAGE_USERNAME", ready["username"])
        monkeypatch.setenv("ENGAGE_PASSWORD", ready["password"])
        result = invoke("contact", "create", "--email", "kept@example.com")
        assert result.exit_code == 0, result.output
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=30)
    finally:
        watchdog.cancel()
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    assert "kept@example.com" in state.read_text(encoding="utf-8")


def test_sandbox_command_text_banner(console_script: str, child_env: dict[str, str]) -> None:
    proc = subprocess.Popen([console_script, "sandbox", "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=child_env)
    watchdog = threading.Timer(60, proc.kill)
    watchdog.start()
    try:
        assert proc.stdout is not None
        lines: list[str] = []
        while not lines or lines[-1] not in ("", "Press Ctrl-C to stop.\n"):
            lines.append(proc.stdout.readline())
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=30)
    finally:
        watchdog.cancel()
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert lines[0].startswith("Engage sandbox listening on http://127.0.0.1:")
    assert lines[2] == "  username: sandbox-api\n"
    assert lines[3] == "  password: sandbox-secret\n"
    assert any(line.startswith("  export ENGAGE_ENDPOINT=") for line in lines)
    assert lines[-1] == "Press Ctrl-C to stop.\n"
    assert proc.returncode == 0
    assert "sandbox stopped" in err


def test_sandbox_command_port_in_use_exit_7(invoke: Invoke) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = invoke("sandbox", "--port", str(port))
    assert result.exit_code == 7
    assert result.stderr.startswith("error: OSError: cannot start the sandbox on 127.0.0.1:")


def test_sandbox_command_bad_state_file_exit_7(invoke: Invoke, tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    state.write_text("{not json", encoding="utf-8")
    result = invoke("sandbox", "--port", str(_free_port()), "--state", str(state))
    assert result.exit_code == 7
    assert "unreadable sandbox state file" in result.stderr


class _Served:
    """``engage-soap sandbox --json ...`` running in a child process."""

    def __init__(self, console_script: str, env: dict[str, str], *args: str) -> None:
        self.proc = subprocess.Popen([console_script, "sandbox", "--port", "0", "--json", *args],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     env=env)
        self.watchdog = threading.Timer(60, self.proc.kill)
        self.watchdog.start()
        assert self.proc.stdout is not None
        self.ready = json.loads(self.proc.stdout.readline())
        self.env = {**env, "ENGAGE_ENDPOINT": self.ready["endpoint"],
                    "ENGAGE_USERNAME": self.ready["username"],
                    "ENGAGE_PASSWORD": self.ready["password"]}

    def stop(self) -> tuple[int, str]:
        """SIGTERM; the exit code and stderr."""
        self.watchdog.cancel()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            _out, err = self.proc.communicate(timeout=30)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.communicate()
        return self.proc.returncode, err


def test_ctrl_c_during_a_call_exits_130(console_script: str, child_env: dict[str, str]) -> None:
    served = _Served(console_script, child_env, "--latency", "30")  # every reply waits 30 s
    try:
        started = time.monotonic()
        proc = subprocess.Popen([console_script, "-v", "ping"], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=served.env)
        assert proc.stderr is not None
        lines = []
        while not lines or "systemGetApiVersion request to" not in lines[-1]:
            lines.append(proc.stderr.readline())
            assert lines[-1], "the request was never logged"
        proc.send_signal(signal.SIGINT)  # while it waits for the reply
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        served.stop()
    assert proc.returncode == 130
    assert time.monotonic() - started < 20  # interrupted, not timed out
    assert out == ""
    assert err.splitlines()[-1] == "interrupted"
    assert "interrupted" not in "".join(err.splitlines()[:-1])
    assert "Traceback" not in err and "Aborted" not in err


def test_sandbox_verbose_shows_its_envelopes_and_knows_extra_attributes(
        console_script: str, child_env: dict[str, str]) -> None:
    served = _Served(console_script, child_env, "-v", "--attribute", "LOYALTY",
                     "--latency", "0.3")
    try:
        started = time.monotonic()
        proc = subprocess.run([console_script, "contact", "create", "--email", "v@example.com",
                               "--attr", "LOYALTY=gold"], capture_output=True, text=True,
                              env=served.env, timeout=60, check=False)
        took = time.monotonic() - started
    finally:
        code, err = served.stop()
    assert proc.returncode == 0, proc.stderr
    assert took >= 0.3
    assert code == 0
    assert "debug: sandbox: request contactCreate:" in err
    assert "<name>LOYALTY</name><value>gold</value>" in err
    assert "debug: sandbox: reply to contactCreate: HTTP 200" in err
    assert "Authorization" not in err
