"""Drift check: how a tenant's WSDL differs from the bundled one, and whether it breaks us.

Both WSDLs are compiled into the same plans the client uses, then compared operation by
operation, element by element (request and reply, recursively)::

    from engage_soap.contract import FACADE_OPERATIONS, compare
    from engage_soap.zeep_binding import load_wsdl

    report = compare(load_wsdl(None), load_wsdl("tenant.wsdl"), FACADE_OPERATIONS)
    report.compatible, report.differences

Kinds of difference, and when one breaks a client built on the bundle: a missing
operation or element (breaking), a new operation (not), a new required request element
(breaking) or reply element (not: unknown reply elements are skipped), a new optional
element (not), a changed type (breaking), a narrower cardinality (breaking; a wider one is
not), a changed element order (breaking), an enumeration value removed (breaking) or added
(not), a changed facet of a simple type (length, pattern, range, its base: breaking), a
changed SOAPAction (breaking) and a changed namespace of an operation or element
(breaking). Facets are read from the schema documents, so they are compared when both
sides are :class:`~engage_soap.zeep_binding.LoadedWsdl` (plans alone carry none); facets
of anonymous simple types are not compared.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from lxml import etree

from .envelope import OperationPlan, parse_xml
from .errors import InvalidInputError, ProtocolError
from .schema import ComplexPlan, Field, SimplePlan

if TYPE_CHECKING:
    from .zeep_binding import LoadedWsdl

__all__ = ["FACADE_OPERATIONS", "Difference", "DriftReport", "compare"]

# The operations the facade itself calls: what a client built on the bundle relies on.
FACADE_OPERATIONS = ("contactGet", "contactCreate", "messageSendSingle", "systemGetApiVersion")
_XS = "http://www.w3.org/2001/XMLSchema"


@dataclass(frozen=True)
class Difference:
    """One difference: its kind, where, the bundled and the tenant's value, and whether it
    breaks a client built on the bundled WSDL."""

    kind: str
    operation: str
    path: str
    bundled: str | None
    tenant: str | None
    breaking: bool


@dataclass(frozen=True)
class DriftReport:
    """Every difference found; ``compatible`` when none of them breaks."""

    differences: tuple[Difference, ...] = field(default_factory=tuple)

    @property
    def compatible(self) -> bool:
        return not any(d.breaking for d in self.differences)

    def lines(self) -> list[str]:
        """A line per difference, then the verdict."""
        out = [f"{'BREAKING' if d.breaking else 'ok      '} {d.kind:<22} {d.operation} "
               f"{d.path or '-'}: {d.bundled or '-'} -> {d.tenant or '-'}"
               for d in self.differences]
        return [*out, f"{len(self.differences)} differences; "
                + ("compatible" if self.compatible else "NOT compatible")
                + " with a client built on the bundled WSDL"]

    def as_dict(self) -> dict[str, Any]:
        """``{"compatible": bool, "differences": [{kind, operation, path, ...}]}``."""
        return {"compatible": self.compatible,
                "differences": [asdict(d) for d in self.differences]}


@dataclass(frozen=True)
class _Side:
    """One WSDL as compared: its plans, and the facets of its named simple types."""

    plans: Mapping[str, OperationPlan]
    facets: Mapping[str, str]


def _facets(documents: Mapping[str, bytes]) -> dict[str, str]:
    """Named simple type -> its restriction (base and facets but enumerations), as text.

    zeep keeps no facets, so they are read from the schema documents the WSDL was loaded
    from (enumerations are in the plans already).
    """
    found: dict[str, str] = {}
    for data in documents.values():
        try:
            root = parse_xml(data)
        except ProtocolError:  # zeep read it; a document it skipped has no types for us
            continue
        for simple in root.iter(f"{{{_XS}}}simpleType"):
            restriction = simple.find(f"{{{_XS}}}restriction")
            if not simple.get("name") or restriction is None:
                continue
            facets = sorted(f"{etree.QName(f).localname}={f.get('value', '')}"
                            for f in restriction if isinstance(f.tag, str)
                            and etree.QName(f).localname != "enumeration")
            base = restriction.get("base", "").rpartition(":")[2]
            found[str(simple.get("name"))] = ", ".join([f"base={base}", *facets])
    return found


def _side(wsdl: LoadedWsdl | Mapping[str, OperationPlan]) -> _Side:
    if isinstance(wsdl, Mapping):
        return _Side(wsdl, {})
    return _Side(wsdl.operations, _facets(wsdl.documents))


def _occurs(f: Field) -> str:
    return f"{f.min_occurs}..{'n' if f.max_occurs is None else f.max_occurs}"


def _narrower(bundled: Field, tenant: Field) -> bool:
    """True when the tenant allows less than the bundle does."""
    b_max = float("inf") if bundled.max_occurs is None else bundled.max_occurs
    t_max = float("inf") if tenant.max_occurs is None else tenant.max_occurs
    return tenant.min_occurs > bundled.min_occurs or t_max < b_max


def _namespace(tag: str) -> str:
    return etree.QName(tag).namespace or "(none)"


class _Comparison:
    """The differences of one operation pair, collected into ``out``."""

    def __init__(self, operation: str, bundled: _Side, tenant: _Side,
                 out: list[Difference]) -> None:
        self.operation, self.bundled, self.tenant, self.out = operation, bundled, tenant, out
        self.seen: set[tuple[int, int, bool]] = set()

    def add(self, kind: str, path: str, ours: str | None, theirs: str | None,
            breaking: bool) -> None:
        self.out.append(Difference(kind, self.operation, path, ours, theirs, breaking))

    def simple(self, where: str, ours: SimplePlan, theirs: SimplePlan) -> None:
        """Enumerations and facets of a simple type both sides call by the same name."""
        if ours.choices is not None and theirs.choices is not None:
            removed, added = ours.choices - theirs.choices, theirs.choices - ours.choices
            if removed:
                self.add("enumeration-removed", where, ", ".join(sorted(removed)), None, True)
            if added:
                self.add("enumeration-added", where, None, ", ".join(sorted(added)), False)
        elif (ours.choices is None) != (theirs.choices is None):  # breaking if now closed
            self.add("enumeration-changed", where,
                     ", ".join(sorted(ours.choices or ())) or "any value",
                     ", ".join(sorted(theirs.choices or ())) or "any value",
                     theirs.choices is not None)
        mine = self.bundled.facets.get(ours.type_name)
        other = self.tenant.facets.get(theirs.type_name)
        if self.bundled.facets and self.tenant.facets and mine != other:
            self.add("facet-changed", where, mine, other, True)

    def fields(self, path: str, bundled: ComplexPlan, tenant: ComplexPlan,
               request: bool) -> None:
        key = (id(bundled), id(tenant), request)
        if key in self.seen:  # a type met again (shared by several fields): compared once
            return
        self.seen.add(key)
        for f in bundled.fields:
            where = f"{path}/{f.name}"
            other = tenant.by_name.get(f.name)
            if other is None:
                self.add("missing-element", where, f.plan.type_name, None, True)
                continue
            if f.tag != other.tag:
                self.add("namespace-changed", where, _namespace(f.tag), _namespace(other.tag),
                         True)
            if f.complex is not None and other.complex is not None:
                self.fields(where, f.complex, other.complex, request)
            elif isinstance(f.plan, SimplePlan) and isinstance(other.plan, SimplePlan) \
                    and f.plan.type_name == other.plan.type_name:
                self.simple(where, f.plan, other.plan)
            else:
                self.add("type-changed", where, f.plan.type_name, other.plan.type_name, True)
            if _occurs(f) != _occurs(other):
                self.add("cardinality-changed", where, _occurs(f), _occurs(other),
                         _narrower(f, other))
        for f in tenant.fields:
            if f.name not in bundled.by_name:
                required = bool(f.min_occurs)
                self.add("new-required-element" if required else "new-optional-element",
                         f"{path}/{f.name}", None, f.plan.type_name, required and request)
        common = [f.name for f in bundled.fields if f.name in tenant.by_name]
        theirs = [f.name for f in tenant.fields if f.name in bundled.by_name]
        if common != theirs:
            self.add("order-changed", path or "/", ", ".join(common), ", ".join(theirs), True)

    def operation_pair(self, ours: OperationPlan, theirs: OperationPlan) -> None:
        if ours.soap_action != theirs.soap_action:
            self.add("soap-action-changed", "", repr(ours.soap_action),
                     repr(theirs.soap_action), True)
        for what, mine, other in (("request", ours.request_tag, theirs.request_tag),
                                  ("reply", ours.response_tag, theirs.response_tag)):
            if mine != other:
                self.add("namespace-changed", what, _namespace(mine), _namespace(other), True)
        self.fields("request", ours.request, theirs.request, True)
        self.fields("reply", ours.response, theirs.response, False)


def _check_names(names: list[str], *known: Iterable[str]) -> None:
    """InvalidInputError naming each operation neither WSDL has (and the closest names)."""
    every = sorted(set().union(*known))
    unknown = [n for n in names if n not in every]
    if unknown:
        hints = [f"{n!r}" + (f" (did you mean {', '.join(close)}?)" if (
            close := difflib.get_close_matches(n, every, 3, 0.6)) else "") for n in unknown]
        raise InvalidInputError(f"unknown operation{'s' if len(unknown) > 1 else ''} "
                                f"{', '.join(hints)}: neither WSDL has "
                                f"{'them' if len(unknown) > 1 else 'it'}")


def compare(bundled: LoadedWsdl | Mapping[str, OperationPlan],
            tenant: LoadedWsdl | Mapping[str, OperationPlan],
            operations: Iterable[str] | None = FACADE_OPERATIONS) -> DriftReport:
    """Differences between two WSDLs (loaded, or their compiled plans) for ``operations``
    (None: all of both). A name neither WSDL has raises InvalidInputError."""
    ours, theirs = _side(bundled), _side(tenant)
    if operations is None:
        names = sorted(set(ours.plans) | set(theirs.plans))
    else:
        names = list(operations)
        _check_names(names, ours.plans, theirs.plans)
    out: list[Difference] = []
    for name in names:
        mine, other = ours.plans.get(name), theirs.plans.get(name)
        if other is None:
            out.append(Difference("missing-operation", name, "", name, None, True))
        elif mine is None:
            out.append(Difference("new-operation", name, "", None, name, False))
        else:
            _Comparison(name, ours, theirs, out).operation_pair(mine, other)
    return DriftReport(tuple(out))
