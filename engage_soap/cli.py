"""The ``engage-soap`` command line: look contacts up, create them, send prepared messages.

Connection settings come from flags, then ENGAGE_* environment variables, then a TOML
file (see :mod:`engage_soap.config`); ``--sandbox`` runs a command against an embedded
fake server instead. Output is text, or one JSON object on stdout with ``--json``.
The client, zeep and the sandbox are imported only when a command runs, so ``--help``
stays fast. Exit codes are the ``EXIT_*`` constants below.
"""

from __future__ import annotations

import functools
import json
import logging
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast
from urllib.parse import urlsplit, urlunsplit

import click
from click.core import ParameterSource

from .config import ENV_VARS, ConnectionSettings, default_config_path, resolve_settings
from .errors import (
    AuthenticationError,
    ConfigurationError,
    EngageError,
    EngageFault,
    InvalidInputError,
    NoSuchObjectError,
    ProtocolError,
    TransportError,
)

if TYPE_CHECKING:
    from .client import EngageClient
    from .models import Attachment, Contact
    from .sandbox import OutboxEntry, Sandbox

__all__ = [
    "EXIT_AUTH",
    "EXIT_CONFIG",
    "EXIT_FAULT",
    "EXIT_NOT_FOUND",
    "EXIT_OK",
    "EXIT_TRANSPORT",
    "EXIT_USAGE",
    "cli",
    "exit_code_for",
    "main",
]

EXIT_OK = 0          # success
EXIT_USAGE = 2       # bad flags or arguments, missing endpoint or credentials
EXIT_NOT_FOUND = 3   # NoSuchObjectError, ContactNotFoundError
EXIT_FAULT = 4       # any other SOAP fault (EngageFault), InvalidInputError
EXIT_TRANSPORT = 5   # TransportError (timeouts, proxies, throttling), ProtocolError
EXIT_AUTH = 6        # AuthenticationError (HTTP 401/403)
EXIT_CONFIG = 7      # ConfigurationError (bad config file, WSDL), sandbox cannot start

F = TypeVar("F", bound=Callable[..., Any])
_LOGGER = "engage_soap"
_PASSWORD_WARNING = ("warning: a password on the command line is visible to other users "
                     "(ps, shell history); set ENGAGE_PASSWORD instead")


def exit_code_for(exc: BaseException) -> int:
    """The exit code of an engage_soap error (most specific class first)."""
    if isinstance(exc, NoSuchObjectError):
        return EXIT_NOT_FOUND
    if isinstance(exc, AuthenticationError):
        return EXIT_AUTH
    if isinstance(exc, (TransportError, ProtocolError)):
        return EXIT_TRANSPORT
    if isinstance(exc, ConfigurationError):
        return EXIT_CONFIG
    if isinstance(exc, (EngageFault, InvalidInputError, EngageError)):
        return EXIT_FAULT
    return 1


# ----------------------------------------------------------------- options


@dataclass
class Options:
    """What the global options said; a flag given on a subcommand wins over the group's."""

    endpoint: str | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    wsdl: str | None = None
    timeout: float | None = None
    config: str | None = None
    retries: int | None = None
    sandbox: bool = False
    json: bool = False
    verbose: int = 0
    warned_password: bool = False


def _opts(ctx: click.Context) -> Options:
    obj = ctx.find_root().ensure_object(Options)
    return obj


def _store(ctx: click.Context, param: click.Parameter, value: Any) -> None:
    """Record an option in the shared Options, unless it kept its default."""
    name = param.name
    assert name is not None
    source = ctx.get_parameter_source(name)
    if value is None or source in (None, ParameterSource.DEFAULT):
        return
    opts = _opts(ctx)
    if name == "verbose":
        opts.verbose += int(value)
        return
    setattr(opts, name, value)
    if name == "password" and not opts.warned_password:
        opts.warned_password = True
        click.echo(_PASSWORD_WARNING, err=True)


