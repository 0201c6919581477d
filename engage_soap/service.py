"""The service model: every operation of the contract in use, independent of the wire.

For each operation: its name, whether it only reads (retried freely) or writes (never
repeated once it may have reached the server), its request and reply schema (plans,
see :mod:`engage_soap.schema`) and the faults it declares. Built once per contract (see
``zeep_binding``) and shared; the facade, the typed-operations generator and every wire
read it. Protocol specifics (SOAP actions and wrapper elements, REST paths) live in the
wire that speaks them, never here.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from .errors import InvalidInputError
from .schema import ComplexPlan

__all__ = ["READ_OPERATIONS", "Operation", "ServiceModel", "is_read"]

# The operations that only read (retried on any retryable failure). Every other operation,
# including one this table does not know, is a write: once it may have reached the
# server it is never sent again.
READ_OPERATIONS = frozenset({
    "asyncGetPollCount",
    "asyncGetRemainingCapacity",
    "asyncGetSubmitCount",
    "asyncListTopics",
    "contactGet",
    "groupFindIdsByAttributes",
    "groupGet",
    "groupGetAllGroupSettingsTemplates",
    "groupGetAttributes",
    "groupGetPreparedMessages",
    "landingpageGetStatus",
    "membershipFindAll",
    "membershipFindAllByEmail",
    "membershipGetAttributes",
    "membershipGetAttributesByEmail",
    "messageGetManyUsedPersonalizations",
    "messageGetUsedPersonalizations",
    "messageValidate",
    "messageValidateList",
    "messageValidateMany",
    "metaGetAttributeDefinitions",
    "metaGetLinkCategories",
    "systemGetApiVersion",
    "systemGetEcmVersion",
    "userGet",
    "userGetByEmail",
    "userGetByIdentifier",
    "userGetProfile",
    "userGetProfileByEmail",
})


def is_read(operation: str) -> bool:
    """True when ``operation`` has no side effect and may be retried freely."""
    return operation in READ_OPERATIONS


@dataclass(frozen=True)
class Operation:
    """One operation: name, read or write, request and reply schema, declared faults."""

    name: str
    request: ComplexPlan
    reply: ComplexPlan
    faults: frozenset[str] = frozenset()  # detail bean names, e.g. NoSuchObjectException

    @property
    def read(self) -> bool:
        """Whether the operation only reads (see :data:`READ_OPERATIONS`)."""
        return is_read(self.name)

    def describe(self) -> dict[str, Any]:
        """This operation as plain data: read or write, arguments, reply fields, faults."""
        return {"read": self.read,
                "arguments": [f.describe() for f in self.request.fields],
                "returns": [f.describe() for f in self.reply.fields],
                "faults": sorted(self.faults)}


class ServiceModel(Mapping[str, Operation]):
    """The operations of one contract, by name (immutable, shared between clients)."""

    def __init__(self, operations: Mapping[str, Operation], source: str = "") -> None:
        self._ops = MappingProxyType(dict(operations))
        self.source = source

    def __getitem__(self, name: str) -> Operation:
        return self._ops[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._ops)

    def __len__(self) -> int:
        return len(self._ops)

    def operation(self, name: str) -> Operation:
        """The operation ``name``; InvalidInputError (nothing sent) when there is none."""
        op = self._ops.get(name)
        if op is None:
            raise InvalidInputError(f"the contract in use has no operation {name!r} "
                                    "(engage-soap operations lists them)")
        return op

    def describe(self) -> dict[str, dict[str, Any]]:
        """Every operation as plain data, by name in order."""
        return {name: self._ops[name].describe() for name in sorted(self._ops)}

    def __repr__(self) -> str:
        return f"ServiceModel({len(self._ops)} operations from {self.source or '?'})"
