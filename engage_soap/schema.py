"""The service's schema as plans: what each operation's request and reply hold.

A plan is compiled once from a contract (today the WSDL's XSD, see ``zeep_binding``) and
is protocol-neutral: fields with names, occurrence, nillability and simple types that
convert between Python values and text. :func:`write_fields` is the one check of a
request against a plan (every wire writes through it, each with its own
:class:`Writer`: XML elements for SOAP, JSON values for REST) and :func:`complete` the
one rule for what a reply leaves out. Nothing here knows a protocol.
"""

from __future__ import annotations

import base64
import binascii
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, Generic, Protocol, TypeVar

from .errors import InvalidInputError, ProtocolError
from .models import check_text

__all__ = ["ComplexPlan", "Field", "SimplePlan", "Writer", "complete", "simple_plan",
           "write_fields"]


@dataclass(frozen=True)
class SimplePlan:
    """How one XSD simple type converts between Python values and element text.

    ``type_name`` is the schema's name for it (``long``, ``string``, ``subscriptionMode``);
    ``choices`` the enumeration values a request may carry (None: any); replies are read
    as open strings, since newer servers add values. ``kind`` says how a format with typed
    values (JSON) writes it: ``integer``, ``boolean``, ``decimal``, ``base64Binary`` or
    ``string``.
    """

    type_name: str
    to_text: Callable[[Any, str], str]
    from_text: Callable[[str, str], Any]
    choices: frozenset[str] | None = None
    kind: str = "string"

    def render(self, value: Any, where: str) -> str:
        text = self.to_text(value, where)
        if self.choices is not None and text not in self.choices:
            raise InvalidInputError(f"{where} must be one of {', '.join(sorted(self.choices))}"
                                    f", got {text!r}")
        return text


@dataclass(frozen=True)
class Field:
    """One child element of a complex type."""

    name: str
    tag: str
    min_occurs: int
    max_occurs: int | None  # None: unbounded
    plan: SimplePlan | ComplexPlan
    nillable: bool = False
    repeated: bool = field(init=False, repr=False, compare=False)
    # The plan again, split by kind, so the reader needs no isinstance per element.
    complex: ComplexPlan | None = field(init=False, repr=False, compare=False)
    from_text: Callable[[str, str], Any] | None = field(init=False, repr=False,
                                                          compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "repeated", self.max_occurs is None or self.max_occurs > 1)
        plan = self.plan
        complex_plan = plan if isinstance(plan, ComplexPlan) else None
        object.__setattr__(self, "complex", complex_plan)
        object.__setattr__(self, "from_text",
                           plan.from_text if isinstance(plan, SimplePlan) else None)

    def describe(self) -> dict[str, Any]:
        """This field as plain data: name, type, occurrence, and its fields or choices."""
        out: dict[str, Any] = {"name": self.name, "type": self.plan.type_name,
                               "required": bool(self.min_occurs), "repeated": self.repeated}
        if self.nillable:
            out["nillable"] = True
        if isinstance(self.plan, ComplexPlan):
            out["fields"] = [f.describe() for f in self.plan.fields]
        elif self.plan.choices is not None:
            out["choices"] = sorted(self.plan.choices)
        return out


@dataclass(frozen=True)
class ComplexPlan:
    """A complex type as an ordered sequence of fields.

    Replies may carry children the plan does not declare (newer servers append some):
    the reader skips them. ``open`` says the schema itself ends in a wildcard.
    """

    type_name: str
    fields: tuple[Field, ...]
    open: bool = False
    by_tag: Mapping[str, Field] = field(init=False, repr=False)
    by_name: Mapping[str, Field] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "by_tag", {f.tag: f for f in self.fields})
        object.__setattr__(self, "by_name", {f.name: f for f in self.fields})

    def find(self, path: str) -> Field | None:
        """The field at ``path`` (names joined by ``/``), or None."""
        plan: ComplexPlan | None = self
        found: Field | None = None
        for name in path.split("/"):
            found = plan.by_name.get(name) if plan is not None else None
            if found is None:
                return None
            plan = found.complex
        return found


# ---------------------------------------------------------------- writing (the one check)

N = TypeVar("N")


class Writer(Protocol, Generic[N]):
    """Where :func:`write_fields` puts what it checked: one wire format's node builder."""

    def text(self, parent: N, f: Field, text: str) -> None:
        """Add field ``f`` with a simple value, already rendered as text."""
        ...

    def nil(self, parent: N, f: Field) -> None:
        """Add field ``f`` as an explicit null (a required nillable field left empty)."""
        ...

    def complex(self, parent: N, f: Field) -> N:
        """Add field ``f`` as a complex value; return the node its fields go into."""
        ...

    def end(self, parent: N, f: Field) -> None:
        """The complex value of ``f`` begun by :meth:`complex` has all its fields."""
        ...

    def empty(self, parent: N, f: Field) -> None:
        """Repeated field ``f`` was given as an empty list (XML writes nothing)."""
        ...