def _output_options(fn: F) -> F:
    fn = click.option("--json", "json", is_flag=True, default=False, expose_value=False,
                      callback=_store, help="Print one JSON object on stdout.")(fn)
    fn = click.option("-v", "--verbose", count=True, expose_value=False, callback=_store,
                      help="Show SOAP request and reply envelopes on stderr "
                           "(credentials redacted).")(fn)
    return fn


def _connection_options(fn: F) -> F:
    specs: list[tuple[tuple[str, ...], dict[str, Any]]] = [
        (("--endpoint",), {"metavar": "URL",
                           "help": "SOAP endpoint, https://<host>/api/soap/v<N>/ "
                                   "[env ENGAGE_ENDPOINT]."}),
        (("--username",), {"help": "API user name [env ENGAGE_USERNAME]."}),
        (("--password",), {"help": "API password; prefer env ENGAGE_PASSWORD."}),
        (("--wsdl",), {"metavar": "FILE|URL",
                       "help": "WSDL to use instead of the bundled one [env ENGAGE_WSDL]."}),
        (("--timeout",), {"type": click.FloatRange(min=0, min_open=True), "metavar": "SECONDS",
                          "help": "Deadline of each call (default 30)."}),
        (("--config",), {"metavar": "FILE",
                         "help": "TOML config file with an [engage] table (default "
                                 "$ENGAGE_SOAP_CONFIG or ~/.config/engage-soap/config.toml)."}),
        (("--retries",), {"type": click.IntRange(min=0), "metavar": "N",
                          "help": "Retries after a failed first try, where safe (default 2)."}),
        (("--sandbox",), {"is_flag": True, "default": False,
                          "help": "Run against an embedded in-process sandbox server."}),
    ]
    for decls, kwargs in reversed(specs):
        fn = click.option(*decls, expose_value=False, callback=_store, **kwargs)(fn)
    return fn


def _global_options(fn: F) -> F:
    return _connection_options(_output_options(fn))


def _pairs(ctx: click.Context, param: click.Parameter,
           values: Sequence[str]) -> dict[str, str]:
    """Parse repeated NAME=VALUE options into a dict (no duplicate names)."""
    out: dict[str, str] = {}
    for item in values:
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep or not name:
            raise click.BadParameter(f"expected NAME=VALUE, got {item!r}", ctx, param)
        if name in out:
            raise click.BadParameter(f"{name!r} is given twice", ctx, param)
        out[name] = value
    return out


_ID_KINDS: tuple[tuple[str, str, str], ...] = (
    # (keyword, identifier type, client keyword)
    ("email", "EMAIL", "email"),
    ("mobile", "MOBILE", "mobile_number"),
    ("app_alias", "APP_ALIAS", "app_alias"),
    ("external", "EXTERNAL", "external_id"),
    ("contact_id", "ID", "contact_id"),
)


def _identifier_options(*, with_id: bool = True) -> Callable[[F], F]:
    def decorate(fn: F) -> F:
        if with_id:
            fn = click.option("--id", "contact_id", type=click.IntRange(min=1),
                              help="Contact id.")(fn)
        fn = click.option("--external", metavar="ID", help="External identifier.")(fn)
        fn = click.option("--app-alias", metavar="ALIAS", help="Application alias.")(fn)
        fn = click.option("--mobile", metavar="NUMBER", help="Mobile number.")(fn)
        fn = click.option("--email", metavar="ADDRESS", help="E-mail address.")(fn)
        return fn
    return decorate


def _one_identifier(values: dict[str, Any]) -> tuple[str, str, Any]:
    """(identifier type, client keyword, value) of exactly one given identifier option."""
    given = [(kind, kw, values[key]) for key, kind, kw in _ID_KINDS
             if values.get(key) is not None]
    if len(given) != 1:
        flags = "--email, --mobile, --app-alias, --external, --id"
        raise click.UsageError(f"give exactly one of {flags}"
                               + (f" (got {len(given)})" if given else ""))
    return given[0]


# ----------------------------------------------------------------- output and redaction


