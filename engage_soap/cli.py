"""The ``engage-soap`` command line: look contacts up, create them, send prepared messages.

Settings: see :mod:`engage_soap.config`. The client, zeep and the sandbox are imported only
when a command runs, so ``--help`` stays fast. A command gets the connection options,
``--json``, ``-v`` and the errors-to-exit-codes handling from one decorator::

    @cli.command("send-bulk")
    @click.option("--message-id", type=int, required=True)
    @engage_command
    def send_bulk(session: Session, message_id: int) -> None:
        with session.client() as client:  # or build_client(session.settings)
            ...
        session.report({"ok": True, ...}, ["text lines"])  # JSON with --json, else text
"""

from __future__ import annotations

import base64
import difflib
import functools
import json
import logging
import re
import sys
import tempfile
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import click

from . import defaults, errors
from .config import SHARED_NAMES, Settings, output_options, resolve_settings, shared_options
from .models import IDENTIFIERS, Attachment, IdentifierField

if TYPE_CHECKING:
    from .bulk import BulkReport
    from .client import EngageClient
    from .models import Contact
    from .sandbox import OutboxEntry, Sandbox
    from .zeep_binding import LoadedWsdl

__all__ = ["EXIT_AUTH", "EXIT_BUSY", "EXIT_CONFIG", "EXIT_FAULT", "EXIT_INTERRUPTED",
           "EXIT_NOT_FOUND", "EXIT_OK", "EXIT_TERMINATED", "EXIT_TRANSPORT", "EXIT_USAGE",
           "Failure", "Session", "Settings", "build_client", "cli", "emit", "engage_command",
           "exit_code_for", "main"]

EXIT_OK = 0            # success
EXIT_USAGE = 2         # bad flags or arguments, missing endpoint or credentials
EXIT_NOT_FOUND = 3     # NoSuchObjectError, ContactNotFoundError
EXIT_FAULT = 4         # any other SOAP fault (EngageFault), InvalidInputError
EXIT_TRANSPORT = 5     # TransportError (timeouts, proxies, throttling), ProtocolError
EXIT_AUTH = 6          # AuthenticationError (HTTP 401/403)
EXIT_CONFIG = 7        # ConfigurationError (config file, WSDL), sandbox cannot start
EXIT_BUSY = 75         # send-bulk: another run holds the job's journal (EX_TEMPFAIL)
EXIT_INTERRUPTED = 130  # Ctrl-C
EXIT_TERMINATED = 143  # send-bulk stopped by SIGTERM (after the calls in flight)
_REDACT, _JSON = "engage_soap.redact", "engage_soap.json"  # ctx.meta keys
_EXIT_CODES: tuple[tuple[type[Exception] | tuple[type[Exception], ...], int], ...] = (
    (errors.NoSuchObjectError, EXIT_NOT_FOUND), (errors.AuthenticationError, EXIT_AUTH),
    ((errors.TransportError, errors.ProtocolError), EXIT_TRANSPORT),
    (errors.ConfigurationError, EXIT_CONFIG), (errors.EngageError, EXIT_FAULT))


def exit_code_for(exc: BaseException) -> int:
    """The exit code of an engage_soap error (most specific class first; 1 for others)."""
    return next((code for kinds, code in _EXIT_CODES if isinstance(exc, kinds)), 1)


class Failure(click.ClickException):
    """A failure shown as one stderr line, ``error: <kind>: <message>``, and its exit code."""

    def __init__(self, kind: str, message: str, exit_code: int, line: str | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.exit_code = exit_code  # type: ignore[misc]  # a ClassVar in click, per instance here
        self.line = line or f"error: {kind}: {message}"

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(self.line, err=True)


class SecretFilter:
    """Removes a password, Basic credentials and URL user info from text (log and error
    lines). Envelopes recorded for tests are redacted by :class:`engage_soap.testing.Redactor`."""

    _AUTH = re.compile(r"(?i)(authorization['\"]?\s*[:=]\s*['\"]?)(basic|bearer)\s+[^\s'\",}]+")
    _USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s]*@")  # to the last @

    def __init__(self, password: str | None = None) -> None:
        self.password = password

    def __call__(self, text: str) -> str:
        if self.password and len(self.password) >= 4:
            text = text.replace(self.password, "***")
        return self._USERINFO.sub(r"\1***@", self._AUTH.sub(r"\1\2 ***", text))


def emit(data: dict[str, Any], indent: int | None = None) -> None:
    """Print one JSON object on stdout (bytes as base64)."""
    click.echo(json.dumps(data, ensure_ascii=False, indent=indent, default=lambda v: (
        base64.b64encode(v).decode("ascii") if isinstance(v, bytes) else str(v))))