def write_fields(writer: Writer[N], parent: N, plan: ComplexPlan, value: Mapping[str, Any],
                 path: str) -> None:
    """Check ``value`` (plain data shaped like ``plan``) and write it into ``parent``.

    Raises InvalidInputError naming the field path (``contactGet/identifier/type``) when
    ``value`` does not fit: an unknown or missing field, a wrong type, a bad count.
    """
    if type(value) is not dict and not isinstance(value, Mapping):  # dict: no ABC check
        raise InvalidInputError(f"{path} must be a mapping, not {type(value).__name__}")
    by_name = plan.by_name
    if not by_name.keys() >= value.keys():
        unknown = next(k for k in value if k not in by_name)
        known = ", ".join(by_name) or "none"
        raise InvalidInputError(f"{path} has no field {unknown!r} in the WSDL in use "
                                f"(fields: {known})")
    for f in plan.fields:
        v = value.get(f.name)
        items: Iterable[Any]
        if v is None:
            if not f.min_occurs:
                continue
            if f.repeated or not f.nillable:
                raise InvalidInputError(f"{path}/{f.name} is required")
            items = (None,)  # a required nillable element: sent as nil
        elif not f.repeated:
            items = (v,)
        elif type(v) is list or type(v) is tuple:
            items = v
        elif isinstance(v, (str, bytes, Mapping)) or not isinstance(v, Iterable):
            raise InvalidInputError(f"{path}/{f.name} must be a list")
        else:
            items = list(v)
        if f.repeated and (len(items) < f.min_occurs
                           or (f.max_occurs is not None
                               and len(items) > f.max_occurs)):
            raise InvalidInputError(f"{path}/{f.name} must have between {f.min_occurs} "
                                    f"and {f.max_occurs or 'any number of'} items")
        where = f"{path}/{f.name}"
        complex_plan = f.complex
        if not items:
            writer.empty(parent, f)
        for item in items:
            if item is None:
                if not f.nillable:
                    raise InvalidInputError(f"{where} must not be None")
                writer.nil(parent, f)
            elif complex_plan is not None:
                write_fields(writer, writer.complex(parent, f), complex_plan, item, where)
                writer.end(parent, f)
            else:
                writer.text(parent, f, f.plan.render(item, where))  # type: ignore[union-attr]


def complete(plan: ComplexPlan, out: dict[str, Any]) -> dict[str, Any]:
    """``out`` (a reply's fields as read) with every field of ``plan`` it lacks filled in,
    in the schema's order: None, or [] for a repeated field. Every wire's reader ends here,
    so a field left out reads alike whatever format it came in."""
    if len(out) == len(plan.fields):
        return out
    return {f.name: out.get(f.name, [] if f.repeated else None) for f in plan.fields}


# Converters, chosen by the XSD builtin a simple type derives from.

def _int_range(lo: int, hi: int) -> Callable[[Any, str], str]:
    def to_text(value: Any, path: str) -> str:
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidInputError(f"{path} must be an int, not {type(value).__name__}")
        if not lo <= value <= hi:
            raise InvalidInputError(f"{path} must be between {lo} and {hi}, got {value}")
        return str(value)
    return to_text


def _int_from_text(text: str, path: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        raise ProtocolError(f"{path} should be an integer, got {text[:40]!r}",
                            request_sent=True) from None


def _bool_to_text(value: Any, path: str) -> str:
    if not isinstance(value, bool):
        raise InvalidInputError(f"{path} must be a bool, not {type(value).__name__}")
    return "true" if value else "false"


def _bool_from_text(text: str, path: str) -> bool:
    t = text.strip()
    if t in ("true", "1"):
        return True
    if t in ("false", "0"):
        return False
    raise ProtocolError(f"{path} should be a boolean, got {text[:40]!r}", request_sent=True)


def _decimal_to_text(value: Any, path: str) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
        raise InvalidInputError(f"{path} must be a number, not {type(value).__name__}")
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidInputError(f"{path} must be finite")
    return str(value)


def _decimal_from_text(text: str, path: str) -> Decimal:
    try:
        return Decimal(text.strip())
    except InvalidOperation:
        raise ProtocolError(f"{path} should be a number, got {text[:40]!r}",
                            request_sent=True) from None


def _b64_to_text(value: Any, path: str) -> str:
    """bytes are encoded; a str must already be base64 text (sent as it is)."""
    if isinstance(value, str):
        try:
            base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise InvalidInputError(f"{path} must be bytes, or a str of base64 text") from None
        return value
    if not isinstance(value, (bytes, bytearray, memoryview)):
        raise InvalidInputError(f"{path} must be bytes, not {type(value).__name__}")
    return base64.b64encode(bytes(value)).decode("ascii")


def _b64_from_text(text: str, path: str) -> bytes:
    try:
        return base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        raise ProtocolError(f"{path} is not valid base64", request_sent=True) from None


def _str_to_text(value: Any, path: str) -> str:
    return check_text(value, path, allow_blank=True)


def _str_from_text(text: str, path: str) -> str:
    return text


_INT_BOUNDS = {"long": 63, "int": 31, "short": 15, "byte": 7}


def simple_plan(kind: str, type_name: str,
                choices: frozenset[str] | None = None) -> SimplePlan:
    """The plan for a simple type named ``type_name`` deriving from builtin ``kind``."""
    if kind in _INT_BOUNDS:
        bits = _INT_BOUNDS[kind]
        return SimplePlan(type_name, _int_range(-(2**bits), 2**bits - 1), _int_from_text,
                          kind="integer")
    if kind == "integer":
        return SimplePlan(type_name, _int_range(-(2**1000), 2**1000), _int_from_text,
                          kind="integer")
    if kind == "boolean":
        return SimplePlan(type_name, _bool_to_text, _bool_from_text, kind="boolean")
    if kind == "decimal":
        return SimplePlan(type_name, _decimal_to_text, _decimal_from_text, kind="decimal")
    if kind == "base64Binary":
        return SimplePlan(type_name, _b64_to_text, _b64_from_text, kind="base64Binary")
    return SimplePlan(type_name, _str_to_text, _str_from_text, choices)