class _Redactor:
    """Removes a password, Basic credentials and URL user info from text."""

    _AUTH = re.compile(r"(?i)(authorization['\"]?\s*[:=]\s*['\"]?)(basic|bearer)\s+[^\s'\",}]+")
    _USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/@\s]*@")

    def __init__(self, password: str | None = None) -> None:
        self.password = password

    def __call__(self, text: str) -> str:
        if self.password and len(self.password) >= 4:
            text = text.replace(self.password, "***")
        text = self._AUTH.sub(r"\1\2 ***", text)
        return self._USERINFO.sub(r"\1***@", text)


def _safe_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def _emit_json(data: dict[str, Any]) -> None:
    click.echo(json.dumps(data, ensure_ascii=False, default=str))


def _contact_json(contact: Contact) -> dict[str, Any]:
    return {"id": contact.id, "email": contact.email, "mobile_number": contact.mobile_number,
            "app_alias": contact.app_alias, "external_id": contact.external_id,
            "attributes": dict(contact.attributes)}


def _contact_text(contact: Contact) -> list[str]:
    lines = [f"contact id:  {contact.id}"]
    for label, value in (("email:      ", contact.email),
                         ("mobile:     ", contact.mobile_number),
                         ("app alias:  ", contact.app_alias),
                         ("external id:", contact.external_id)):
        if value is not None:
            lines.append(f"{label} {value}")
    lines.extend(f"attribute:   {name} = {value}"
                 for name, value in sorted(contact.attributes.items()))
    return lines


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
    if not entry.parameters and not entry.attachments:
        lines.append("  (no parameters, no attachments)")
    return lines


# ----------------------------------------------------------------- running a command


class _EchoHandler(logging.Handler):
    """Sends engage_soap log records to stderr through click, redacted."""

    def __init__(self, redact: _Redactor, level: int) -> None:
        super().__init__(level)
        self.redact = redact

    def emit(self, record: logging.LogRecord) -> None:
        # The embedded sandbox logs every request at DEBUG: keep its noise out.
        if record.name.startswith("engage_soap.sandbox") and record.levelno < logging.WARNING:
            return
        try:
            text = record.getMessage()
        except Exception:  # pragma: no cover - a broken log call must not end the command
            return
        label = "debug" if record.levelno <= logging.DEBUG else record.levelname.lower()
        click.echo(self.redact(f"{label}: {text}"), err=True)


@contextmanager
def _logging_to_stderr(verbose: int, redact: _Redactor) -> Iterator[None]:
    logger = logging.getLogger(_LOGGER)
    level = logging.DEBUG if verbose else logging.WARNING
    handler = _EchoHandler(redact, level)
    previous = logger.level
    logger.addHandler(handler)
    if logger.getEffectiveLevel() > level:
        logger.setLevel(level)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)


@dataclass
class _Session:
    client: EngageClient
    settings: ConnectionSettings
    sandbox: Sandbox | None
    opts: Options

    def outbox_since(self, mark: int) -> list[OutboxEntry]:
        if self.sandbox is None:
            return []
        with self.sandbox.state.lock:
            return list(self.sandbox.state.outbox[mark:])

    def outbox_mark(self) -> int:
        return len(self.sandbox.state.outbox) if self.sandbox is not None else 0


def _settings(opts: Options) -> ConnectionSettings:
    flags: dict[str, object | None] = {"endpoint": opts.endpoint, "username": opts.username,
                                       "password": opts.password, "wsdl": opts.wsdl,
                                       "timeout": opts.timeout}
    settings = resolve_settings(flags, config_file=opts.config)
    for warning in settings.warnings:
        click.echo(f"warning: {warning}", err=True)
    missing = settings.missing()
    if missing:
        hints = []
        for key in missing:
            hints.append(f"--{key}" if key != "password" else "ENGAGE_PASSWORD")
            hints[-1] += f" / {ENV_VARS[key]}" if key != "password" else ""
        where = settings.config_file or default_config_path()
        raise click.UsageError(
            f"no {', '.join(missing)} given: use {', '.join(hints)}, or set them under "
            f"[engage] in {where} (or use --sandbox to try the embedded sandbox)")
    return settings


