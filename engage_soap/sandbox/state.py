"""The sandbox's data: contacts, attribute definitions, prepared messages, groups with their
memberships, and the outbox of accepted sends.

All of it lives in one :class:`SandboxState` guarded by ``state.lock`` (re-entrant). With a
``state_file`` it is kept across restarts: the file (JSON) holds everything but the outbox
and is replaced atomically after every change; the outbox is an append-only journal beside
it (``<state_file>.outbox``, one JSON line per send, flushed to disk before the send is
answered), so a send costs the same with ten or ten thousand sends before it. Temporary
files left by a killed sandbox are removed at start.

A v2 "user" is the same person as a v7 "contact": the user* and membership* operations
work on ``contacts`` (user id = contact id) and on the groups' ``memberships``.
"""

from __future__ import annotations

import base64
import contextlib
import errno
import glob
import json
import os
import re
import tempfile
import threading
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from ..models import IDENTIFIERS, IdentifierType

__all__ = [
    "DEFAULT_ATTRIBUTES",
    "IDENTITY_FIELDS",
    "AttachmentRecord",
    "CallRecord",
    "ContactRecord",
    "DuplicateContactError",
    "GroupRecord",
    "MembershipRecord",
    "MessageRecord",
    "OutboxEntry",
    "SandboxState",
    "SandboxStateError",
]

_FORMAT_VERSION = 3  # 3: the outbox in a journal beside the file; 1 and 2 are still read
MAX_CALLS = 10_000

#: The contact attributes every sandbox knows (the seed of its attribute definitions).
#: Names are matched exactly (case-sensitive); add more with ``Sandbox(attributes=...)``
#: or :meth:`SandboxState.define_attributes`.
DEFAULT_ATTRIBUTES: tuple[str, ...] = (
    "SALUTATION", "TITLE", "FIRSTNAME", "LASTNAME", "STREET", "ZIP", "CITY", "COUNTRY",
    "BIRTHDAY", "GENDER", "LANGUAGE",
)


@dataclass
class ContactRecord:
    """A contact; ``identifier`` is the external identifier (identifier type EXTERNAL)."""

    contact_id: int
    email_address: str | None = None
    mobile_number: str | None = None
    application_alias: str | None = None
    identifier: str | None = None
    attributes: dict[str, str] = field(default_factory=dict)


def _record_field(wire: str) -> str:
    """The ContactRecord field for a wire name: ``emailAddress`` -> ``email_address``."""
    return re.sub(r"(?<!^)([A-Z])", r"_\1", wire).lower()


# The identifier table of the client (engage_soap.models.IDENTIFIERS) is the one source:
# identifier type -> ContactRecord field, and (field, wire name) of the identifying fields.
_FIELD_BY_TYPE: dict[str, str] = {f.type.value: _record_field(f.wire) for f in IDENTIFIERS}
#: (ContactRecord field, wire name) of every field that identifies a contact, except its id.
IDENTITY_FIELDS: tuple[tuple[str, str], ...] = tuple(
    (_record_field(f.wire), f.wire) for f in IDENTIFIERS if f.type is not IdentifierType.ID)
_CONTACT_FIELDS = {f.name for f in fields(ContactRecord)}
if not set(_FIELD_BY_TYPE.values()) <= _CONTACT_FIELDS:  # pragma: no cover - import check
    raise ImportError(f"models.IDENTIFIERS names fields ContactRecord lacks: {_FIELD_BY_TYPE}")


@dataclass
class MembershipRecord:
    """A contact's membership of a group.

    ``subscription_mode`` is the mode of the membershipSubscribe that made it
    (``OPT_IN``, ``DOUBLE_OPT_IN``, ``CONFIRMED_OPT_IN``), or None for one made without a
    subscription (membershipCreate, or a send adding the recipient to the group).
    ``attributes`` are the per-membership attributes (free-form names).
    """

    contact_id: int
    group_id: int
    subscription_mode: str | None = None
    attributes: dict[str, str] = field(default_factory=dict)


