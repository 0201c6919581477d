"""The sandbox's data: contacts, prepared messages, groups and the outbox of accepted sends.

All of it lives in one :class:`SandboxState` guarded by ``state.lock`` (re-entrant). With a
``state_file`` it is kept as JSON across restarts, written atomically after every change.
"""

from __future__ import annotations

import base64
import json
import os
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "AttachmentRecord",
    "CallRecord",
    "ContactRecord",
    "DuplicateContactError",
    "GroupRecord",
    "MessageRecord",
    "OutboxEntry",
    "SandboxState",
]

_FORMAT_VERSION = 1
MAX_CALLS = 10_000
# Contact fields that identify a contact, with their names on the wire.
IDENTITY_FIELDS: tuple[tuple[str, str], ...] = (
    ("email_address", "emailAddress"),
    ("mobile_number", "mobileNumber"),
    ("application_alias", "applicationAlias"),
    ("identifier", "identifier"),
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


@dataclass
class GroupRecord:
    """A group; sending a prepared message adds the recipient to its message's group."""

    group_id: int
    name: str
    members: list[int] = field(default_factory=list)


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
    """One accepted messageSendSingle; ``timestamp`` is seconds since the epoch."""

    message_id: int
    recipient_id: int
    email_address: str | None
    group_id: int
    parameters: list[tuple[str, str]] = field(default_factory=list)
    attachments: list[AttachmentRecord] = field(default_factory=list)
    timestamp: float = field(default_factory=time.time)

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


def _same(field_name: str, a: str, b: str) -> bool:
    # E-mail addresses match case-insensitively, the other identifiers exactly.
    return a.lower() == b.lower() if field_name == "email_address" else a == b


class SandboxState:
    """Everything the sandbox knows, seeded with the vendor's example data.

    Seed: contact 33457 ``j.mcexample@example.com`` (FIRSTNAME=J., LASTNAME=McExample),
    33458 with a mobile number, 33459 with an app alias only, 33460 with an external
    identifier; prepared messages 23541, 23542 and 23543 bound to groups 4711-4713.
    """

    def __init__(self, state_file: str | os.PathLike[str] | None = None) -> None:
        self.lock = threading.RLock()
        self.state_file = Path(state_file) if state_file is not None else None
        self.contacts: dict[int, ContactRecord] = {}
        self.messages: dict[int, MessageRecord] = {}
        self.groups: dict[int, GroupRecord] = {}
        self.outbox: list[OutboxEntry] = []
        self.calls: list[CallRecord] = []
        self.next_contact_id = 1
        if self.state_file is not None and self.state_file.exists():
            self._load(self.state_file)
        else:
            self._seed()

    # -- seeding and reset ---------------------------------------------------------------

    def _seed(self) -> None:
        self.contacts.clear()
        self.messages.clear()
        self.groups.clear()
        self.outbox.clear()
        self.calls.clear()
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
        """Restore the seed data (and write it to the state file, if any)."""
        with self.lock:
            self._seed()
            self.save()

    # -- queries and changes -------------------------------------------------------------

    def find_contact(self, id_type: str, value: str) -> ContactRecord | None:
        """The contact matching an identifier of type EMAIL, MOBILE, APP_ALIAS, EXTERNAL or ID."""
        with self.lock:
            if id_type == "ID":
                try:
                    return self.contacts.get(int(value))
                except ValueError:
                    return None
            field_name = {"EMAIL": "email_address", "MOBILE": "mobile_number",
                          "APP_ALIAS": "application_alias", "EXTERNAL": "identifier"}[id_type]
            for contact in self.contacts.values():
                own = getattr(contact, field_name)
                if own is not None and _same(field_name, own, value):
                    return contact
            return None

    def add_contact(self, *, email_address: str | None = None, mobile_number: str | None = None,
                    application_alias: str | None = None, identifier: str | None = None,
                    attributes: dict[str, str] | None = None, save: bool = True) -> ContactRecord:
        """Create a contact with the next id; raise DuplicateContactError or ValueError."""
        candidate = ContactRecord(0, email_address or None, mobile_number or None,
                                  application_alias or None, identifier or None,
                                  dict(attributes or {}))
        with self.lock:
            if not any(getattr(candidate, name) for name, _ in IDENTITY_FIELDS):
                raise ValueError("a contact needs an email address, mobile number, "
                                 "application alias or identifier")
            for name, wire_name in IDENTITY_FIELDS:
                value = getattr(candidate, name)
                if value is None:
                    continue
                for other in self.contacts.values():
                    own = getattr(other, name)
                    if own is not None and _same(name, own, value):
                        raise DuplicateContactError(wire_name, value)
            candidate.contact_id = self.next_contact_id
            self.next_contact_id += 1
            self.contacts[candidate.contact_id] = candidate
            if save:
                self.save()
            return candidate

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

    def record_send(self, message: MessageRecord, contact: ContactRecord,
                    parameters: list[tuple[str, str]],
                    attachments: list[AttachmentRecord]) -> OutboxEntry:
        """Append an accepted send to the outbox and add the recipient to the group."""
        with self.lock:
            entry = OutboxEntry(message.message_id, contact.contact_id, contact.email_address,
                                message.group_id, list(parameters), list(attachments))
            self.outbox.append(entry)
            group = self.groups.setdefault(message.group_id,
                                           GroupRecord(message.group_id, message.name))
            if contact.contact_id not in group.members:
                group.members.append(contact.contact_id)
            self.save()
            return entry

    def group_members(self, message_id: int) -> list[int]:
        """The contact ids in the group of a prepared message."""
        with self.lock:
            return list(self.groups[self.messages[message_id].group_id].members)

    def record_call(self, call: CallRecord) -> None:
        """Note an answered call in ``calls`` (the last MAX_CALLS are kept)."""
        with self.lock:
            self.calls.append(call)
            if len(self.calls) > MAX_CALLS:
                del self.calls[: len(self.calls) - MAX_CALLS]

    # -- persistence ---------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        """Contacts, messages, groups and outbox as JSON-ready data."""
        with self.lock:
            return {
                "format": _FORMAT_VERSION,
                "next_contact_id": self.next_contact_id,
                "contacts": [vars(c) | {"attributes": dict(c.attributes)}
                             for c in self.contacts.values()],
                "messages": [vars(m).copy() for m in self.messages.values()],
                "groups": [vars(g) | {"members": list(g.members)} for g in self.groups.values()],
                "outbox": [{
                    "message_id": e.message_id, "recipient_id": e.recipient_id,
                    "email_address": e.email_address, "group_id": e.group_id,
                    "parameters": [[n, v] for n, v in e.parameters],
                    "attachments": [{"name": a.name, "content_type": a.content_type,
                                     "content": base64.b64encode(a.content).decode("ascii")}
                                    for a in e.attachments],
                    "timestamp": e.timestamp,
                } for e in self.outbox],
            }

    def save(self) -> None:
        """Write the state file atomically (temp file + os.replace); no-op without one."""
        if self.state_file is None:
            return
        with self.lock:
            data = json.dumps(self.to_json(), indent=1, ensure_ascii=False).encode("utf-8")
            target = self.state_file
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=target.name + ".", suffix=".tmp",
                                       dir=target.parent)
            try:
                with os.fdopen(fd, "wb") as out:
                    out.write(data)
                    out.flush()
                    os.fsync(out.fileno())
                os.replace(tmp, target)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise

    def _load(self, path: Path) -> None:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if data.get("format") != _FORMAT_VERSION:
                raise ValueError(f"unknown format {data.get('format')!r}")
            self.next_contact_id = int(data["next_contact_id"])
            self.contacts = {int(c["contact_id"]): ContactRecord(**c) for c in data["contacts"]}
            self.messages = {int(m["message_id"]): MessageRecord(**m) for m in data["messages"]}
            self.groups = {int(g["group_id"]): GroupRecord(**g) for g in data["groups"]}
            self.outbox = [OutboxEntry(
                message_id=e["message_id"], recipient_id=e["recipient_id"],
                email_address=e["email_address"], group_id=e["group_id"],
                parameters=[(n, v) for n, v in e["parameters"]],
                attachments=[AttachmentRecord(a["name"], a["content_type"],
                                              base64.b64decode(a["content"]))
                             for a in e["attachments"]],
                timestamp=e["timestamp"]) for e in data["outbox"]]
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"unreadable sandbox state file {path}: {exc}") from exc
