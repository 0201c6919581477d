"""Static types for ``call``, generated from the compiled schema plans.

Each operation becomes one ``typing.overload`` of ``call``: its name as a ``Literal``, its
arguments keyword-only, its reply a TypedDict. The types follow the wire layer's own rules:

* arguments accept what :func:`engage_soap.envelope.render_request` accepts: optional
  elements may be left out or None, repeated ones are sequences, enumerations are
  ``Literal`` of the values the schema lists;
* replies say what :func:`engage_soap.envelope.read_fields` returns: every key is there,
  a single element is ``T | None`` (the reader gives None for an element the server left
  out or sent as nil, required or not), a repeated one a ``list`` whose items may be None,
  and an enumeration an open ``str`` (newer servers add values).

Only the service model is read (each operation's request and reply :class:`ComplexPlan`),
never anything SOAP-specific. :func:`package_module` writes ``engage_soap/typed_operations.py``
(``python -m engage_soap.typegen`` regenerates it); :func:`client_module` writes the module
of ``engage-soap typegen`` for a tenant's own WSDL.
"""

from __future__ import annotations

import json
import keyword
import re
import sys
import typing
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Protocol

from .errors import ConfigurationError
from .schema import ComplexPlan, Field, SimplePlan

__all__ = ["OperationTypes", "client_module", "package_module"]

PACKAGE_MODULE = Path(__file__).resolve().parent / "typed_operations.py"
_WIDTH = 100


class OperationTypes(Protocol):
    """What the generator reads of an operation (a :class:`~engage_soap.service.Operation`):
    its request and reply plans."""

    @property
    def request(self) -> ComplexPlan: ...

    @property
    def reply(self) -> ComplexPlan: ...


# What a simple type's converter returns on read -> what its writer accepts, as a type.
# (schema.simple_plan: ints and bools as such; decimals as int, float or Decimal; base64Binary as
# bytes-like or a str of base64 text.)
_ARGUMENT = {int: "int", bool: "bool", str: "str", Decimal: "Decimal | float",
             bytes: "bytes | bytearray | memoryview | str"}
_REPLY = {int: "int", bool: "bool", str: "str", Decimal: "Decimal", bytes: "bytes"}

_CALL_DOC = '''"""Call any operation of the WSDL in use; returns the reply as plain data.

        Arguments are named like the operation's elements, nested values as dicts and
        repeated ones as lists, e.g. ``client.call("membershipSubscribeByEmail",
        email="a@example.com", groupId=4711, subscriptionMode="OPT_IN")``. They are
        checked against the schema before any request. Faults are typed, the rate limit
        applies, and only reads (see ``READ_OPERATIONS``) are retried once they may have
        reached the server. Typed per operation for mypy and editors (see the README).
        """'''


def _unsupported(where: str, what: str) -> ConfigurationError:
    return ConfigurationError(f"{where}: {what}; engage-soap typegen cannot type it")


def _is_identifier(name: str) -> bool:
    return name.isidentifier() and not keyword.iskeyword(name)


def _identifier(name: str, where: str) -> str:
    if not _is_identifier(name):
        raise _unsupported(f"{where}/{name}", f"the argument name {name!r} is not a Python "
                                              "identifier (it cannot be a keyword argument)")
    return name


def _class_name(text: str) -> str:
    name = re.sub(r"\W", "_", text)
    name = name[:1].upper() + name[1:]
    return name if name.isidentifier() else f"T{name}"


def _python_type(plan: SimplePlan, where: str) -> type:
    try:
        returned = typing.get_type_hints(plan.from_text).get("return")
    except (NameError, TypeError):
        returned = None
    if returned not in _REPLY:
        raise _unsupported(where, f"the simple type {plan.type_name!r} reads as {returned!r}")
    assert isinstance(returned, type)
    return returned