# ----------------------------------------------------------------- stderr, errors, the group


class _StderrLog(logging.Handler):
    """While in a ``with`` block: engage_soap log records on stderr (DEBUG with -v), redacted.
    A sandbox in this process logs every envelope: only the sandbox command shows those."""

    def __init__(self, verbose: int, redact: SecretFilter, *, sandbox: bool = False) -> None:
        super().__init__(logging.DEBUG if verbose else logging.WARNING)
        self.redact, self.sandbox, self.logger = redact, sandbox, logging.getLogger("engage_soap")

    def __enter__(self) -> None:
        self.previous = self.logger.level
        self.logger.addHandler(self)
        self.logger.setLevel(min(self.level, self.logger.getEffectiveLevel()))

    def __exit__(self, *_exc: object) -> None:
        self.logger.removeHandler(self)
        self.logger.setLevel(self.previous)

    def emit(self, record: logging.LogRecord) -> None:
        if self.sandbox or record.levelno >= logging.WARNING \
                or not record.name.startswith("engage_soap.sandbox"):
            label = "debug" if record.levelno <= logging.DEBUG else record.levelname.lower()
            click.echo(self.redact(f"{label}: {record.getMessage()}"), err=True)


def _show_warning(show: Callable[..., None], message: Warning | str, category: type[Warning],
                  *args: Any) -> None:
    """A UserWarning (e.g. a password going over plain http) as one ``warning:`` line."""
    if issubclass(category, UserWarning):
        click.echo(f"warning: {message}", err=True)
    else:
        show(message, category, *args)


