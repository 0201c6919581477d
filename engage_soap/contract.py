"""Drift check: how a tenant's WSDL differs from the bundled one, and whether it breaks us.

Both WSDLs are compiled into the same plans the client uses, then compared operation by
operation, element by element (request and reply, recursively)::

    from engage_soap.contract import compare, FACADE_OPERATIONS
    report = compare(load_wsdl(None), load_wsdl(tenant_wsdl), FACADE_OPERATIONS)
    report.compatible, report.differences

Kinds of difference, and when one breaks a client built on the bundle: a missing
operation or element (breaking), a new operation (not), a new required request element
(breaking) or reply element (not: unknown reply elements are skipped), a new optional
element (not), a changed type (breaking), a narrower cardinality (breaking; a wider one is
not), a changed element order (breaking).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from .envelope import OperationPlan
from .schema import ComplexPlan, Field

__all__ = ["FACADE_OPERATIONS", "Difference", "DriftReport", "compare"]

# The operations the facade itself calls: what a client built on the bundle relies on.
FACADE_OPERATIONS = ("contactGet", "contactCreate", "messageSendSingle", "systemGetApiVersion")


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


def _occurs(f: Field) -> str:
    return f"{f.min_occurs}..{'n' if f.max_occurs is None else f.max_occurs}"


def _narrower(bundled: Field, tenant: Field) -> bool:
    """True when the tenant allows less than the bundle does."""
    b_max = float("inf") if bundled.max_occurs is None else bundled.max_occurs
    t_max = float("inf") if tenant.max_occurs is None else tenant.max_occurs
    return tenant.min_occurs > bundled.min_occurs or t_max < b_max


def _compare_fields(operation: str, path: str, bundled: ComplexPlan, tenant: ComplexPlan,
                    request: bool, out: list[Difference], seen: set[tuple[int, int]]) -> None:
    key = (id(bundled), id(tenant))
    if key in seen:  # a type met again (shared by several fields): compared once
        return
    seen.add(key)
    for f in bundled.fields:
        where = f"{path}/{f.name}"
        other = tenant.by_name.get(f.name)
        if other is None:
            out.append(Difference("missing-element", operation, where, f.plan.type_name, None,
                                  True))
            continue
        if f.complex is not None and other.complex is not None:
            _compare_fields(operation, where, f.complex, other.complex, request, out, seen)
        elif (f.complex is None) != (other.complex is None) or (
                f.complex is None and f.plan.type_name != other.plan.type_name):
            out.append(Difference("type-changed", operation, where, f.plan.type_name,
                                  other.plan.type_name, True))
        if _occurs(f) != _occurs(other):
            out.append(Difference("cardinality-changed", operation, where, _occurs(f),
                                  _occurs(other), _narrower(f, other)))
    for f in tenant.fields:
        if f.name not in bundled.by_name:
            required = bool(f.min_occurs)
            out.append(Difference("new-required-element" if required
                                  else "new-optional-element", operation,
                                  f"{path}/{f.name}", None, f.plan.type_name,
                                  required and request))
    common = [f.name for f in bundled.fields if f.name in tenant.by_name]
    theirs = [f.name for f in tenant.fields if f.name in bundled.by_name]
    if common != theirs:
        out.append(Difference("order-changed", operation, path or "/", ", ".join(common),
                              ", ".join(theirs), True))


def compare(bundled: Mapping[str, OperationPlan], tenant: Mapping[str, OperationPlan],
            operations: Iterable[str] | None = FACADE_OPERATIONS) -> DriftReport:
    """Differences between two compiled WSDLs for ``operations`` (None: all of both)."""
    names = sorted(set(bundled) | set(tenant)) if operations is None else list(operations)
    out: list[Difference] = []
    for name in names:
        ours, theirs = bundled.get(name), tenant.get(name)
        if ours is None and theirs is None:
            continue
        if theirs is None:
            out.append(Difference("missing-operation", name, "", name, None, True))
            continue
        if ours is None:
            out.append(Difference("new-operation", name, "", None, name, False))
            continue
        seen: set[tuple[int, int]] = set()
        _compare_fields(name, "request", ours.request, theirs.request, True, out, seen)
        seen = set()
        _compare_fields(name, "reply", ours.response, theirs.response, False, out, seen)
    return DriftReport(tuple(out))