@contextmanager
def _session(ctx: click.Context) -> Iterator[_Session]:
    """Resolve settings, start the embedded sandbox if asked, build and finally close a client."""
    opts = _opts(ctx)
    redact = _Redactor(opts.password)
    with ExitStack() as stack:
        sandbox: Sandbox | None = None
        if opts.sandbox:
            clash = [f"--{k}" for k in ("endpoint", "username", "password", "config")
                     if getattr(opts, k) is not None]
            if clash:
                raise click.UsageError(f"--sandbox cannot be combined with {', '.join(clash)}")
            from .sandbox import DEFAULT_PASSWORD, DEFAULT_USERNAME, Sandbox

            sandbox = Sandbox("127.0.0.1", 0)
            sandbox.start()
            stack.callback(sandbox.stop)
            settings = ConnectionSettings(
                endpoint=sandbox.url, username=DEFAULT_USERNAME, password=DEFAULT_PASSWORD,
                wsdl=opts.wsdl, timeout=opts.timeout or 30.0,
                sources={"endpoint": "--sandbox", "username": "--sandbox",
                         "password": "--sandbox"})
        else:
            settings = _settings(opts)
        redact.password = settings.password
        stack.enter_context(_logging_to_stderr(opts.verbose, redact))
        if opts.verbose:
            source = settings.sources
            click.echo(redact(
                f"debug: endpoint {_safe_url(settings.endpoint or '')} "
                f"(from {source.get('endpoint')}), user {settings.username} "
                f"(from {source.get('username')}), password *** "
                f"(from {source.get('password')}), timeout {settings.timeout:g} s"), err=True)

        from .client import EngageClient
        from .retry import RetryPolicy

        retry = None if opts.retries is None else RetryPolicy(max_attempts=opts.retries + 1)
        assert settings.endpoint and settings.username and settings.password is not None
        client = EngageClient(settings.endpoint, settings.username, settings.password,
                              wsdl=settings.wsdl, timeout=settings.timeout, retry=retry)
        stack.callback(client.close)
        yield _Session(client, settings, sandbox, opts)


def _guarded(fn: F) -> F:
    """Turn an EngageError into one stderr line (and a JSON error object) and its exit code."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except EngageError as exc:
            ctx = click.get_current_context()
            opts = _opts(ctx)
            redact = _Redactor(opts.password)
            message = redact(" ".join(str(exc).split()))
            code = exit_code_for(exc)
            click.echo(f"error: {type(exc).__name__}: {message}", err=True)
            if opts.json:
                _emit_json({"ok": False, "error": {"type": type(exc).__name__,
                                                   "message": message, "exit_code": code}})
            ctx.exit(code)
    return cast(F, wrapper)


def _load_attachments(paths: Sequence[Path]) -> list[Attachment]:
    from .models import Attachment

    return [Attachment.from_path(path) for path in paths]


# ----------------------------------------------------------------- commands


@click.group("engage-soap", context_settings={"help_option_names": ["-h", "--help"]})
@_global_options
@click.version_option(package_name="engage-soap", prog_name="engage-soap")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Talk to a Mapp Engage ecmapi SOAP endpoint (or the bundled sandbox).

    Settings: flags > ENGAGE_ENDPOINT, ENGAGE_USERNAME, ENGAGE_PASSWORD, ENGAGE_WSDL,
    ENGAGE_TIMEOUT > the [engage] table of the config file. Global options may also be
    given after the subcommand.

    Exit codes: 0 ok, 2 usage, 3 not found, 4 other fault, 5 transport,
    6 authentication, 7 configuration.
    """
    _opts(ctx)


@cli.group()
def contact() -> None:
    """Look contacts up and create them."""