@dataclass
class _Namer:
    """The module's names: TypedDicts and Literal aliases, each plan named once."""

    taken: set[str]
    definitions: list[str] = field(default_factory=list)
    _named: list[tuple[object, str, str]] = field(default_factory=list)  # (plan, role, name)

    def lookup(self, plan: object, role: str) -> str | None:
        return next((name for p, r, name in self._named if r == role and p == plan), None)

    def claim(self, plan: object, role: str, wanted: str) -> str:
        name, n = wanted, 1
        while name in self.taken:
            n += 1
            name = f"{wanted}{n}"
        self.taken.add(name)
        self._named.append((plan, role, name))
        return name


def _wrap(head: str, items: list[str], tail: str, indent: str) -> str:
    """``head + items + tail`` on one line if it fits, else one item a line."""
    line = f"{indent}{head}{', '.join(items)}{tail}"
    if len(line) < _WIDTH:
        return line
    inner = indent + "    "
    return "\n".join([f"{indent}{head}", *(f"{inner}{item}," for item in items),
                      f"{indent}{tail}"])


class _Types:
    """Collects the TypedDicts and aliases that the overloads refer to."""

    def __init__(self, reserved: set[str]) -> None:
        self.names = _Namer(set(reserved))

    # ------------------------------------------------------------ replies

    def reply_type(self, f: Field, where: str) -> str:
        """A reply field as the reader returns it: ``T | None``, or ``list[T | None]``."""
        here = f"{where}/{f.name}"
        if f.complex is not None:
            inner = self.reply_dict(f.complex, f.name, here)
        else:
            assert isinstance(f.plan, SimplePlan)
            inner = _REPLY[_python_type(f.plan, here)]
        return f"list[{inner} | None]" if f.repeated else f"{inner} | None"

    def reply_dict(self, plan: ComplexPlan, element: str, where: str,
                   name: str | None = None) -> str:
        known = self.names.lookup(plan, "reply")
        if known is not None:
            return known
        wanted = name or _class_name(element if plan.type_name == "anonymous"
                                     else plan.type_name)
        items = [(f.name, self.reply_type(f, where)) for f in plan.fields]
        name = self.names.claim(plan, "reply", wanted)
        self._typeddict(name, f"{plan.type_name}, as read from a reply", items)
        return name

    # ------------------------------------------------------------ arguments

    def argument_type(self, f: Field, where: str) -> str:
        """What the writer accepts for ``f``, without the None of an optional element."""
        here = f"{where}/{f.name}"
        if f.complex is not None:
            item = self.argument_dict(f.complex, f.name, here)
        else:
            assert isinstance(f.plan, SimplePlan)
            item = self.simple_argument(f.plan, here)
        if f.nillable:
            item = f"{item} | None"
        if f.repeated:
            return f"Sequence[{item}]"
        return item

    def optional(self, f: Field, where: str) -> str:
        text = self.argument_type(f, where)
        return text if f.min_occurs or text.endswith(" | None") else f"{text} | None"

    def simple_argument(self, plan: SimplePlan, where: str) -> str:
        if plan.choices is None:
            return _ARGUMENT[_python_type(plan, where)]
        key = (plan.type_name, plan.choices)
        known = self.names.lookup(key, "choices")
        if known is not None:
            return known
        name = self.names.claim(key, "choices", _class_name(plan.type_name))
        values = [json.dumps(v) for v in sorted(plan.choices)]  # a Python string literal too
        self.names.definitions.append(_wrap(f"{name} = Literal[", values, "]", ""))
        return name

    def argument_dict(self, plan: ComplexPlan, element: str, where: str) -> str:
        known = self.names.lookup(plan, "argument")
        if known is not None:
            return known
        base = _class_name(element if plan.type_name == "anonymous" else plan.type_name)
        items = [(f.name, self.argument_type(f, where) if f.min_occurs
                  else f"NotRequired[{self.optional(f, where)}]") for f in plan.fields]
        name = self.names.claim(plan, "argument", f"{base}Arg")
        self._typeddict(name, f"{plan.type_name}, as an argument", items)
        return name

    def _typeddict(self, name: str, doc: str, items: list[tuple[str, str]]) -> None:
        """A TypedDict: a class, or the functional form where a key is no identifier."""
        if all(_is_identifier(key) for key, _ in items):
            body = [f"    {key}: {text}" for key, text in items]
            definition = "\n".join([f"class {name}(TypedDict):", f'    """{doc}"""',
                                    *([""] if body else []), *body])
        else:
            definition = f"# {doc}\n" + _wrap(f'{name} = TypedDict("{name}", {{', [
                f'"{key}": "{text}"' for key, text in items], "})", "")
        self.names.definitions.append(definition)

    # ------------------------------------------------------------ operations

    def signature(self, name: str, op: OperationTypes, returns: Callable[[str], str],
                  indent: str) -> str:
        """``def call(self, operation: Literal[name], /, *, ...) -> reply: ...``."""
        where = name
        params = []
        for f in op.request.fields:
            key = _identifier(f.name, where)
            params.append(f"{key}: {self.argument_type(f, where)}" if f.min_occurs
                          else f"{key}: {self.optional(f, where)} = None")
        names = {f.name for f in op.request.fields}
        this = next(n for n in ("self", "self_", "_self") if n not in names)
        operation = next(n for n in ("operation", "operation_", "_operation") if n not in names)
        reply = self.reply_dict(op.reply, f"{name}Response", f"{name}Response",
                                name=_class_name(f"{name}Reply"))
        head = [f"{this}", f'{operation}: Literal["{name}"]', "/"]
        return _wrap("def call(", [*head, *(["*", *params] if params else [])],
                     f") -> {returns(reply)}: ...", indent)