class _Main(click.Group):
    """Turns errors into one line and their exit code (and the JSON error with --json)."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        ctx.meta[_JSON] = "--json" in (args[:args.index("--")] if "--" in args else args)
        with self._failures(ctx):
            return super().parse_args(ctx, args)

    def invoke(self, ctx: click.Context) -> Any:
        with self._failures(ctx), warnings.catch_warnings():
            warnings.showwarning = functools.partial(_show_warning, warnings.showwarning)
            return super().invoke(ctx)

    @staticmethod
    @contextmanager
    def _failures(ctx: click.Context) -> Iterator[None]:
        try:
            yield
        except (click.ClickException, errors.EngageError, KeyboardInterrupt) as exc:
            if isinstance(exc, KeyboardInterrupt):
                failure: click.ClickException = Failure(
                    "KeyboardInterrupt", "interrupted", EXIT_INTERRUPTED, line="interrupted")
            elif isinstance(exc, errors.EngageError):
                message = ctx.meta.get(_REDACT, SecretFilter())(" ".join(str(exc).split()))
                failure = Failure(type(exc).__name__, message, exit_code_for(exc))
            else:
                failure = exc
            if ctx.meta.get(_JSON):
                emit({"ok": False, "error": {
                    "type": getattr(failure, "kind", type(failure).__name__),
                    "message": failure.format_message(), "exit_code": failure.exit_code}})
            raise failure from None


# ----------------------------------------------------------------- what a command gets


def build_client(settings: Settings, **options: Any) -> EngageClient:
    """An EngageClient from resolved settings (``options`` add to them); a usage error if a
    required one is missing."""
    missing = [key for key in ("endpoint", "username", "password") if not getattr(settings, key)]
    if missing:
        hints = [f"--{k} / ENGAGE_{k.upper()}" if k != "password" else "ENGAGE_PASSWORD"
                 for k in missing]
        raise click.UsageError(
            f"no {', '.join(missing)} given: use {', '.join(hints)}, or set them under [engage] "
            f"in {settings.config_file or '~/.config/engage-soap/config.toml'} (or use "
            "--sandbox to try the embedded sandbox)")
    from .client import EngageClient
    from .retry import RetryPolicy

    assert settings.endpoint and settings.username and settings.password is not None
    return EngageClient(settings.endpoint, settings.username, settings.password,
                        wsdl=settings.wsdl, timeout=settings.timeout, verify=settings.verify,
                        retry=RetryPolicy(max_attempts=settings.retries + 1),
                        rate_store=settings.rate_store, protocol=settings.protocol,
                        **options)


@dataclass
class Session:
    """What an :func:`engage_command` gets: the resolved settings and a client."""

    settings: Settings
    redact: SecretFilter
    sandbox: Sandbox | None = None

    @contextmanager
    def client(self, **options: Any) -> Iterator[EngageClient]:
        """A client of the endpoint (or of an embedded sandbox with --sandbox), then closed;
        ``options`` go to EngageClient."""
        with ExitStack() as stack:
            if self.settings.sandbox:
                from .sandbox import DEFAULT_PASSWORD, DEFAULT_USERNAME, Sandbox

                self.sandbox = stack.enter_context(Sandbox("127.0.0.1", 0))
                rest = self.settings.protocol == "rest"
                url = self.sandbox.rest_url if rest else self.sandbox.url
                self.settings = replace(
                    self.settings, endpoint=url, username=DEFAULT_USERNAME,
                    password=DEFAULT_PASSWORD, sources={**self.settings.sources, **dict.fromkeys(
                        ("endpoint", "username", "password"), "from --sandbox")})
            self.redact.password = self.settings.password
            for line in self.settings.describe() if self.settings.verbose else ():
                click.echo(self.redact(f"debug: {line}"), err=True)
            yield stack.enter_context(build_client(self.settings, **options))

    def report(self, data: dict[str, Any], lines: Sequence[str]) -> None:
        """The result: ``data`` as one JSON object with --json, else ``lines`` of text."""
        if self.settings.json:
            emit(data)
        else:
            click.echo("\n".join(lines))

    def outbox(self) -> list[OutboxEntry]:
        """What the embedded sandbox sent in this command (nothing without --sandbox)."""
        if self.sandbox is None:
            return []
        with self.sandbox.state.lock:
            return list(self.sandbox.state.outbox)


def engage_command(fn: Callable[..., None]) -> Callable[..., None]:
    """Give a command the connection options, --config, --sandbox, --json and -v, and call it
    as ``fn(session, **its own options)``; errors become exit codes (see ``_Main``)."""

    @functools.wraps(fn)
    def command(**kwargs: Any) -> None:
        ctx = click.get_current_context()
        settings = resolve_settings(ctx)
        ctx.meta[_REDACT] = redact = SecretFilter(settings.password)
        with _StderrLog(settings.verbose, redact):
            fn(Session(settings, redact), **{k: v for k, v in kwargs.items()
                                             if k not in SHARED_NAMES})

    return shared_options()(command)


def _pairs(ctx: click.Context, param: click.Parameter, values: Sequence[str]) -> dict[str, str]:
    """Parse repeated NAME=VALUE options into a dict (no duplicate names)."""
    out: dict[str, str] = {}
    for item in values:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise click.BadParameter(f"expected NAME=VALUE, got {item!r}", ctx, param)
        if name.strip() in out:
            raise click.BadParameter(f"{name.strip()!r} is given twice", ctx, param)
        out[name.strip()] = value
    return out


class _AliasedOption(click.Option):
    """An option whose old spellings (its later names) work but are not shown in --help."""

    def get_help_record(self, ctx: click.Context) -> tuple[str, str] | None:
        names, self.opts = self.opts, self.opts[:1]
        try:
            return super().get_help_record(ctx)
        finally:
            self.opts = names


_ID_OPTIONS = {  # identifier keyword: metavar, help, its old spellings (hidden in --help)
    "email": ("ADDRESS", "E-mail address.", ()),
    "mobile_number": ("NUMBER", "Mobile number.", ("--mobile",)),
    "app_alias": ("ALIAS", "Application alias.", ()),
    "external_id": ("ID", "External identifier.", ("--external",)),
    "contact_id": ("ID", "Contact id.", ("--id",)),
}


def _identifier_options(*, with_id: bool = True) -> Callable[[Callable[..., None]],
                                                            Callable[..., None]]:
    """--email, --mobile-number, --app-alias, --external-id [, --contact-id]."""
    def decorate(fn: Callable[..., None]) -> Callable[..., None]:
        for f in reversed(_id_fields(with_id)):
            metavar, text, old = _ID_OPTIONS[f.name]
            fn = click.option(_flag(f), *old, f.name, cls=_AliasedOption,
                              metavar=metavar, help=text,
                              type=click.IntRange(min=1) if f.name == "contact_id" else None)(fn)
        return fn
    return decorate


def _id_fields(with_id: bool) -> list[IdentifierField]:
    return [f for f in IDENTIFIERS if with_id or f.name != "contact_id"]


def _flag(f: IdentifierField) -> str:
    return "--" + f.name.replace("_", "-")


def _given_identifiers(values: dict[str, Any], *, one: bool = True,
                       with_id: bool = True) -> list[tuple[IdentifierField, Any]]:
    given = [(f, values[f.name]) for f in IDENTIFIERS if values.get(f.name) is not None]
    flags = ", ".join(_flag(f) for f in _id_fields(with_id))
    if one and len(given) != 1:
        raise click.UsageError(f"give exactly one of {flags}"
                               + (f" (got {len(given)})" if given else ""))
    if not given:
        raise click.UsageError(f"give at least one of {flags}")
    return given


def _check_create(identifier: dict[str, Any]) -> None:
    """The core's rule on --create-if-missing with this identifier, as a usage error."""
    from .procedures import check_create, one_identifier

    try:
        check_create(one_identifier("the command", **identifier), True)
    except errors.InvalidInputError as exc:
        raise click.UsageError(re.sub(
            r"\b(create_if_missing|" + "|".join(f.name for f in IDENTIFIERS) + r")\b",
            lambda m: "--" + m.group().replace("_", "-"), str(exc))) from None