@contact.command("get")
@_identifier_options()
@_global_options
@click.pass_context
@_guarded
def contact_get(ctx: click.Context, /, **identifiers: Any) -> None:
    """Look a contact up by exactly one identifier (contactGet)."""
    kind, keyword, value = _one_identifier(identifiers)
    with _session(ctx) as session:
        found = session.client.contact_get(**{keyword: value})
    if session.opts.json:
        _emit_json({"ok": True, "lookup": {"type": kind, "value": str(value)},
                    "contact": _contact_json(found)})
    else:
        for line in _contact_text(found):
            click.echo(line)


@contact.command("create")
@_identifier_options(with_id=False)
@click.option("--attr", "attributes", multiple=True, metavar="NAME=VALUE", callback=_pairs,
              help="A contact attribute (repeatable).")
@_global_options
@click.pass_context
@_guarded
def contact_create(ctx: click.Context, email: str | None, mobile: str | None,
                   app_alias: str | None, external: str | None,
                   attributes: dict[str, str]) -> None:
    """Create a contact with one or more identifiers (contactCreate)."""
    if not any((email, mobile, app_alias, external)):
        raise click.UsageError("give at least one of --email, --mobile, --app-alias, "
                               "--external")
    with _session(ctx) as session:
        created = session.client.contact_create(
            email=email, mobile_number=mobile, app_alias=app_alias, external_id=external,
            attributes=attributes or None)
    if session.opts.json:
        _emit_json({"ok": True, "created": True, "contact": _contact_json(created)})
    else:
        click.echo(f"created: contact id {created.id}")
        for line in _contact_text(created)[1:]:
            click.echo(line)


def _send_options(fn: F) -> F:
    fn = click.option("--sender-profile", metavar="NAME",
                      help="TLS sender profile (only if the WSDL declares one).")(fn)
    fn = click.option("--attach", "attach", multiple=True, metavar="FILE",
                      type=click.Path(exists=True, dir_okay=False, readable=True,
                                      path_type=Path),
                      help="Attach a file (repeatable).")(fn)
    fn = click.option("--param", "params", multiple=True, metavar="NAME=VALUE",
                      callback=_pairs,
                      help="A message parameter, <%parameter.NAME%> (repeatable).")(fn)
    fn = click.option("--message-id", required=True, type=click.IntRange(min=1),
                      help="Id of the prepared message.")(fn)
    return fn


@cli.group("message")
def message() -> None:
    """Send prepared messages."""


@message.command("send")
@_send_options
@click.option("--recipient-id", required=True, type=click.IntRange(min=1),
              help="Contact id of the recipient.")
@_global_options
@click.pass_context
@_guarded
def message_send(ctx: click.Context, message_id: int, recipient_id: int,
                 params: dict[str, str], attach: tuple[Path, ...],
                 sender_profile: str | None) -> None:
    """Send a prepared message to one contact id (messageSendSingle)."""
    files = _load_attachments(attach)
    with _session(ctx) as session:
        mark = session.outbox_mark()
        session.client.message_send_single(message_id, recipient_id, parameters=params,
                                           attachments=files, sender_profile=sender_profile)
        outbox = session.outbox_since(mark)
    _report_send(session, message_id, recipient_id, outbox, extra={})


def _report_send(session: _Session, message_id: int, recipient_id: int,
                 outbox: list[OutboxEntry], extra: dict[str, Any],
                 lines: Sequence[str] = ()) -> None:
    if session.opts.json:
        data: dict[str, Any] = {"ok": True, **extra, "message_id": message_id,
                                "recipient_id": recipient_id, "sent": True}
        if session.sandbox is not None:
            data["sandbox_outbox"] = [_outbox_json(entry) for entry in outbox]
        _emit_json(data)
        return
    for line in lines:
        click.echo(line)
    click.echo(f"send: message {message_id} -> contact {recipient_id}: sent")
    for entry in outbox:
        for line in _outbox_text(entry):
            click.echo(line)


@cli.command("send-prepared")
@_send_options
@_identifier_options()
@click.option("--create-if-missing", is_flag=True,
              help="Create the contact if no contact has this identifier.")