_HEADER = '''"""{doc}

Generated by engage_soap.typegen from {source}; do not edit.
"""

from __future__ import annotations

'''
# name -> the import line it needs, in the order they are written
_IMPORTS = {"sys": "import sys", "Coroutine": "from collections.abc import {}",
            "Mapping": "from collections.abc import {}",
            "Sequence": "from collections.abc import {}", "Decimal": "from decimal import {}",
            **dict.fromkeys(["TYPE_CHECKING", "Any", "Literal", "Protocol", "TypedDict", "cast",
                             "overload"], "from typing import {}")}
_CHECKING = """
if TYPE_CHECKING:
    if sys.version_info >= (3, 11):
        from typing import NotRequired
    else:  # a name for type checkers only: never imported at run time
        from typing_extensions import NotRequired
"""


def _isort(name: str) -> tuple[int, str]:
    """isort's order: CONSTANTS, then Classes, then functions."""
    return (0 if name.isupper() else 1 if name[:1].isupper() else 2, name)


def _imports(text: str, checking: list[str]) -> str:
    """The import block of a module whose code is ``text``."""
    needed = {"sys", "TYPE_CHECKING"} if "NotRequired" in text else set()
    if checking:
        needed.add("TYPE_CHECKING")
    used = [name for name in _IMPORTS
            if name in needed or re.search(rf"\b{name}\b", text)]
    lines: dict[str, list[str]] = {}
    for name in used:
        lines.setdefault(_IMPORTS[name], []).append(name)
    block = "\n".join(line.format(", ".join(sorted(names, key=_isort)))
                      for line, names in lines.items())
    guarded = _CHECKING if "NotRequired" in text else "\nif TYPE_CHECKING:\n" if checking else ""
    return block + "\n" + guarded + "".join(f"    {line}\n" for line in checking)


def _module(operations: Mapping[str, OperationTypes], source: str, doc: str,
            classes: Callable[[_Types, list[tuple[str, OperationTypes]]], list[str]],
            checking: tuple[str, ...] = ()) -> str:
    ops = sorted(operations.items())
    if not ops:
        raise _unsupported(source, "the WSDL has no operations")
    types = _Types({"NotRequired", "annotations", "Client", "typed", "TypedCalls",
                    "AsyncTypedCalls", *_IMPORTS})
    body = classes(types, ops)
    code = "\n\n\n".join(part.rstrip() for part in [*types.names.definitions, *body])
    return (_HEADER.format(doc=doc, source=source) + _imports(code, list(checking))
            + "\n\n" + code.rstrip() + "\n")