def _contact_json(contact: Contact) -> dict[str, Any]:
    return {"id": contact.id, **{f.name: getattr(contact, f.name) for f in _id_fields(False)},
            "attributes": dict(contact.attributes)}


def _contact_text(contact: Contact) -> list[str]:
    lines = [f"contact id:  {contact.id}"]
    for label, f in zip(("email:      ", "mobile:     ", "app alias:  ", "external id:"),
                        _id_fields(False), strict=True):
        if getattr(contact, f.name) is not None:
            lines.append(f"{label} {getattr(contact, f.name)}")
    return lines + [f"attribute:   {name} = {value}"
                    for name, value in sorted(contact.attributes.items())]


def _outbox_json(entry: OutboxEntry) -> dict[str, Any]:
    return {"message_id": entry.message_id, "recipient_id": entry.recipient_id,
            "email_address": entry.email_address, "group_id": entry.group_id,
            "parameters": dict(entry.parameters),
            "attachments": [{"name": a.name, "content_type": a.content_type,
                             "size": len(a.content)} for a in entry.attachments]}


def _outbox_text(entry: OutboxEntry) -> list[str]:
    who = f" <{entry.email_address}>" if entry.email_address else ""
    lines = [f"sandbox outbox: message {entry.message_id} -> contact {entry.recipient_id}"
             f"{who}, group {entry.group_id}"]
    lines.extend(f"  parameter {name} = {value}" for name, value in entry.parameters)
    lines.extend(f"  attachment {a.name} ({a.content_type}, {len(a.content)} bytes)"
                 for a in entry.attachments)
    return lines if len(lines) > 1 else [*lines, "  (no parameters, no attachments)"]


# ----------------------------------------------------------------- commands


@click.group("engage-soap", cls=_Main, context_settings={"help_option_names": ["-h", "--help"]})
@shared_options(group=True)
@click.version_option(package_name="engage-soap", prog_name="engage-soap")
def cli(**_options: Any) -> None:
    """Talk to a Mapp Engage ecmapi SOAP endpoint (or the bundled sandbox).

    Settings: command line > environment (ENGAGE_ENDPOINT, ENGAGE_USERNAME, ENGAGE_PASSWORD,
    ENGAGE_WSDL, ENGAGE_TIMEOUT, ENGAGE_RETRIES, ENGAGE_CA_BUNDLE, ENGAGE_RATE_STORE,
    ENGAGE_PROTOCOL) > the [engage] table of the config file > defaults. These options go
    before or after the subcommand.

    Exit codes: 0 ok, 2 usage, 3 not found, 4 other fault, 5 transport,
    6 authentication, 7 configuration, 130 interrupted.
    """


@cli.group()
def contact() -> None:
    """Look contacts up and create them."""


@contact.command("get")
@_identifier_options()
@engage_command
def contact_get(session: Session, **identifiers: Any) -> None:
    """Look a contact up by exactly one identifier (contactGet)."""
    [(f, value)] = _given_identifiers(identifiers)
    with session.client() as client:
        found = client.contact_get(**{f.name: value})
    session.report({"ok": True, "lookup": {"type": f.type.value, "value": str(value)},
                    "contact": _contact_json(found)}, _contact_text(found))


@contact.command("create")
@_identifier_options(with_id=False)
@click.option("--attr", "attributes", multiple=True, metavar="NAME=VALUE", callback=_pairs,
              help="A contact attribute (repeatable).")
@engage_command
def contact_create(session: Session, attributes: dict[str, str], **identifiers: Any) -> None:
    """Create a contact with one or more identifiers (contactCreate)."""
    given = _given_identifiers(identifiers, one=False, with_id=False)
    with session.client() as client:
        created = client.contact_create(**{f.name: v for f, v in given},
                                        attributes=attributes or None)
    session.report({"ok": True, "created": True, "contact": _contact_json(created)},
                   [f"created: contact id {created.id}", *_contact_text(created)[1:]])


