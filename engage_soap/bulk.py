"""Bulk sending: one prepared message to many recipients, at the account's rate, resumable,
never twice.

Lookups and sends run on a bounded pool of threads that share the client's rate limiter
(and its back-off after the server's throttle). A journal (one SQLite file per job)
records each recipient's state, committed before the next step:

``pending`` -> ``looked_up`` (contact id) -> ``sending`` -> ``sent``, or ``failed`` (error
class and code; retried on a later run when the error may pass), or ``unknown`` (the send
may have reached the server: a timeout, a broken connection after sending, a SERVER fault;
never sent again unless ``resend_unknown``). Which is which is
:func:`engage_soap.procedures.may_have_acted`, the rule of the retry policy too. A crash
while ``sending`` leaves ``sending``, read back as unknown. Running a job again continues
it: what was sent is not sent again.

One run at a time: a run holds an exclusive lock on its journal until it ends, and a second
run on the same journal fails at once with :class:`JournalBusyError`. The journal records
what identifies its job (the message id, a fingerprint of the recipients and of the shared
parameters); another job on it is refused with :class:`JournalError` once anything was sent.
A journal in which nothing was sent or may have been holds nothing to protect: a new run
starts it afresh.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from . import defaults
from .errors import (
    AuthenticationError,
    ConfigurationError,
    ContactNotFoundError,
    EngageError,
    InvalidInputError,
    RateLimitedError,
    TransportError,
)
from .models import BY_NAME, Identifier, IdentifierType
from .procedures import (
    check_create,
    identifier_from_text,
    lookup_or_create,
    may_have_acted,
    one_identifier,
)

if TYPE_CHECKING:
    from .client import EngageClient

__all__ = ["BulkInterrupted", "BulkRecipient", "BulkReport", "BulkRow", "Journal",
           "JournalBusyError", "JournalError", "RowSource", "read_rows", "send_bulk",
           "write_failed"]


@dataclass(frozen=True)
class RowSource:
    """A row as its file held it, to write it back unchanged (``write_failed``).

    ``format`` is ``"csv"`` or ``"jsonl"``; a CSV row has the file's ``header`` and its
    own ``fields`` (as many as it had, as read: see :func:`read_rows` on apostrophes), or
    only ``text`` when it could not be parsed; a
    JSON line has its ``text``. Undecodable bytes are kept as surrogate escapes.
    """

    format: str
    header: tuple[str, ...] = ()
    fields: tuple[str, ...] | None = None
    text: str | None = None


@dataclass(frozen=True)
class BulkRecipient:
    """One input row: its line number, identifier, own parameters, or why it is unusable."""

    line: int
    identifier: Identifier | None
    parameters: Mapping[str, object] = field(default_factory=dict)
    problem: str | None = None
    source: RowSource | None = field(default=None, repr=False, compare=False)

    @property
    def key(self) -> str:
        """The recipient's identity in the journal (an e-mail address ignores case)."""
        assert self.identifier is not None
        value = self.identifier.value.strip()
        if self.identifier.type is IdentifierType.EMAIL:
            value = value.lower()
        return f"{self.identifier.type.value}:{value}"


@dataclass(frozen=True)
class BulkRow:
    """A recipient the report lists (failed, unknown or skipped) and why.

    ``parameters`` are those the send uses (the shared ones under the row's own);
    ``own_parameters`` and ``source`` are the row's own, as given.
    """

    line: int
    identifier_type: str | None
    identifier_value: str | None
    parameters: Mapping[str, object]
    error_class: str | None = None
    error_code: str | None = None
    message: str | None = None
    own_parameters: Mapping[str, object] = field(default_factory=dict, repr=False,
                                                 compare=False)
    source: RowSource | None = field(default=None, repr=False, compare=False)