@dataclass
class GroupRecord:
    """A group; sending a prepared message adds the recipient to its message's group.

    ``memberships`` maps contact ids to memberships, oldest first.
    """

    group_id: int
    name: str
    description: str = ""
    email: str = ""
    memberships: dict[int, MembershipRecord] = field(default_factory=dict)

    @property
    def members(self) -> list[int]:
        """The member contact ids, oldest membership first (a copy)."""
        return list(self.memberships)


@dataclass
class MessageRecord:
    """A prepared message, bound to one group."""

    message_id: int
    name: str
    group_id: int


@dataclass
class AttachmentRecord:
    """An attachment of an accepted send, with its content decoded from base64."""

    name: str
    content_type: str | None
    content: bytes


@dataclass
class OutboxEntry:
    """One accepted send; ``timestamp`` is seconds since the epoch.

    ``external_transaction_formula`` is set for a messageSendTransactional (None for a
    messageSendSingle).
    """

    message_id: int
    recipient_id: int
    email_address: str | None
    group_id: int
    parameters: list[tuple[str, str]] = field(default_factory=list)
    attachments: list[AttachmentRecord] = field(default_factory=list)
    timestamp: float = field(default_factory=time.time)
    external_transaction_formula: str | None = None

    @property
    def parameter_dict(self) -> dict[str, str]:
        """The parameters as a dict (the last value wins for a repeated name)."""
        return dict(self.parameters)


@dataclass
class CallRecord:
    """One SOAP call the sandbox answered (not persisted): what, for whom, and how."""

    operation: str | None
    status: int
    username: str | None
    injected: str | None = None
    timestamp: float = field(default_factory=time.time)


class DuplicateContactError(ValueError):
    """A contact with this email, mobile number, app alias or external id exists already."""

    def __init__(self, property_name: str, property_value: str) -> None:
        super().__init__(f"Contact with {property_name}={property_value} already exists.")
        self.property_name = property_name
        self.property_value = property_value


class SandboxStateError(OSError):
    """The state file cannot be read or written.

    ``filename`` is its path, ``strerror`` the reason (from the OS), ``errno`` the OS error
    number; ``str()`` names both, e.g. ``cannot write the sandbox state file
    /srv/x/state.json: its directory /srv/x does not exist``.
    """

    def __init__(self, path: str | os.PathLike[str], reason: str, error_number: int | None,
                 action: str = "write") -> None:
        super().__init__(error_number if error_number is not None else errno.EIO, reason,
                         str(path))
        self.action = action

    def __str__(self) -> str:
        return f"cannot {self.action} the sandbox state file {self.filename}: {self.strerror}"

    @classmethod
    def from_os_error(cls, path: str | os.PathLike[str], exc: OSError,
                      action: str = "write") -> SandboxStateError:
        """Wrap an OSError raised while reading or writing ``path``."""
        reason = exc.strerror or str(exc)
        if exc.filename is not None and str(exc.filename) != str(path):
            reason = f"{reason} ({exc.filename})"
        return cls(path, reason, exc.errno, action)


def _same(field_name: str, a: str, b: str) -> bool:
    # E-mail addresses match case-insensitively, the other identifiers exactly.
    return a.lower() == b.lower() if field_name == "email_address" else a == b


