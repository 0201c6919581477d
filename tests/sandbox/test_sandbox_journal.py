"""The sandbox outbox is an append-only journal: a send never rewrites the state file,
a restart replays it, a torn last line is dropped, a killed sandbox's temp files go."""

from __future__ import annotations

import json
from pathlib import Path

from engage_soap.sandbox import SandboxState


def _send(state: SandboxState, contact_id: int = 33457, message_id: int = 23541) -> None:
    state.record_send(state.messages[message_id], state.contacts[contact_id],
                      [("FIRSTNAME", "Jo")], [])


def test_a_send_appends_one_line_and_leaves_the_state_file_alone(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    state = SandboxState(path)
    for _ in range(3):
        _send(state)
    before = path.stat()
    content = path.read_bytes()
    _send(state, contact_id=33458, message_id=23543)  # a new member of group 4713 too
    after = path.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert path.read_bytes() == content
    lines = (tmp_path / "state.json.outbox").read_bytes().splitlines()
    assert len(lines) == 4
    assert json.loads(lines[-1])["recipient_id"] == 33458

    again = SandboxState(path)  # a restart replays the journal, memberships included
    assert [e.recipient_id for e in again.outbox] == [33457] * 3 + [33458]
    assert again.group_members(23543) == [33458]
    assert again.outbox[-1].parameters == [("FIRSTNAME", "Jo")]


def test_a_torn_last_line_is_dropped_and_the_next_send_starts_clean(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    state = SandboxState(path)
    _send(state)
    _send(state)
    journal = tmp_path / "state.json.outbox"
    with journal.open("ab") as out:  # killed while writing a third send (never answered)
        out.write(b'{"epoch": "')
    restarted = SandboxState(path)
    assert len(restarted.outbox) == 2
    _send(restarted, contact_id=33458)
    assert [e.recipient_id for e in SandboxState(path).outbox] == [33457, 33457, 33458]


def test_a_membership_removed_after_a_send_stays_removed(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    state = SandboxState(path)
    _send(state, contact_id=33458, message_id=23543)
    assert state.remove_membership(33458, 4713)
    assert SandboxState(path).group_members(23543) == []


def test_temporary_files_of_a_killed_sandbox_are_removed_at_start(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    SandboxState(path).save()
    stale = [tmp_path / "state.json.k3j4h5.tmp", tmp_path / "state.json.outbox.x9y8.tmp"]
    for file in stale:
        file.write_bytes(b"half written")
    other = tmp_path / "other.json.a1b2.tmp"
    other.write_bytes(b"not ours")
    SandboxState(path)
    assert not any(file.exists() for file in stale)
    assert other.exists()