@dataclass
class BulkReport:
    """What a bulk job did (or, with ``dry_run``, would do: ``sent`` counts the sends a
    real run would make): counts, and the failed, unknown and skipped rows."""

    sent: int = 0
    already_sent: int = 0
    skipped: int = 0
    failed: int = 0
    unknown: int = 0
    failures: list[BulkRow] = field(default_factory=list)
    unknowns: list[BulkRow] = field(default_factory=list)
    skips: list[BulkRow] = field(default_factory=list)
    interrupted: bool = False
    dry_run: bool = False

    @property
    def done(self) -> int:
        return self.sent + self.already_sent + self.skipped + self.failed + self.unknown

    @property
    def ok(self) -> bool:
        """True when every recipient was sent, now or in an earlier run (with ``dry_run``:
        would be)."""
        return not (self.failed or self.unknown or self.interrupted)

    @property
    def failed_by_code(self) -> dict[str, int]:
        return dict(Counter(r.error_code or r.error_class or "?" for r in self.failures))

    def lines(self) -> list[str]:
        """The report as text: the counts, then each failed and unknown row with its line."""
        out = [("dry run, nothing sent: would send" if self.dry_run else "sent")
               + f": {self.sent}, already sent: {self.already_sent}, skipped: "
               f"{self.skipped}, failed: {self.failed}, unknown: {self.unknown}"
               + (" (interrupted: --resume continues)" if self.interrupted else "")]
        if self.failures:
            out.append("failed by error code: " + ", ".join(
                f"{code} {n}" for code, n in sorted(self.failed_by_code.items())))
        out += [f"failed: line {r.line} {r.identifier_type or '-'} {r.identifier_value or '-'}"
                f": {r.error_class}: {r.message}" for r in self.failures]
        out += [f"unknown: line {r.line} {r.identifier_type} {r.identifier_value}: may have "
                "been sent; not sent again (--resend-unknown sends it)" for r in self.unknowns]
        return out

    def as_dict(self) -> dict[str, Any]:
        rows = ("failures", "unknowns", "skips")
        out: dict[str, Any] = {k: getattr(self, k) for k in (
            "sent", "already_sent", "skipped", "failed", "unknown", "interrupted", "dry_run")}
        out["failed_by_code"] = self.failed_by_code
        hidden = ("own_parameters", "source")
        for name in rows:
            out[name] = [{k: v for k, v in r.__dict__.items() if k not in hidden}
                         | {"parameters": dict(r.parameters)} for r in getattr(self, name)]
        return out


class BulkInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped the job after the calls in flight; ``report`` says how far it got."""

    def __init__(self, report: BulkReport) -> None:
        super().__init__("interrupted")
        self.report = report


class JournalError(ConfigurationError):
    """The journal cannot take this run: it belongs to another job, or holds a job already
    begun and the run did not ask to resume it."""


class JournalBusyError(JournalError):
    """Another run holds the journal (two runs of one job at once)."""


# ---------------------------------------------------------------- input


def recipients_from(items: Iterable[object]) -> Iterator[BulkRecipient]:
    """Input rows as BulkRecipients: an e-mail string, an Identifier, a mapping with one
    identifier keyword (``email``, ``mobile_number``, ...) or ``identifier`` and optional
    ``parameters`` (and ``line``), or a BulkRecipient."""
    if isinstance(items, (str, bytes, Mapping)):  # refused at once, before any journal
        raise InvalidInputError(f"recipients must be an iterable of recipients, not one "
                                f"{type(items).__name__} (wrap a single one in a list)")
    return _recipients(items)


def _recipients(items: Iterable[object]) -> Iterator[BulkRecipient]:
    for line, item in enumerate(items, start=1):
        if isinstance(item, BulkRecipient):
            yield item
            continue
        try:
            if isinstance(item, str):
                yield BulkRecipient(line, Identifier.email(item))
            elif isinstance(item, Identifier):
                yield BulkRecipient(line, item)
            elif isinstance(item, Mapping):
                yield _from_mapping(int(item.get("line", line)), item)
            else:
                raise InvalidInputError(f"a recipient is an e-mail address, an Identifier or "
                                        f"a mapping, not {type(item).__name__}")
        except InvalidInputError as exc:
            yield BulkRecipient(line, None, {}, str(exc))


def _from_mapping(line: int, item: Mapping[str, Any]) -> BulkRecipient:
    ident = one_identifier(f"the recipient of line {line}", item.get("identifier"),
                           **{name: item.get(name) for name in BY_NAME})
    params = item.get("parameters") or {}
    if not isinstance(params, Mapping):
        raise InvalidInputError(f"line {line}: parameters must be a mapping")
    return BulkRecipient(line, ident, dict(params))


def input_fingerprint(recipients: Iterable[BulkRecipient]) -> str:
    """A digest of what the rows ask for (identifier or problem, own parameters), in any
    order: the same file gives the same fingerprint, another file another."""
    rows = sorted(json.dumps([r.key if r.identifier else r.problem, r.parameters],
                             sort_keys=True, default=str) for r in recipients)
    return hashlib.sha256("\n".join(rows).encode("utf-8", "surrogateescape")).hexdigest()


def parameters_fingerprint(parameters: Mapping[str, object]) -> str:
    """A digest of the parameters shared by every recipient."""
    text = json.dumps(dict(parameters), sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()


# ---------------------------------------------------------------- the journal


@dataclass(frozen=True)
class JobIdentity:
    """What identifies a bulk job: its message and fingerprints of its input (None: not
    known, e.g. recipients given as an iterator) and of its shared parameters."""

    message_id: int
    input: str | None
    parameters: str


_STARTED = "('sent', 'sending', 'unknown')"  # states in which something may have gone out


class Journal:
    """The job's SQLite journal: one row per recipient, every change committed at once.

    Opening it takes an exclusive lock held until :meth:`close` (a second opener gets
    :class:`JournalBusyError` at once). A journal belongs to one job; with ``dry_run`` it
    is read (if it exists) into memory and never written.
    """

    def __init__(self, path: str | os.PathLike[str], job: JobIdentity, *,
                 resume: bool = True, dry_run: bool = False) -> None:
        self.path = Path(path)
        try:
            if dry_run:
                self._db = self._connect(":memory:")
                if self.path.exists():
                    real = self._locked(self.path)
                    try:
                        real.backup(self._db)
                    finally:
                        real.close()
            else:
                self._db = self._locked(self.path)
            try:
                self._adopt(job, resume)
            except BaseException:
                self._db.close()
                raise
        except sqlite3.Error as exc:
            raise ConfigurationError(f"cannot use the journal {str(self.path)!r}: {exc}") \
                from exc
        self._lock = threading.Lock()

    @staticmethod
    def _connect(target: str) -> sqlite3.Connection:
        return sqlite3.connect(target, timeout=0, isolation_level=None,
                               check_same_thread=False)

    def _locked(self, path: Path) -> sqlite3.Connection:
        """A connection holding the journal's exclusive lock until it is closed."""
        db = self._connect(str(path))
        try:
            db.execute("PRAGMA locking_mode=EXCLUSIVE")  # never released until closed
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.execute("BEGIN EXCLUSIVE")
            db.execute("COMMIT")
        except sqlite3.OperationalError as exc:
            db.close()
            if "locked" in str(exc) or "busy" in str(exc):
                raise JournalBusyError(
                    f"the journal {str(path)!r} is in use by another run of this job; "
                    "nothing was sent by this one (wait for it to end, then --resume)") \
                    from None
            raise
        return db

    def _adopt(self, job: JobIdentity, resume: bool) -> None:
        """Create the tables, then take the job: continue it, start it afresh, or refuse."""
        db = self._db
        db.execute("CREATE TABLE IF NOT EXISTS job (message_id INTEGER NOT NULL)")
        columns = {row[1] for row in db.execute("PRAGMA table_info(job)")}
        for name in ("input", "parameters"):
            if name not in columns:  # a journal of an older version
                db.execute(f"ALTER TABLE job ADD COLUMN {name} TEXT")
        db.execute("""CREATE TABLE IF NOT EXISTS recipient (
            key TEXT PRIMARY KEY, line INTEGER, id_type TEXT, id_value TEXT,
            parameters TEXT, state TEXT NOT NULL, contact_id INTEGER,
            error_class TEXT, error_code TEXT, message TEXT, retryable INTEGER,
            updated REAL)""")
        started = db.execute(
            f"SELECT COUNT(*) FROM recipient WHERE state IN {_STARTED}").fetchone()[0]
        row = db.execute("SELECT message_id, input, parameters FROM job").fetchone()
        differs = [] if row is None else _differences(row, job)
        if started and differs:
            raise JournalError(f"the journal {str(self.path)!r} " + "; ".join(differs)
                               + f": {started} recipients of that job were sent or may have "
                               "been. Use another journal for a new job, or the same message, "
                               "input and parameters to continue that one")
        if started and not resume:
            raise JournalError(f"the journal {str(self.path)!r} holds a job already begun "
                               f"({started} recipients sent or may have been): pass --resume "
                               "(resume=True) to continue it, nothing is sent twice; or use "
                               "another journal (--journal) for a new job")
        if row is None or (not started and (differs or not resume)):
            # nothing went out under this journal: start afresh with this job
            db.execute("BEGIN")
            db.execute("DELETE FROM job")
            db.execute("DELETE FROM recipient")
            db.execute("INSERT INTO job VALUES (?, ?, ?)",
                       (job.message_id, job.input, job.parameters))
            db.execute("COMMIT")
        elif row[1] is None or row[2] is None:
            db.execute("UPDATE job SET input = COALESCE(input, ?), "
                       "parameters = COALESCE(parameters, ?)", (job.input, job.parameters))

    def enter(self, rec: BulkRecipient, parameters: Mapping[str, object]) -> dict[str, Any]:
        """The recipient's row, created as ``pending`` when new."""
        assert rec.identifier is not None
        with self._lock:
            self._db.execute(
                "INSERT OR IGNORE INTO recipient (key, line, id_type, id_value, parameters, "
                "state, updated) VALUES (?, ?, ?, ?, ?, 'pending', ?)",
                (rec.key, rec.line, rec.identifier.type.value, rec.identifier.value,
                 json.dumps(parameters, default=str), time.time()))
            return self._row(rec.key)

    def _row(self, key: str) -> dict[str, Any]:
        cur = self._db.execute("SELECT * FROM recipient WHERE key = ?", (key,))
        names = [d[0] for d in cur.description]
        return dict(zip(names, cur.fetchone(), strict=True))

    def set(self, key: str, state: str, *, contact_id: int | None = None,
            error: EngageError | None = None) -> None:
        """Record a new state (committed before this returns)."""
        with self._lock:
            self._db.execute(
                "UPDATE recipient SET state = ?, contact_id = COALESCE(?, contact_id), "
                "error_class = ?, error_code = ?, message = ?, retryable = ?, updated = ? "
                "WHERE key = ?",
                (state, contact_id, type(error).__name__ if error else None,
                 getattr(error, "error_code", None) if error else None,
                 str(error) if error else None,
                 None if error is None else int(_try_again_later(error)), time.time(), key))

    def close(self) -> None:
        """Release the journal (and its lock)."""
        self._db.close()