@_global_options
@click.pass_context
@_guarded
def send_prepared(ctx: click.Context, /, message_id: int, params: dict[str, str],
                  attach: tuple[Path, ...], sender_profile: str | None,
                  create_if_missing: bool, **identifiers: Any) -> None:
    """Look the recipient up (creating it if asked), then send a prepared message.

    The vendor's procedure: contactGet, [contactCreate], messageSendSingle.
    """
    from .models import Identifier

    kind, _, value = _one_identifier(identifiers)
    ident = Identifier(kind, str(value))  # type: ignore[arg-type]  # validated to the enum
    files = _load_attachments(attach)
    label = f"lookup: {kind} {value}"
    with _session(ctx) as session:
        mark = session.outbox_mark()
        try:
            result = session.client.send_prepared_message(
                message_id, identifier=ident, parameters=params, attachments=files,
                sender_profile=sender_profile, create_if_missing=create_if_missing)
        except EngageError as exc:
            if not session.opts.json:
                _report_failed_step(session.client, exc, label, message_id)
            raise
        outbox = session.outbox_since(mark)
    contact_id = result.contact.id
    lines = [f"{label} -> not found",
             f"create: contact id {contact_id} created"] if result.created \
        else [f"{label} -> contact id {contact_id}"]
    _report_send(session, message_id, contact_id, outbox, lines=lines,
                 extra={"lookup": {"type": kind, "value": str(value)},
                        "contact": _contact_json(result.contact), "created": result.created})


def _report_failed_step(client: EngageClient, exc: EngageError, label: str,
                        message_id: int) -> None:
    """Print the steps of a failed send_prepared_message as far as they went."""
    exchange = client.last_exchange
    operation = getattr(exc, "operation", None) or (exchange.operation if exchange else None)
    if operation == "contactGet" or operation is None:
        click.echo(f"{label} -> {'not found' if isinstance(exc, NoSuchObjectError) else 'failed'}")
    elif operation == "contactCreate":
        click.echo(f"{label} -> not found")
        click.echo("create: failed")
    elif operation == "messageSendSingle":
        body = exchange.request_body if exchange else b""
        found = re.search(rb"<recipientId>(\d+)</recipientId>", body)
        who = f"contact id {found.group(1).decode()}" if found else "found"
        click.echo(f"{label} -> {who}")
        click.echo(f"send: message {message_id} -> failed")


@cli.command("ping")
@_global_options
@click.pass_context
@_guarded
def ping(ctx: click.Context) -> None:
    """Check the endpoint and credentials: print the API version (systemGetApiVersion)."""
    with _session(ctx) as session:
        version = session.client.api_version()
    endpoint = _safe_url(session.settings.endpoint or "")
    if session.opts.json:
        _emit_json({"ok": True, "endpoint": endpoint, "api_version": version})
    else:
        click.echo(f"ok: {endpoint} answers, API version {version}")


@cli.command("operations")
@_global_options
@click.pass_context
@_guarded
def operations(ctx: click.Context) -> None:
    """List every operation of the WSDL in use, with its arguments."""
    with _session(ctx) as session:
        found = session.client.operations()
    if session.opts.json:
        _emit_json({"ok": True, "operations": found})
        return
    for name, info in found.items():
        args = ", ".join(_field_text(f) for f in info["arguments"]) or "no arguments"
        click.echo(f"{name} ({'read' if info['read'] else 'write'}): {args}")


def _field_text(f: dict[str, Any]) -> str:
    mark = "*" if f["repeated"] else ("" if f["required"] else "?")
    inner = f" {{{', '.join(_field_text(c) for c in f['fields'])}}}" if "fields" in f else ""
    choices = f" ({'|'.join(f['choices'])})" if "choices" in f else ""
    return f"{f['name']}{mark}: {f['type']}{choices}{inner}"


def _json_default(value: Any) -> Any:
    if isinstance(value, bytes):
        import base64

        return base64.b64encode(value).decode("ascii")
    return str(value)