class SandboxState:
    """Everything the sandbox knows, seeded with the vendor's example data.

    Seed: contact 33457 ``j.mcexample@example.com`` (FIRSTNAME=J., LASTNAME=McExample,
    CITY=Munich), 33458 with a mobile number, 33459 with an app alias only, 33460 with an
    external identifier; prepared messages 23541, 23542 and 23543 bound to groups
    4711-4713 (no members); the contact attribute definitions DEFAULT_ATTRIBUTES plus
    ``attributes``.
    """

    def __init__(self, state_file: str | os.PathLike[str] | None = None, *,
                 attributes: Iterable[str] = ()) -> None:
        self.lock = threading.RLock()
        self.state_file = Path(state_file) if state_file is not None else None
        self.contacts: dict[int, ContactRecord] = {}
        self.messages: dict[int, MessageRecord] = {}
        self.groups: dict[int, GroupRecord] = {}
        self.outbox: list[OutboxEntry] = []
        self.calls: list[CallRecord] = []
        self.attribute_definitions: set[str] = set()
        self.next_contact_id = 1
        self._extra_attributes = _attribute_names(attributes)
        # The outbox journal: its generation (a new one after reset), how many entries of
        # the outbox it holds, and whether the file must be started afresh.
        self._epoch = uuid.uuid4().hex
        self._journaled = 0
        self._journal_fresh = True
        if self.state_file is not None:
            _remove_stale_temporaries(self.state_file)
        if self.state_file is not None and self.state_file.exists():
            legacy = self._load(self.state_file)
            self.attribute_definitions |= self._extra_attributes
            if legacy:  # format 1 or 2: the outbox moves to the journal now
                self.save()
        else:
            self._seed()

    @property
    def journal_file(self) -> Path | None:
        """The outbox journal beside the state file (None without a state file)."""
        return None if self.state_file is None else self.state_file.with_name(
            self.state_file.name + ".outbox")

    # -- seeding and reset ---------------------------------------------------------------

    def _seed(self) -> None:
        self.contacts.clear()
        self.messages.clear()
        self.groups.clear()
        self.outbox.clear()
        self._epoch, self._journaled, self._journal_fresh = uuid.uuid4().hex, 0, True
        self.calls.clear()
        self.attribute_definitions = set(DEFAULT_ATTRIBUTES) | self._extra_attributes
        self.next_contact_id = 33457
        self.add_contact(email_address="j.mcexample@example.com",
                         attributes={"FIRSTNAME": "J.", "LASTNAME": "McExample",
                                     "CITY": "Munich"}, save=False)
        self.add_contact(email_address="mo.bile@example.com", mobile_number="+4915112345678",
                         attributes={"FIRSTNAME": "Mo", "LASTNAME": "Bile"}, save=False)
        self.add_contact(application_alias="app-7f3c9a21", save=False)
        self.add_contact(email_address="ext.ernal@example.com", identifier="CRM-000042",
                         attributes={"FIRSTNAME": "Ext"}, save=False)
        self.add_message(23541, "Order confirmation", 4711, "Order confirmation recipients",
                         save=False)
        self.add_message(23542, "Password reset", 4712, "Password reset recipients", save=False)
        self.add_message(23543, "Welcome", 4713, "Newsletter subscribers", save=False)

    def reset(self) -> None:
        """Restore the seed data (and write it to the state file, if any).

        Attribute definitions go back to DEFAULT_ATTRIBUTES plus the constructor's
        ``attributes``; those added later with :meth:`define_attributes` are dropped.
        """
        with self.lock:
            self._seed()
            self.save()

    # -- attribute definitions -----------------------------------------------------------

    def define_attributes(self, *names: str, save: bool = True) -> None:
        """Add contact attribute definitions (names are case-sensitive, non-empty)."""
        new = _attribute_names(names)
        with self.lock:
            self.attribute_definitions |= new
            if save:
                self.save()

    def unknown_attributes(self, names: Iterable[str]) -> list[str]:
        """The names (in the given order, once each) that are not defined attributes."""
        with self.lock:
            known = self.attribute_definitions
            return list(dict.fromkeys(n for n in names if n not in known))

    # -- contacts ------------------------------------------------------------------------

    def find_contact(self, id_type: str, value: str) -> ContactRecord | None:
        """The contact matching an identifier of type EMAIL, MOBILE, APP_ALIAS, EXTERNAL or ID."""
        field_name = _FIELD_BY_TYPE[id_type]
        with self.lock:
            if field_name == "contact_id":
                try:
                    return self.contacts.get(int(value))
                except ValueError:
                    return None
            for contact in self.contacts.values():
                own = getattr(contact, field_name)
                if own is not None and _same(field_name, own, value):
                    return contact
            return None

    def _check_identity(self, candidate: ContactRecord) -> None:
        """Raise ValueError (no identity) or DuplicateContactError (clash with another)."""
        if not any(getattr(candidate, name) for name, _ in IDENTITY_FIELDS):
            raise ValueError("a contact needs an email address, mobile number, "
                             "application alias or identifier")
        for name, wire_name in IDENTITY_FIELDS:
            value = getattr(candidate, name)
            if value is None:
                continue
            for other in self.contacts.values():
                if other.contact_id == candidate.contact_id:
                    continue
                own = getattr(other, name)
                if own is not None and _same(name, own, value):
                    raise DuplicateContactError(wire_name, value)

    def add_contact(self, *, email_address: str | None = None, mobile_number: str | None = None,
                    application_alias: str | None = None, identifier: str | None = None,
                    attributes: dict[str, str] | None = None, save: bool = True) -> ContactRecord:
        """Create a contact with the next id; raise DuplicateContactError or ValueError.

        Attribute names are not checked here (the operations check them).
        """
        candidate = ContactRecord(0, email_address or None, mobile_number or None,
                                  application_alias or None, identifier or None,
                                  dict(attributes or {}))
        with self.lock:
            self._check_identity(candidate)
            candidate.contact_id = self.next_contact_id
            self.next_contact_id += 1
            self.contacts[candidate.contact_id] = candidate
            if save:
                self.save()
            return candidate

    def replace_contact(self, contact_id: int, *, email_address: str | None = None,
                        mobile_number: str | None = None, application_alias: str | None = None,
                        identifier: str | None = None, attributes: dict[str, str] | None = None,
                        save: bool = True) -> ContactRecord:
        """Replace every field of a contact (a field not given is removed), keeping its id.

        Raises KeyError (no such contact), ValueError (no identity left) or
        DuplicateContactError (an identifier of another contact).
        """
        candidate = ContactRecord(contact_id, email_address or None, mobile_number or None,
                                  application_alias or None, identifier or None,
                                  dict(attributes or {}))
        with self.lock:
            if contact_id not in self.contacts:
                raise KeyError(contact_id)
            self._check_identity(candidate)
            self.contacts[contact_id] = candidate
            if save:
                self.save()
            return candidate

    def update_attributes(self, contact_id: int, attributes: dict[str, str], *,
                          replace: bool = False, save: bool = True) -> ContactRecord:
        """Merge ``attributes`` into a contact's (or replace them all); KeyError if missing."""
        with self.lock:
            contact = self.contacts[contact_id]
            if replace:
                contact.attributes = dict(attributes)
            else:
                contact.attributes.update(attributes)
            if save:
                self.save()
            return contact

    def delete_contact(self, contact_id: int, *, save: bool = True) -> bool:
        """Remove a contact and its memberships; False if there was none."""
        with self.lock:
            if self.contacts.pop(contact_id, None) is None:
                return False
            for group in self.groups.values():
                group.memberships.pop(contact_id, None)
            if save:
                self.save()
            return True

    # -- groups, memberships, messages -----------------------------------------------------

    def add_group(self, group_id: int, name: str, description: str = "", email: str = "", *,
                  save: bool = True) -> GroupRecord:
        """Add a group (or rename an existing one, keeping its memberships)."""
        with self.lock:
            group = self.groups.get(group_id)
            if group is None:
                group = self.groups[group_id] = GroupRecord(group_id, name, description, email)
            else:
                group.name, group.description, group.email = name, description, email
            if save:
                self.save()
            return group

    def add_message(self, message_id: int, name: str, group_id: int,
                    group_name: str | None = None, *, save: bool = True) -> MessageRecord:
        """Add (or replace) a prepared message and create its group if needed."""
        with self.lock:
            message = MessageRecord(message_id, name, group_id)
            self.messages[message_id] = message
            self.groups.setdefault(group_id, GroupRecord(group_id, group_name or name))
            if save:
                self.save()
            return message

    def group_messages(self, group_id: int) -> list[int]:
        """The ids of the prepared messages bound to a group, ascending."""
        with self.lock:
            return sorted(m.message_id for m in self.messages.values() if m.group_id == group_id)

    def membership(self, contact_id: int, group_id: int) -> MembershipRecord | None:
        """A contact's membership of a group, or None."""
        with self.lock:
            group = self.groups.get(group_id)
            return group.memberships.get(contact_id) if group is not None else None

    def memberships_of(self, contact_id: int) -> list[MembershipRecord]:
        """Every membership of a contact, by ascending group id."""
        with self.lock:
            return [self.groups[g].memberships[contact_id] for g in sorted(self.groups)
                    if contact_id in self.groups[g].memberships]

    def add_membership(self, contact_id: int, group_id: int,
                       subscription_mode: str | None = None, *,
                       save: bool = True) -> tuple[MembershipRecord, bool]:
        """Make a contact a member of a group: (the membership, whether it is new).

        An existing membership is kept as it is. KeyError if the group does not exist.
        """
        with self.lock:
            group = self.groups[group_id]
            existing = group.memberships.get(contact_id)
            if existing is not None:
                return existing, False
            created = MembershipRecord(contact_id, group_id, subscription_mode)
            group.memberships[contact_id] = created
            if save:
                self.save()
            return created, True

    def remove_membership(self, contact_id: int, group_id: int, *, save: bool = True) -> bool:
        """End a membership; False if there was none."""
        with self.lock:
            group = self.groups.get(group_id)
            if group is None or group.memberships.pop(contact_id, None) is None:
                return False
            if save:
                self.save()
            return True

    def update_membership_attributes(self, contact_id: int, group_id: int,
                                     attributes: dict[str, str], *, replace: bool = False,
                                     save: bool = True) -> MembershipRecord:
        """Merge (or replace) a membership's attributes; KeyError if there is none."""
        with self.lock:
            membership = self.groups[group_id].memberships[contact_id]
            if replace:
                membership.attributes = dict(attributes)
            else:
                membership.attributes.update(attributes)
            if save:
                self.save()
            return membership

    def record_send(self, message: MessageRecord, contact: ContactRecord,
                    parameters: list[tuple[str, str]], attachments: list[AttachmentRecord],
                    external_transaction_formula: str | None = None) -> OutboxEntry:
        """Append an accepted send to the outbox and add the recipient to the group."""
        with self.lock:
            entry = OutboxEntry(message.message_id, contact.contact_id, contact.email_address,
                                message.group_id, list(parameters), list(attachments),
                                external_transaction_formula=external_transaction_formula)
            self.outbox.append(entry)
            group = self.groups.setdefault(message.group_id,
                                           GroupRecord(message.group_id, message.name))
            if contact.contact_id not in group.memberships:
                group.memberships[contact.contact_id] = MembershipRecord(contact.contact_id,
                                                                         group.group_id)
            if self._journal_fresh:
                self.save()
            else:  # one line appended; loading replays the membership it implies
                self._append_journal()
            return entry

    def group_members(self, message_id: int) -> list[int]:
        """The contact ids in the group of a prepared message."""
        with self.lock:
            return self.groups[self.messages[message_id].group_id].members

    def record_call(self, call: CallRecord) -> None:
        """Note an answered call in ``calls`` (the last MAX_CALLS are kept)."""
        with self.lock:
            self.calls.append(call)
            if len(self.calls) > MAX_CALLS:
                del self.calls[: len(self.calls) - MAX_CALLS]

    # -- persistence ---------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        """Attribute definitions, contacts, messages, groups (with memberships) and outbox
        as JSON-ready data."""
        with self.lock:
            return {**self._snapshot(), "outbox": [_entry_json(e) for e in self.outbox]}

    def _snapshot(self) -> dict[str, Any]:
        """What the state file holds: all but the outbox, which is in the journal."""
        return {
            "format": _FORMAT_VERSION,
            "next_contact_id": self.next_contact_id,
            "attribute_definitions": sorted(self.attribute_definitions),
            "contacts": [vars(c) | {"attributes": dict(c.attributes)}
                         for c in self.contacts.values()],
            "messages": [vars(m).copy() for m in self.messages.values()],
            "groups": [{
                "group_id": g.group_id, "name": g.name, "description": g.description,
                "email": g.email,
                "memberships": [{"contact_id": m.contact_id,
                                 "subscription_mode": m.subscription_mode,
                                 "attributes": dict(m.attributes)}
                                for m in g.memberships.values()],
            } for g in self.groups.values()],
            # the journal's generation, and how many of its sends this file already
            # reflects (the memberships they made); later ones are replayed on loading
            "outbox_journal": {"epoch": self._epoch, "sends": len(self.outbox)},
        }

    def check_writable(self) -> None:
        """Raise SandboxStateError unless the state file can be written (no-op without one).

        Checks that its directory exists and accepts new files (the file is written to a
        temporary file there, then renamed) and that an existing file is a writable file.
        """
        target = self.state_file
        if target is None:
            return
        parent = target.parent
        if not parent.exists():
            raise SandboxStateError(target, f"its directory {parent} does not exist",
                                    errno.ENOENT)
        if not parent.is_dir():
            raise SandboxStateError(target, f"{parent} is not a directory", errno.ENOTDIR)
        if target.is_dir():
            raise SandboxStateError(target, "it is a directory", errno.EISDIR)
        if target.exists() and not os.access(target, os.W_OK):
            raise SandboxStateError(target, "the file is not writable (permission denied)",
                                    errno.EACCES)
        try:
            fd, probe = tempfile.mkstemp(prefix=target.name + ".", suffix=".probe", dir=parent)
        except OSError as exc:
            raise SandboxStateError.from_os_error(target, exc) from exc
        os.close(fd)
        Path(probe).unlink(missing_ok=True)

    def save(self) -> None:
        """Write the state file atomically (temp file + os.replace) after appending to the
        journal the sends it lacks; no-op without a state file.

        Raises SandboxStateError if it cannot be written.
        """
        if self.state_file is None:
            return
        with self.lock:
            journal = self.journal_file
            assert journal is not None
            if self._journal_fresh:  # after a reset or a migration: a new journal first
                _write_atomically(journal, self._journal_lines())
                self._journaled, self._journal_fresh = len(self.outbox), False
            else:
                self._append_journal()
            _write_atomically(self.state_file, json.dumps(
                self._snapshot(), indent=1, ensure_ascii=False).encode("utf-8"))

    def _journal_lines(self) -> bytes:
        """The journal lines of the sends not yet in the journal."""
        return b"".join(json.dumps(
            {"epoch": self._epoch, "seq": seq, **_entry_json(self.outbox[seq])},
            ensure_ascii=False).encode("utf-8") + b"\n"
            for seq in range(self._journaled, len(self.outbox)))

    def _append_journal(self) -> None:
        """Append the sends not yet in the journal, one line each, and flush them to disk."""
        journal = self.journal_file
        if journal is None or self._journaled == len(self.outbox):
            return
        lines = self._journal_lines()
        try:
            with open(journal, "ab") as out:
                out.write(lines)
                out.flush()
                os.fsync(out.fileno())
        except OSError as exc:
            raise SandboxStateError.from_os_error(journal, exc) from exc
        self._journaled = len(self.outbox)

    def _replay_journal(self, epoch: str, reflected: int) -> None:
        """Read the journal's sends of generation ``epoch`` into the outbox; the memberships
        of those beyond the first ``reflected`` are made again. A torn last line (a kill
        while writing, before the send was answered) is dropped."""
        journal = self.journal_file
        assert journal is not None
        try:
            data = journal.read_bytes() if journal.exists() else b""
        except OSError as exc:
            raise SandboxStateError.from_os_error(journal, exc, "read") from exc
        good = 0
        for line in data.splitlines(keepends=True):
            try:
                record = json.loads(line) if line.endswith(b"\n") else None
            except ValueError:
                record = None
            if not isinstance(record, dict):
                break
            good += len(line)
            if record.get("epoch") != epoch or record.get("seq") != len(self.outbox):
                continue  # an older generation's line (the file is rewritten on reset)
            entry = _entry_from_json(record)
            self.outbox.append(entry)
            if len(self.outbox) > reflected:
                message = self.messages.get(entry.message_id)
                group = self.groups.setdefault(entry.group_id, GroupRecord(
                    entry.group_id, message.name if message else str(entry.group_id)))
                group.memberships.setdefault(entry.recipient_id, MembershipRecord(
                    entry.recipient_id, entry.group_id))
        if good < len(data):
            try:
                with open(journal, "r+b") as out:
                    out.truncate(good)
            except OSError as exc:
                raise SandboxStateError.from_os_error(journal, exc) from exc
        self._epoch, self._journaled, self._journal_fresh = epoch, len(self.outbox), False

    def _load(self, path: Path) -> bool:
        """Read the state file (and the outbox journal); True if it is of format 1 or 2."""
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise SandboxStateError.from_os_error(path, exc, "read") from exc
        try:
            data = json.loads(text)
            version = data.get("format")
            if version not in (1, 2, _FORMAT_VERSION):
                raise ValueError(f"unknown format {version!r}")
            self.next_contact_id = int(data["next_contact_id"])
            self.contacts = {int(c["contact_id"]): ContactRecord(**c) for c in data["contacts"]}
            self.messages = {int(m["message_id"]): MessageRecord(**m) for m in data["messages"]}
            self.groups = {}
            for g in data["groups"]:
                group = GroupRecord(int(g["group_id"]), g["name"], g.get("description", ""),
                                    g.get("email", ""))
                if version == 1:  # members: a list of contact ids
                    memberships = [{"contact_id": m} for m in g["members"]]
                else:
                    memberships = g["memberships"]
                for m in memberships:
                    record = MembershipRecord(int(m["contact_id"]), group.group_id,
                                              m.get("subscription_mode"),
                                              dict(m.get("attributes", {})))
                    group.memberships[record.contact_id] = record
                self.groups[group.group_id] = group
            if version == 1:  # no definitions yet: the defaults and every name in use
                self.attribute_definitions = set(DEFAULT_ATTRIBUTES) | {
                    n for c in self.contacts.values() for n in c.attributes}
            else:
                self.attribute_definitions = _attribute_names(data["attribute_definitions"])
            if version == _FORMAT_VERSION:
                journal = data["outbox_journal"]
                self.outbox = []
                self._replay_journal(str(journal["epoch"]), int(journal["sends"]))
            else:
                self.outbox = [_entry_from_json(e) for e in data["outbox"]]
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ValueError(f"unreadable sandbox state file {path}: {exc}") from exc
        return bool(version != _FORMAT_VERSION)


def _attribute_names(names: Iterable[str]) -> set[str]:
    if isinstance(names, str):
        raise TypeError("give attribute names as a list of strings, not one string")
    result = set()
    for name in names:
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"an attribute name must be a non-empty string, not {name!r}")
        result.add(name)
    return result


def _entry_json(e: OutboxEntry) -> dict[str, Any]:
    return {
        "message_id": e.message_id, "recipient_id": e.recipient_id,
        "email_address": e.email_address, "group_id": e.group_id,
        "parameters": [[n, v] for n, v in e.parameters],
        "attachments": [{"name": a.name, "content_type": a.content_type,
                         "content": base64.b64encode(a.content).decode("ascii")}
                        for a in e.attachments],
        "timestamp": e.timestamp,
        "external_transaction_formula": e.external_transaction_formula,
    }


def _entry_from_json(e: dict[str, Any]) -> OutboxEntry:
    return OutboxEntry(
        message_id=e["message_id"], recipient_id=e["recipient_id"],
        email_address=e["email_address"], group_id=e["group_id"],
        parameters=[(n, v) for n, v in e["parameters"]],
        attachments=[AttachmentRecord(a["name"], a["content_type"],
                                      base64.b64decode(a["content"]))
                     for a in e["attachments"]],
        timestamp=e["timestamp"],
        external_transaction_formula=e.get("external_transaction_formula"))


def _write_atomically(target: Path, data: bytes) -> None:
    """Replace ``target`` by ``data`` (temp file, fsync, rename); SandboxStateError."""
    try:
        fd, tmp = tempfile.mkstemp(prefix=target.name + ".", suffix=".tmp", dir=target.parent)
    except OSError as exc:
        raise SandboxStateError.from_os_error(target, exc) from exc
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, target)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise SandboxStateError.from_os_error(target, exc) from exc
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _remove_stale_temporaries(target: Path) -> None:
    """Remove the temporary files a killed sandbox left beside ``target``."""
    with contextlib.suppress(OSError):  # a missing directory is reported elsewhere
        for stale in target.parent.glob(f"{glob.escape(target.name)}.*.tmp"):
            with contextlib.suppress(OSError):
                stale.unlink()