def _differences(row: tuple[Any, ...], job: JobIdentity) -> list[str]:
    """How the journal's job differs from ``job`` (an unknown fingerprint matches)."""
    message_id, input_print, params_print = row
    out = []
    if message_id != job.message_id:
        out.append(f"belongs to message {message_id}, not {job.message_id}")
    if None not in (input_print, job.input) and input_print != job.input:
        out.append("belongs to another input (the recipients differ)")
    if params_print is not None and params_print != job.parameters:
        out.append("belongs to other parameters (the shared parameters differ)")
    return out


def _try_again_later(error: EngageError) -> bool:
    """Whether a later run tries a failed recipient again: when the error may pass (the
    throttle, a server's hiccup) or was the job's, not the row's (credentials, settings)."""
    return error.retryable or isinstance(
        error, (RateLimitedError, AuthenticationError, ConfigurationError))


# ---------------------------------------------------------------- the job


@dataclass(eq=False)
class _Job:
    """One run: what it sends, its journal and report, and whether it must stop."""

    client: EngageClient
    message_id: int
    journal: Journal
    create_if_missing: bool
    resend_unknown: bool
    dry_run: bool
    report: BulkReport = field(init=False)
    stop: threading.Event = field(init=False, default_factory=threading.Event)
    fatal: EngageError | None = field(init=False, default=None)
    reached: bool = field(init=False, default=False)  # some call got an answer
    _lock: threading.Lock = field(init=False, default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.report = BulkReport(dry_run=self.dry_run)

    def _row(self, rec: BulkRecipient, params: Mapping[str, object],
             error: EngageError | None = None, message: str | None = None,
             stored: Mapping[str, Any] | None = None) -> BulkRow:
        """The report's row for ``rec``: from ``error``, or as ``stored`` in the journal."""
        ident = rec.identifier
        if stored is not None:
            kind, code = stored["error_class"], stored["error_code"]
            message = message or stored["message"]
        else:
            kind = type(error).__name__ if error is not None else None
            code = getattr(error, "error_code", None)
            message = message if message is not None else str(error) if error else None
        return BulkRow(rec.line, ident.type.value if ident else None,
                       ident.value if ident else None, dict(params), kind, code, message,
                       dict(rec.parameters), rec.source)

    def count(self, outcome: str, row: BulkRow | None = None) -> None:
        with self._lock:
            setattr(self.report, outcome, getattr(self.report, outcome) + 1)
            if row is not None:
                {"failed": self.report.failures, "unknown": self.report.unknowns,
                 "skipped": self.report.skips}[outcome].append(row)

    def run(self, rec: BulkRecipient, params: Mapping[str, object]) -> None:
        """One recipient: lookup (or create), then send; every state committed first."""
        row = self.journal.enter(rec, params)
        state, key = row["state"], rec.key
        if state == "sent":
            self.count("already_sent")
            return
        if state in ("sending", "unknown") and not self.resend_unknown:
            self.count("unknown", self._row(rec, params, stored=row, message=(
                None if row["message"] else "the send may have reached the server "
                "(interrupted while sending)")))
            return
        if state == "failed" and not row["retryable"]:
            self.count("failed", self._row(rec, params, stored=row))
            return
        contact_id: int | None = row["contact_id"]
        assert rec.identifier is not None
        try:
            if contact_id is None:
                if self.stop.is_set():
                    return
                contact_id = self._lookup(rec.identifier)
                self.journal.set(key, "looked_up", contact_id=contact_id)
            if self.stop.is_set():
                return
            if self.dry_run:
                self.count("sent")
                return
            self.journal.set(key, "sending", contact_id=contact_id)
        except EngageError as exc:
            self._failed(rec, params, exc, acted=False)
            return
        assert contact_id is not None
        try:
            self.client.message_send_single(self.message_id, contact_id, parameters=params)
        except EngageError as exc:
            self._failed(rec, params, exc, acted=may_have_acted(exc, "messageSendSingle"))
            return
        self.journal.set(key, "sent", contact_id=contact_id)
        self.count("sent")

    def _lookup(self, ident: Identifier) -> int | None:
        """The recipient's contact id (None in a dry run when it would be created)."""
        if not self.dry_run:
            contact, _ = lookup_or_create(self.client, ident,
                                          create_if_missing=self.create_if_missing)
        else:  # reads only
            try:
                contact, _ = lookup_or_create(self.client, ident)
            except ContactNotFoundError:
                if not self.create_if_missing:
                    raise
                return None
        self.reached = True
        return contact.id

    def _failed(self, rec: BulkRecipient, params: Mapping[str, object], exc: EngageError,
                *, acted: bool) -> None:
        outcome = "unknown" if acted else "failed"
        self.journal.set(rec.key, outcome, error=exc)
        self.count(outcome, self._row(rec, params, exc))
        unreachable = isinstance(exc, TransportError) and not exc.request_sent
        if isinstance(exc, (AuthenticationError, ConfigurationError)) \
                or (unreachable and not self.reached):
            self.fatal = self.fatal or exc  # every other recipient would fail the same way
            self.stop.set()
        elif not unreachable:
            self.reached = True


def send_bulk(client: EngageClient, message_id: int, recipients: Iterable[object], *,
              journal: str | os.PathLike[str], workers: int = defaults.BULK_WORKERS,
              create_if_missing: bool = False,
              parameters: Mapping[str, object] | None = None,
              on_progress: Callable[[BulkReport], None] | None = None,
              resend_unknown: bool = False, resume: bool = True,
              dry_run: bool = False) -> BulkReport:
    """Send prepared message ``message_id`` to each recipient once; see the module doc.

    Rows that cannot be used (no or a bad identifier, a parameter the service would
    refuse) are reported as failed with their line and cost no request; a recipient given
    twice is sent once (the repeat is skipped). Raises the error when the job cannot go on
    at all (authentication, configuration, an endpoint that never answered), after the
    calls in flight; Ctrl-C stops after them too, with :class:`BulkInterrupted` carrying
    the report. ``resume=False`` refuses a journal holding a job already begun.
    ``dry_run``: check every row and look the contacts up (reads only: nothing created,
    nothing sent, no journal written); the report counts what a real run would send.
    Recipients given as a list are fingerprinted into the journal (see the module doc);
    an iterator's are not.
    """
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise InvalidInputError("workers must be a positive int")
    base = dict(parameters or {})
    rows: Iterable[BulkRecipient] = recipients_from(recipients)
    fingerprint = None
    if isinstance(recipients, Sequence):
        rows = list(rows)
        fingerprint = input_fingerprint(rows)
    identity = JobIdentity(message_id, fingerprint, parameters_fingerprint(base))
    job = _Job(client, message_id, Journal(journal, identity, resume=resume, dry_run=dry_run),
               create_if_missing, resend_unknown, dry_run)
    seen: set[str] = set()
    pending: set[Future[None]] = set()

    def settle(done: Iterable[Future[None]]) -> None:
        for future in done:
            pending.discard(future)
            future.result()
            if on_progress is not None:
                on_progress(job.report)

    try:
        with ThreadPoolExecutor(workers, thread_name_prefix="engage-soap-bulk") as pool:
            try:
                for rec in rows:
                    if job.stop.is_set():
                        break
                    params = {**base, **rec.parameters}
                    problem = _check(client, message_id, rec, params, create_if_missing)
                    if problem is not None:
                        job.count("failed", job._row(rec, params, problem))
                        continue
                    if rec.key in seen:
                        job.count("skipped", job._row(rec, params,
                                                      message="given twice: sent once"))
                        continue
                    seen.add(rec.key)
                    pending.add(pool.submit(job.run, rec, params))
                    if len(pending) >= 2 * workers:
                        settle(wait(pending, return_when=FIRST_COMPLETED)[0])
                while pending:
                    settle(wait(pending, return_when=FIRST_COMPLETED)[0])
            except KeyboardInterrupt:
                job.stop.set()  # the calls in flight finish; nothing new starts
                job.report.interrupted = True
                settle(wait(pending)[0])
                raise BulkInterrupted(job.report) from None
    finally:
        job.journal.close()
    if job.fatal is not None:
        raise job.fatal
    return job.report


def _check(client: EngageClient, message_id: int, rec: BulkRecipient,
           params: Mapping[str, object], create_if_missing: bool) -> InvalidInputError | None:
    """Why this row cannot be sent (before any request), or None."""
    try:
        if rec.problem is not None:
            raise InvalidInputError(rec.problem)
        assert rec.identifier is not None
        check_create(rec.identifier, create_if_missing)
        client.check_send(message_id, parameters=params)
    except InvalidInputError as exc:
        return exc
    return None


# ---------------------------------------------------------------- files

# A cell starting with one of these runs as a formula in a spreadsheet (OWASP, "CSV
# injection"): the failed rows write it behind an apostrophe, and reading a file removes
# that apostrophe again, so a value survives the round trip unchanged.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _neutralised(cell: str) -> str:
    return "'" + cell if cell.lstrip("'").startswith(_FORMULA_START) else cell


def _restored(cell: str) -> str:
    return cell[1:] if cell.startswith("'") and cell.lstrip("'").startswith(_FORMULA_START) \
        else cell


class _Taken:
    """Lines of a file as a CSV reader takes them, kept until :meth:`clear`."""

    def __init__(self, lines: Iterable[str]) -> None:
        self.lines = iter(lines)
        self.taken: list[str] = []

    def __iter__(self) -> _Taken:
        return self

    def __next__(self) -> str:
        line = next(self.lines)
        self.taken.append(line)
        return line


def read_rows(path: str | os.PathLike[str], id_column: str = "email",
              ) -> Iterator[BulkRecipient]:
    """Recipients from a CSV file (a header row) or a JSON-lines file (``.jsonl``).

    ``id_column`` names the identifier (``email``, ``mobile_number``, ``app_alias``,
    ``external_id`` or ``contact_id``); every other column is a parameter of that
    recipient. A row that cannot be used (undecodable, not JSON, no identifier, more or
    fewer fields than the header, a field too large) comes back with its ``problem`` and
    line number; a file without the column, or naming a column twice, raises
    InvalidInputError. A cell written as ``'=...`` (an apostrophe before ``=``, ``+``,
    ``-``, ``@``, tab or CR: how ``write_failed`` neutralises formulas) is read without
    that apostrophe.
    """
    if id_column not in BY_NAME:
        raise InvalidInputError(f"the identifier column is one of {', '.join(BY_NAME)}")
    file = Path(path)
    # undecodable bytes are kept as surrogate escapes, so one bad row does not stop the rest
    with file.open(encoding="utf-8-sig", errors="surrogateescape", newline="") as fh:
        if file.suffix.lower() in (".jsonl", ".ndjson"):
            for number, text in enumerate(fh, start=1):
                if text.strip():
                    source = RowSource("jsonl", text=text)
                    try:
                        values = json.loads(text)
                    except ValueError as exc:
                        yield BulkRecipient(number, None, {}, f"line {number}: {exc}", source)
                        continue
                    yield _row_from(number, id_column, values, source)
            return
        yield from _csv_rows(fh, file.name, id_column)


def _csv_rows(fh: IO[str], name: str, id_column: str) -> Iterator[BulkRecipient]:
    lines = _Taken(fh)
    reader = csv.reader(lines)
    try:
        header = tuple(_restored(h) for h in next(reader, []))
    except csv.Error as exc:
        raise InvalidInputError(f"{name}: the header row cannot be read: {exc}") from None
    twice = sorted(h for h, n in Counter(header).items() if n > 1)
    if twice:
        raise InvalidInputError(f"{name} names the column {', '.join(map(repr, twice))} "
                                "more than once in its header")
    if id_column not in header:
        raise InvalidInputError(f"{name} has no {id_column!r} column (columns: "
                                f"{', '.join(header) or 'none'})")
    while True:
        lines.taken.clear()
        line = reader.line_num + 1
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:  # e.g. a field over csv.field_size_limit(): this row only
            yield BulkRecipient(line, None, {}, f"line {line}: {exc}",
                                RowSource("csv", header, text="".join(lines.taken)))
            continue
        if not fields:
            continue  # a blank line
        source = RowSource("csv", header, tuple(map(_restored, fields)))
        if len(fields) != len(header):
            yield BulkRecipient(line, None, {}, f"line {line} has {len(fields)} fields, the "
                                f"header has {len(header)}", source)
            continue
        yield _row_from(line, id_column, dict(zip(header, source.fields or (), strict=True)),
                        source)


def _row_from(line: int, id_column: str, values: object, source: RowSource) -> BulkRecipient:
    try:
        if not isinstance(values, dict):
            raise InvalidInputError("not an object of column names and values")
        if any(isinstance(v, str) and _undecodable(v) for v in (*values, *values.values())):
            raise InvalidInputError("not valid UTF-8")
        ident = identifier_from_text(id_column, values.get(id_column))
        params = {k: v for k, v in values.items() if k != id_column}
        return BulkRecipient(line, ident, params, None, source)
    except InvalidInputError as exc:
        return BulkRecipient(line, None, {}, f"line {line}: {exc}", source)


def _undecodable(text: str) -> bool:
    return any("\udc80" <= ch <= "\udcff" for ch in text)


def write_failed(path: str | os.PathLike[str], report: BulkReport, id_column: str) -> int:
    """The failed rows, each exactly as its input held it and in its order, as a file to
    feed back; returns how many were written.

    Rows read from a CSV file are written as CSV under that file's header (formula-leading
    cells behind an apostrophe, see :func:`read_rows`; a row that could not be parsed as
    its text), rows of a JSON-lines file as their lines; other rows as CSV with the
    ``id_column`` and their own parameters. Undecodable bytes are written back as they were.
    """
    rows = sorted(report.failures, key=lambda r: r.line)  # in the input's order
    formats = {r.source.format for r in rows if r.source is not None}
    with Path(path).open("w", encoding="utf-8", errors="surrogateescape", newline="") as fh:
        if formats == {"jsonl"}:
            for r in rows:
                assert r.source is not None and r.source.text is not None
                fh.write(r.source.text if r.source.text.endswith("\n") else r.source.text + "\n")
            return len(rows)
        header = next((r.source.header for r in rows if r.source is not None
                       and r.source.format == "csv"), None)
        if header is None:
            header = (id_column, *sorted({k for r in rows for k in r.own_parameters}))
        writer = csv.writer(fh)
        writer.writerow([_neutralised(h) for h in header])
        for r in rows:
            if r.source is not None and r.source.format == "csv" and r.source.fields is None:
                fh.write(r.source.text or "")  # could not be parsed: as it was
                continue
            if r.source is not None and r.source.format == "csv":
                fields: Sequence[object] = r.source.fields or ()
            else:
                own = {id_column: r.identifier_value or "", **r.own_parameters}
                fields = [own.get(h, "") for h in header]
            writer.writerow([_neutralised(str(f)) for f in fields])
    return len(rows)