@cli.command("call")
@click.argument("operation")
@click.argument("arguments", nargs=-1, metavar="NAME=VALUE...")
@_global_options
@click.pass_context
@_guarded
def call(ctx: click.Context, operation: str, arguments: tuple[str, ...]) -> None:
    """Call any operation of the WSDL; print the reply as JSON.

    Simple values are given as text (NAME=42, NAME=true); nested and repeated ones as
    JSON (identifier='{"type": "EMAIL", "value": "a@example.com"}', groupIds='[1, 2]').
    """
    pairs = _pairs(ctx, ctx.command.params[1], arguments)
    with _session(ctx) as session:
        schema = session.client.request_schema(operation)
        args = {name: _argument(schema, operation, name, text) for name, text in pairs.items()}
        reply = session.client.call(operation, **args)
    if session.opts.json:
        click.echo(json.dumps({"ok": True, "operation": operation, "reply": reply},
                              ensure_ascii=False, default=_json_default))
    else:
        click.echo(json.dumps(reply, ensure_ascii=False, indent=2, default=_json_default))


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
    except ProtocolError:
        raise click.UsageError(f"{name}: not a valid {field_.plan.type_name}: {text!r}") from None


@cli.command("sandbox")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (0.0.0.0: every interface).")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(0, 65535),
              help="Port to listen on (0: any free port).")
@click.option("--state", "state_file", metavar="FILE",
              type=click.Path(dir_okay=False, path_type=Path),
              help="Keep the sandbox's data in this JSON file across restarts.")
@click.option("--rate-limit", default=10.0, show_default=True, type=click.FloatRange(min=0),
              help="Calls per second per user before the vendor's throttle fault (0: off).")
@click.option("--api-version", default="8", show_default=True,
              help="API version the sandbox reports and serves under /api/soap/v<N>/.")
@_output_options
@click.pass_context
def sandbox_command(ctx: click.Context, host: str, port: int, state_file: Path | None,
                    rate_limit: float, api_version: str) -> None:
    """Serve a fake ecmapi endpoint until Ctrl-C or SIGTERM."""
    from .sandbox import DEFAULT_PASSWORD, DEFAULT_USERNAME, run

    opts = _opts(ctx)

    def ready(sandbox: Sandbox) -> None:
        if opts.json:
            _emit_json({"ok": True, "endpoint": sandbox.url, "wsdl": sandbox.wsdl_url,
                        "username": DEFAULT_USERNAME, "password": DEFAULT_PASSWORD})
            return
        click.echo(f"Engage sandbox listening on {sandbox.url}")
        click.echo(f"  WSDL:     {sandbox.wsdl_url}")
        click.echo(f"  username: {DEFAULT_USERNAME}")
        click.echo(f"  password: {DEFAULT_PASSWORD}")
        click.echo("Use it with:")
        click.echo(f"  export ENGAGE_ENDPOINT={sandbox.url} ENGAGE_USERNAME={DEFAULT_USERNAME}"
                   f" ENGAGE_PASSWORD={DEFAULT_PASSWORD}")
        click.echo("Press Ctrl-C to stop.")

    if host not in ("127.0.0.1", "::1", "localhost"):
        click.echo(f"warning: the sandbox on {host} is reachable from other machines, with "
                   "well-known credentials", err=True)
    with _logging_to_stderr(opts.verbose, _Redactor()):
        try:
            run(host, port, state_file=state_file, rate_limit=rate_limit or None,
                api_version=api_version, ready=ready)
        except (OSError, ValueError) as exc:
            click.echo(f"error: {type(exc).__name__}: cannot start the sandbox on "
                       f"{host}:{port}: {exc}", err=True)
            ctx.exit(EXIT_CONFIG)
    if not opts.json:
        click.echo("sandbox stopped", err=True)


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the ``engage-soap`` console script."""
    cli.main(args=list(argv) if argv is not None else None, prog_name="engage-soap")


if __name__ == "__main__":  # pragma: no cover
    main()