def _overloads(types: _Types, ops: list[tuple[str, OperationTypes]],
               returns: Callable[[str], str]) -> Iterator[str]:
    for name, op in ops:
        sig = types.signature(name, op, returns, "    ")
        yield f"    @overload\n{sig}" if len(ops) > 1 else sig


def package_module(operations: Mapping[str, OperationTypes],
                   source: str = "wsdl/ecmapi.wsdl") -> str:
    """``engage_soap/typed_operations.py``: the mixins that type ``EngageClient.call``
    (``TypedCalls``) and an async client's (``AsyncTypedCalls``)."""
    if len(operations) < 2:
        raise _unsupported(source, "the package module needs two operations or more")

    def classes(types: _Types, ops: list[tuple[str, OperationTypes]]) -> list[str]:
        sync = "\n\n".join(_overloads(types, ops, lambda reply: reply))
        coro = "\n\n".join(_overloads(types, ops,
                                      lambda reply: f"Coroutine[Any, Any, {reply}]"))
        return [
            'class TypedCalls:\n'
            '    """``call`` typed per operation; the class defines ``_call``, its one '
            'call path."""\n\n'
            f"{sync}\n\n"
            "    def call(self, operation: str, /, **arguments: Any) -> Any:\n"
            f"        {_CALL_DOC}\n"
            "        return self._call(operation, arguments)\n\n"
            "    def _call(self, operation: str, arguments: Mapping[str, Any], /"
            ") -> dict[str, Any]:\n"
            "        raise NotImplementedError\n",
            'class AsyncTypedCalls:\n'
            '    """The same for an async client: ``call`` returns the coroutine of its '
            '``_call``."""\n\n'
            f"{coro}\n\n"
            "    def call(self, operation: str, /, **arguments: Any"
            ") -> Coroutine[Any, Any, Any]:\n"
            '        """Call any operation of the WSDL in use; await the reply."""\n'
            "        return self._call(operation, arguments)\n\n"
            "    async def _call(self, operation: str, arguments: Mapping[str, Any], /"
            ") -> dict[str, Any]:\n"
            "        raise NotImplementedError\n"]

    return _module(operations, source, "Typed ``call`` for every operation of the bundled "
                   "WSDL: mixins of the clients.", classes)


def client_module(operations: Mapping[str, OperationTypes], source: str) -> str:
    """The module of ``engage-soap typegen``: a Protocol ``Client`` with the overloaded
    ``call`` of ``source``'s operations, and ``typed(client) -> Client``."""

    def classes(types: _Types, ops: list[tuple[str, OperationTypes]]) -> list[str]:
        calls = "\n\n".join(_overloads(types, ops, lambda reply: reply))
        return [f'class Client(Protocol):\n    """An EngageClient of this WSDL, as seen by '
                f'a type checker."""\n\n{calls}\n',
                'def typed(client: EngageClient) -> Client:\n'
                '    """``client`` itself, its ``call`` typed by this WSDL\'s operations."""\n'
                '    return cast("Client", client)\n']

    return _module(operations, source, "Typed ``call`` for the operations of a tenant's "
                   "WSDL: ``typed(client).call(...)``.", classes,
                   checking=("from engage_soap import EngageClient",))


def main() -> None:
    """Regenerate ``engage_soap/typed_operations.py`` from the bundled WSDL."""
    from .zeep_binding import load_wsdl

    PACKAGE_MODULE.write_text(package_module(load_wsdl(None).model), encoding="utf-8")
    print(f"wrote {PACKAGE_MODULE}", file=sys.stderr)


if __name__ == "__main__":
    main()