def _send_options(fn: Callable[..., None]) -> Callable[..., None]:
    fn = click.option("--sender-profile", metavar="NAME",
                      help="TLS sender profile (only if the WSDL declares one).")(fn)
    fn = click.option("--attach", multiple=True, metavar="FILE", help="Attach a file "
                      "(repeatable).", type=click.Path(exists=True, dir_okay=False,
                                                      readable=True, path_type=Path),
                      callback=lambda _c, _p, paths: [Attachment.from_path(p) for p in paths])(fn)
    fn = click.option("--param", "params", multiple=True, metavar="NAME=VALUE", callback=_pairs,
                      help="A message parameter, <%parameter.NAME%> (repeatable).")(fn)
    return click.option("--message-id", required=True, type=click.IntRange(min=1),
                        help="Id of the prepared message.")(fn)


def _report_send(session: Session, message_id: int, recipient_id: int, extra: dict[str, Any],
                 lines: Sequence[str] = ()) -> None:
    outbox = session.outbox()
    session.report({"ok": True, **extra, "message_id": message_id, "recipient_id": recipient_id,
                    "sent": True, **({"sandbox_outbox": [_outbox_json(e) for e in outbox]}
                                     if session.sandbox is not None else {})},
                   [*lines, f"send: message {message_id} -> contact {recipient_id}: sent",
                    *[line for e in outbox for line in _outbox_text(e)]])


@cli.group("message")
def message() -> None:
    """Send prepared messages."""


@message.command("send")
@_send_options
@click.option("--recipient-id", required=True, type=click.IntRange(min=1),
              help="Contact id of the recipient.")
@engage_command
def message_send(session: Session, message_id: int, recipient_id: int, params: dict[str, str],
                 attach: list[Attachment], sender_profile: str | None) -> None:
    """Send a prepared message to one contact id (messageSendSingle)."""
    with session.client() as client:
        client.message_send_single(message_id, recipient_id, parameters=params,
                                   attachments=attach, sender_profile=sender_profile)
    _report_send(session, message_id, recipient_id, extra={})


@cli.command("send-prepared")
@_send_options
@_identifier_options()
@click.option("--create-if-missing", is_flag=True,
              help="Create the contact if no contact has this identifier.")
@engage_command
def send_prepared(session: Session, message_id: int, params: dict[str, str],
                  attach: list[Attachment], sender_profile: str | None,
                  create_if_missing: bool, **identifiers: Any) -> None:
    """Look the recipient up (creating it if asked), then send a prepared message.

    The vendor's procedure: contactGet, [contactCreate], messageSendSingle.
    """
    [(f, value)] = _given_identifiers(identifiers)
    if create_if_missing:
        _check_create({f.name: value})
    label = f"lookup: {f.type.value} {value}"
    with session.client() as client:
        try:
            result = client.send_prepared_message(
                message_id, **{f.name: value}, parameters=params, attachments=attach,
                sender_profile=sender_profile, create_if_missing=create_if_missing)
        except errors.EngageError as exc:  # show the steps as far as they went
            found = f"contact id {value}" if f.name == "contact_id" else "found"
            steps = {"contactGet": [f"{label} -> " + (
                         "not found" if isinstance(exc, errors.NoSuchObjectError) else "failed")],
                     "contactCreate": [f"{label} -> not found", "create: failed"],
                     "messageSendSingle": [f"{label} -> {found}",
                                           f"send: message {message_id} -> failed"],
                     }.get(exc.operation or "")
            if steps and not session.settings.json:
                click.echo("\n".join(steps))
            raise
    contact_id = result.contact.id
    _report_send(session, message_id, contact_id,
                 lines=[f"{label} -> not found", f"create: contact id {contact_id} created"]
                 if result.created else [f"{label} -> contact id {contact_id}"],
                 extra={"lookup": {"type": f.type.value, "value": str(value)},
                        "contact": _contact_json(result.contact), "created": result.created})


@cli.command("ping")
@engage_command
def ping(session: Session) -> None:
    """Check the endpoint and credentials: print the API version (systemGetApiVersion)."""
    with session.client() as client:
        version = client.api_version()
    from .transport import display_url

    endpoint = display_url(session.settings.endpoint or "")
    session.report({"ok": True, "endpoint": endpoint, "api_version": version},
                   [f"ok: {endpoint} answers, API version {version}"])


@cli.command("operations")
@engage_command
def operations(session: Session) -> None:
    """List every operation of the WSDL in use, with its arguments."""
    with session.client() as client:
        found = client.operations()
    session.report({"ok": True, "operations": found}, [
        f"{name} ({'read' if info['read'] else 'write'}): "
        + (", ".join(_field_text(f) for f in info["arguments"]) or "no arguments")
        for name, info in found.items()])


def _field_text(f: dict[str, Any]) -> str:
    mark = "*" if f["repeated"] else ("" if f["required"] else "?")
    inner = f" {{{', '.join(_field_text(c) for c in f['fields'])}}}" if "fields" in f else ""
    choices = f" ({'|'.join(f['choices'])})" if "choices" in f else ""
    return f"{f['name']}{mark}: {f['type']}{choices}{inner}"


@cli.command("call")
@click.argument("operation")
@click.argument("arguments", nargs=-1, metavar="NAME=VALUE...", callback=_pairs)
@engage_command
def call(session: Session, operation: str, arguments: dict[str, str]) -> None:
    """Call any operation of the WSDL; print the reply as JSON.

    Simple values are given as text (NAME=42, NAME=true); nested and repeated ones as
    JSON (identifier='{"type": "EMAIL", "value": "a@example.com"}', groupIds='[1, 2]').
    """
    with session.client() as client:
        _known_operation(client, operation)
        schema = client.request_schema(operation)
        untyped: Any = client  # call's types need a literal operation name; this one is data
        reply = untyped.call(operation, **{name: _argument(schema, operation, name, text)
                                           for name, text in arguments.items()})
    if session.settings.json:
        emit({"ok": True, "operation": operation, "reply": reply})
    else:
        emit(reply, indent=2)


def _known_operation(client: EngageClient, operation: str) -> None:
    """A usage error naming the closest operations when the WSDL has no ``operation``."""
    names = list(client.operations())
    if operation in names:
        return
    by_lower = {n.lower(): n for n in names}
    close = [by_lower[n] for n in difflib.get_close_matches(operation.lower(), by_lower, n=3,
                                                             cutoff=0.6)]
    raise click.UsageError(f"the WSDL in use has no operation {operation!r}"
                           + (f"; did you mean {' or '.join(close)}?" if close else
                              " (engage-soap operations lists them)"))


def _argument(schema: Any, operation: str, name: str, text: str) -> Any:
    """A NAME=VALUE argument as the schema wants it: JSON for nested and repeated fields."""
    field_ = schema.find(name)
    if field_ is None:
        known = ", ".join(f.name for f in schema.fields) or "none"
        raise click.UsageError(f"{operation} has no argument {name!r} (arguments: {known})")
    if field_.complex is not None or field_.repeated:
        try:
            return json.loads(text)
        except ValueError as exc:
            raise click.UsageError(f"{name}: expected JSON ({exc})") from None
    try:
        return field_.from_text(text, name)
    except errors.ProtocolError:
        raise click.UsageError(f"{name}: not a valid {field_.plan.type_name}: {text!r}") from None


def _api_version(_ctx: click.Context, _param: click.Parameter, value: str) -> str:
    if not re.fullmatch(r"\d+(\.\d+)*", value):
        raise click.BadParameter(f"{value!r} is not digits, optionally dotted (like 8 or 8.1)")
    return value


@cli.command("send-bulk")
@click.option("--message-id", required=True, type=click.IntRange(min=1),
              help="Id of the prepared message.")
@click.option("--input", "input_path", required=True, metavar="FILE",
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Recipients: a CSV file with a header row, or JSON lines (.jsonl).")
@click.option("--id-column", default="email", show_default=True,
              type=click.Choice([f.name for f in IDENTIFIERS]),
              help="The column naming the recipient; every other column is a parameter.")
@click.option("--journal", metavar="FILE", type=click.Path(dir_okay=False, path_type=Path),
              help="The job's journal (default: FILE.journal.sqlite beside the input).")
@click.option("--resume", is_flag=True, help="Continue the job of an existing journal.")
@click.option("--resend-unknown", is_flag=True,
              help="Also send to recipients whose earlier send may have gone out.")
@click.option("--workers", default=defaults.BULK_WORKERS, show_default=True,
              type=click.IntRange(1, 64), help="Calls in flight at once.")
@click.option("--rate", default=defaults.ACCOUNT_RATE, show_default=True,
              type=click.FloatRange(min=0, min_open=True), help="Calls per second.")
@click.option("--create-if-missing", is_flag=True,
              help="Create recipients that are not contacts yet.")
@click.option("--param", "params", multiple=True, metavar="NAME=VALUE", callback=_pairs,
              help="A parameter for every recipient (a column of the same name wins).")
@click.option("--failed-out", metavar="FILE", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the failed rows here, as the input held them, to feed back.")
@click.option("--dry-run", is_flag=True, help="Check every row and look the contacts up, "
              "without creating, sending or writing the journal; report what would be sent.")
@engage_command
def send_bulk(session: Session, message_id: int, input_path: Path, id_column: str,
              journal: Path | None, resume: bool, resend_unknown: bool, workers: int,
              rate: float, create_if_missing: bool, params: dict[str, str],
              failed_out: Path | None, dry_run: bool) -> None:
    """Send one prepared message to every recipient of a file, each exactly once.

    Exit code 0 when every recipient is sent (now or in an earlier run), 1 when some
    failed or may have been sent (listed; --resume retries the failed ones), 75 when
    another run holds the job's journal (nothing done), 130 when interrupted, 143 on
    SIGTERM (both after the calls in flight; the journal is consistent: --resume
    continues).
    """
    from .bulk import BulkInterrupted, JournalBusyError, JournalError, read_rows, write_failed

    journal = journal or input_path.with_name(f"{input_path.stem}.journal.sqlite")
    try:
        rows = list(read_rows(input_path, id_column))
    except errors.InvalidInputError as exc:
        raise click.UsageError(str(exc)) from None
    except OSError as exc:
        raise click.UsageError(f"cannot read {input_path}: {exc}") from None
    bar = None
    if not session.settings.json and sys.stderr.isatty():  # quiet in a pipe and with --json
        from tqdm import tqdm

        bar = tqdm(total=len(rows), unit="recipient", file=sys.stderr)

    def progress(report: BulkReport) -> None:
        if bar is not None:
            bar.update(report.done - bar.n)

    interrupted, terminated = False, list[int]()
    with session.client(rate_limit=rate) as client, _sigterm_interrupts(terminated):
        try:
            report = client.send_bulk(message_id, rows, journal=journal, workers=workers,
                                      create_if_missing=create_if_missing, parameters=params,
                                      on_progress=progress if bar else None,
                                      resend_unknown=resend_unknown, resume=resume,
                                      dry_run=dry_run)
        except BulkInterrupted as stop:
            report, interrupted = stop.report, True
        except JournalBusyError as exc:
            raise Failure("JournalBusyError", str(exc), EXIT_BUSY) from None
        except JournalError as exc:
            raise click.UsageError(str(exc)) from None
        finally:
            if bar is not None:
                bar.close()
    lines = report.lines()
    if failed_out:
        written = write_failed(failed_out, report, id_column)
        lines.append(f"{written} failed rows written to {failed_out}")
    session.report({"ok": report.ok, "journal": None if dry_run else str(journal),
                    "report": report.as_dict()}, lines)
    if interrupted:
        click.echo("terminated" if terminated else "interrupted", err=True)
        raise SystemExit(EXIT_TERMINATED if terminated else EXIT_INTERRUPTED)
    if not report.ok:
        raise SystemExit(1)


def _tenant_wsdl(settings: Settings) -> LoadedWsdl:
    """The --wsdl given (URL or file), fetched fresh with the credentials if given."""
    from . import zeep_binding
    from .transport import HttpTransport, basic_auth_header

    if not settings.wsdl:
        raise click.UsageError("give the tenant's WSDL with --wsdl URL_OR_PATH (or ENGAGE_WSDL)")
    auth = (basic_auth_header(settings.username, settings.password)
            if settings.username and settings.password else None)
    with tempfile.TemporaryDirectory() as fresh, HttpTransport(
            timeout=settings.timeout, verify=settings.verify) as http:
        try:
            return zeep_binding.load_wsdl(settings.wsdl, http=http, authorization=auth,
                                          cache_dir=fresh)
        except errors.ConfigurationError as exc:  # a network failure keeps its exit code
            if isinstance(exc.__cause__, errors.TransportError):
                raise exc.__cause__ from exc
            raise


@contextmanager
def _sigterm_interrupts(received: list[int]) -> Iterator[None]:
    """While in the block, SIGTERM (systemd, Kubernetes) stops like Ctrl-C: a
    KeyboardInterrupt in the main thread; ``received`` gets the signal number."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, _frame: object) -> None:
        received.append(signum)
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@cli.group("contract")
def contract() -> None:
    """Check a tenant's WSDL against the bundled one."""


@contract.command("check")
@click.option("--all", "all_operations", is_flag=True, help="Compare every operation.")
@click.option("--operations", "names", metavar="NAME,NAME",
              help="Compare these operations (default: those the facade uses).")
@engage_command
def contract_check(session: Session, all_operations: bool, names: str | None) -> None:
    """Compare --wsdl (a tenant's WSDL, URL or file) with the bundled WSDL.

    Exit code 0 when no difference breaks a client built on the bundle, 1 when one does.
    """
    from . import zeep_binding
    from .contract import FACADE_OPERATIONS, compare

    if all_operations and names:
        raise click.UsageError("give --all or --operations, not both")
    operations = None if all_operations else (
        [n.strip() for n in names.split(",") if n.strip()] if names else FACADE_OPERATIONS)
    tenant = _tenant_wsdl(session.settings)
    try:
        report = compare(zeep_binding.load_wsdl(None), tenant, operations)
    except errors.InvalidInputError as exc:  # a misspelt --operations name checks nothing
        raise click.UsageError(f"--operations: {exc}") from exc
    session.report(report.as_dict(), report.lines())
    if not report.compatible:
        raise SystemExit(1)


@cli.command("typegen")
@click.option("-o", "--output", required=True, metavar="MODULE.py",
              type=click.Path(dir_okay=False, path_type=Path),
              help="The Python module to write.")
@engage_command
def typegen(session: Session, output: Path) -> None:
    """Write a typed ``call`` for --wsdl (a tenant's WSDL, URL or file) to a module.

    ``from MODULE import typed``, then ``typed(client).call("op", ...)`` is checked by mypy
    and completed by editors. Exit code 7 names what the WSDL holds that cannot be typed.
    """
    from .typegen import client_module

    loaded = _tenant_wsdl(session.settings)
    text = client_module(loaded.model, SecretFilter()(session.settings.wsdl or ""))
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise Failure(type(exc).__name__, f"cannot write {output}: {exc.strerror or exc}",
                      EXIT_CONFIG) from None
    session.report({"ok": True, "module": str(output), "operations": len(loaded.model)},
                   [f"wrote {output}: typed call for {len(loaded.model)} operations"])


@cli.command("sandbox")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (0.0.0.0: every interface).")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(0, 65535),
              help="Port to listen on (0: any free port).")
@click.option("--state", "state_file", metavar="FILE",
              type=click.Path(dir_okay=False, path_type=Path),
              help="Keep the sandbox's data in this JSON file across restarts (its directory "
                   "must exist; the file must be writable).")
@click.option("--rate-limit", default=defaults.ACCOUNT_RATE, show_default=True,
              type=click.FloatRange(min=0),
              help="Calls per second per user before the vendor's throttle fault (0: off).")
@click.option("--api-version", default="8", show_default=True, callback=_api_version,
              help="API version the sandbox reports (8, 8.1...); served under /api/soap/v<N>/.")
@click.option("--latency", default=0.0, show_default=True, metavar="SECONDS",
              type=click.FloatRange(min=0), help="Delay every reply by this many seconds.")
@click.option("--attribute", "attributes", multiple=True, metavar="NAME",
              help="Another contact attribute name the sandbox accepts (repeatable).")
@output_options
def sandbox_command(host: str, port: int, state_file: Path | None, rate_limit: float,
                    api_version: str, latency: float, attributes: tuple[str, ...],
                    **_output: Any) -> None:
    """Serve a fake ecmapi endpoint until Ctrl-C or SIGTERM (-v: every envelope)."""
    from .sandbox import DEFAULT_PASSWORD, DEFAULT_USERNAME, run

    settings = resolve_settings(click.get_current_context())

    def ready(sandbox: Sandbox) -> None:
        if settings.json:
            emit({"ok": True, "endpoint": sandbox.url, "rest_endpoint": sandbox.rest_url,
                  "wsdl": sandbox.wsdl_url,
                  "username": DEFAULT_USERNAME, "password": DEFAULT_PASSWORD})
        else:
            click.echo(f"Engage sandbox listening on {sandbox.url}\n  WSDL:     {sandbox.wsdl_url}"
                       f"\n  username: {DEFAULT_USERNAME}\n  password: {DEFAULT_PASSWORD}\n"
                       f"  REST:     {sandbox.rest_url} (the same sandbox)\n"
                       f"Use it with:\n  export ENGAGE_ENDPOINT={sandbox.url} ENGAGE_USERNAME="
                       f"{DEFAULT_USERNAME} ENGAGE_PASSWORD={DEFAULT_PASSWORD}\n"
                       "Press Ctrl-C to stop.")

    if host not in ("127.0.0.1", "::1", "localhost"):
        click.echo(f"warning: the sandbox on {host} is reachable from other machines, with "
                   "well-known credentials", err=True)
    with _StderrLog(settings.verbose, SecretFilter(), sandbox=True):
        try:
            run(host, port, state_file=state_file, rate_limit=rate_limit or None,
                api_version=api_version, ready=ready, latency=latency, attributes=attributes)
        except (OSError, ValueError) as exc:
            raise Failure(type(exc).__name__, f"cannot start the sandbox on {host}:{port}: "
                          f"{exc}", EXIT_CONFIG) from None
    if not settings.json:
        click.echo("sandbox stopped", err=True)


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the ``engage-soap`` console script."""
    cli.main(args=list(argv) if argv is not None else None, prog_name="engage-soap")


if __name__ == "__main__":  # pragma: no cover
    main()
