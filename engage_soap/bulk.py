"""Bulk sending: one prepared message to many recipients, at the account's rate, resumable,
never twice.

Lookups and sends run on a bounded pool of threads that share the client's rate limiter
(and its back-off after the server's throttle). A journal (one SQLite file per job)
records each recipient's state, committed before the next step:

``pending`` -> ``looked_up`` (contact id) -> ``sending`` -> ``sent``, or ``failed`` (error
class and code; retried on a later run when retryable), or ``unknown`` (the send may have
reached the server: a timeout or a broken connection after sending; never sent again
unless ``resend_unknown``). A crash while ``sending`` leaves ``sending``, read back as
unknown. Running a job again continues it: what was sent is not sent again.
"""

from __future__ import annotations

import functools
import json
import os
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import (
    AuthenticationError,
    ConfigurationError,
    ContactNotFoundError,
    EngageError,
    EngageFault,
    InvalidInputError,
    ObjectAlreadyExistsError,
    RateLimitedError,
)
from .models import BY_NAME, BY_TYPE, Identifier, IdentifierType

if TYPE_CHECKING:
    from .client import EngageClient

__all__ = ["BulkInterrupted", "BulkRecipient", "BulkReport", "BulkRow", "Journal", "read_rows",
           "send_bulk", "write_failed"]


@dataclass(frozen=True)
class BulkRecipient:
    """One input row: its line number, identifier, own parameters, or why it is unusable."""

    line: int
    identifier: Identifier | None
    parameters: Mapping[str, object] = field(default_factory=dict)
    problem: str | None = None

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
    """A recipient the report lists (failed, unknown or skipped) and why."""

    line: int
    identifier_type: str | None
    identifier_value: str | None
    parameters: Mapping[str, object]
    error_class: str | None = None
    error_code: str | None = None
    message: str | None = None


@dataclass
class BulkReport:
    """What a bulk job did: counts, and the failed, unknown and skipped rows."""

    sent: int = 0
    already_sent: int = 0
    skipped: int = 0
    failed: int = 0
    unknown: int = 0
    failures: list[BulkRow] = field(default_factory=list)
    unknowns: list[BulkRow] = field(default_factory=list)
    skips: list[BulkRow] = field(default_factory=list)
    interrupted: bool = False

    @property
    def done(self) -> int:
        return self.sent + self.already_sent + self.skipped + self.failed + self.unknown

    @property
    def ok(self) -> bool:
        """True when every recipient was sent, now or in an earlier run."""
        return not (self.failed or self.unknown or self.interrupted)

    @property
    def failed_by_code(self) -> dict[str, int]:
        return dict(Counter(r.error_code or r.error_class or "?" for r in self.failures))

    def lines(self) -> list[str]:
        """The report as text: the counts, then each failed and unknown row with its line."""
        out = [f"sent: {self.sent}, already sent: {self.already_sent}, skipped: "
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
            "sent", "already_sent", "skipped", "failed", "unknown", "interrupted")}
        out["failed_by_code"] = self.failed_by_code
        for name in rows:
            out[name] = [dict(r.__dict__, parameters=dict(r.parameters))
                         for r in getattr(self, name)]
        return out


class BulkInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped the job after the calls in flight; ``report`` says how far it got."""

    def __init__(self, report: BulkReport) -> None:
        super().__init__("interrupted")
        self.report = report


# ---------------------------------------------------------------- input


def recipients_from(items: Iterable[object]) -> Iterator[BulkRecipient]:
    """Input rows as BulkRecipients: an e-mail string, an Identifier, a mapping with one
    identifier keyword (``email``, ``mobile_number``, ...) or ``identifier`` and optional
    ``parameters`` (and ``line``), or a BulkRecipient."""
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
    named = [k for k in (*BY_NAME, "identifier") if item.get(k) not in (None, "")]
    if len(named) != 1:
        raise InvalidInputError(f"line {line}: give exactly one identifier "
                                f"({', '.join(BY_NAME)} or identifier), got "
                                f"{', '.join(named) or 'none'}")
    key = named[0]
    value = item[key]
    if key == "identifier":
        if not isinstance(value, Identifier):
            raise InvalidInputError(f"line {line}: identifier must be an Identifier")
        ident = value
    elif BY_NAME[key].type is IdentifierType.ID:
        ident = Identifier(IdentifierType.ID, str(value).strip())
    else:
        ident = Identifier(BY_NAME[key].type, value)
    params = item.get("parameters") or {}
    if not isinstance(params, Mapping):
        raise InvalidInputError(f"line {line}: parameters must be a mapping")
    return BulkRecipient(line, ident, dict(params))


# ---------------------------------------------------------------- the journal


class Journal:
    """The job's SQLite journal: one row per recipient, every change committed at once.

    A journal belongs to one message id; opening it for another is refused.
    """

    def __init__(self, path: str | os.PathLike[str], message_id: int) -> None:
        self.path = Path(path)
        try:
            self._db = sqlite3.connect(str(self.path), check_same_thread=False,
                                       isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript("""
                CREATE TABLE IF NOT EXISTS job (message_id INTEGER NOT NULL);
                CREATE TABLE IF NOT EXISTS recipient (
                    key TEXT PRIMARY KEY, line INTEGER, id_type TEXT, id_value TEXT,
                    parameters TEXT, state TEXT NOT NULL, contact_id INTEGER,
                    error_class TEXT, error_code TEXT, message TEXT, retryable INTEGER,
                    updated REAL);
            """)
            row = self._db.execute("SELECT message_id FROM job").fetchone()
            if row is None:
                self._db.execute("INSERT INTO job VALUES (?)", (message_id,))
            elif row[0] != message_id:
                raise ConfigurationError(f"the journal {str(self.path)!r} belongs to message "
                                         f"{row[0]}, not {message_id}")
        except sqlite3.Error as exc:
            raise ConfigurationError(f"cannot use the journal {str(self.path)!r}: {exc}") \
                from exc
        self._lock = threading.Lock()

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
                 None if error is None else int(_retryable(error)), time.time(), key))

    def close(self) -> None:
        self._db.close()


def _retryable(error: EngageError) -> bool:
    """Whether a later run should try this recipient again (a failed send that may have
    gone out is ``unknown`` instead, and never retried by this rule)."""
    return isinstance(error, RateLimitedError) or error.retryable


def _maybe_sent(error: EngageError) -> bool:
    """True when a failed send may still have reached the server (only a server's answer
    proves it did not: a fault, the throttle, a refused login)."""
    return error.request_sent and not isinstance(
        error, (EngageFault, RateLimitedError, AuthenticationError))


# ---------------------------------------------------------------- the job


class _Job:
    def __init__(self, client: EngageClient, message_id: int, journal: Journal,
                 create_if_missing: bool, resend_unknown: bool) -> None:
        self.client = client
        self.message_id = message_id
        self.journal = journal
        self.create_if_missing = create_if_missing
        self.resend_unknown = resend_unknown
        self.report = BulkReport()
        self.stop = threading.Event()
        self.fatal: EngageError | None = None
        self._lock = threading.Lock()

    def _row(self, rec: BulkRecipient, params: Mapping[str, object],
             error: EngageError | None = None, message: str | None = None) -> BulkRow:
        ident = rec.identifier
        return BulkRow(rec.line, ident.type.value if ident else None,
                       ident.value if ident else None, dict(params),
                       type(error).__name__ if error is not None else None,
                       getattr(error, "error_code", None),
                       message if message is not None else str(error) if error else None)

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
            self.count("unknown", BulkRow(rec.line, row["id_type"], row["id_value"],
                                          dict(params), row["error_class"], row["error_code"],
                                          row["message"] or "the send may have reached the "
                                          "server (interrupted while sending)"))
            return
        if state == "failed" and not row["retryable"]:
            self.count("failed", BulkRow(rec.line, row["id_type"], row["id_value"],
                                         dict(params), row["error_class"], row["error_code"],
                                         row["message"]))
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
            self.journal.set(key, "sending", contact_id=contact_id)
        except EngageError as exc:
            self._failed(rec, params, exc, maybe_sent=False)
            return
        try:
            self.client.message_send_single(self.message_id, contact_id, parameters=params)
        except EngageError as exc:
            self._failed(rec, params, exc, maybe_sent=_maybe_sent(exc))
            return
        self.journal.set(key, "sent", contact_id=contact_id)
        self.count("sent")

    def _lookup(self, ident: Identifier) -> int:
        try:
            return self.client.contact_get(ident).id
        except ContactNotFoundError:
            if not self.create_if_missing or ident.type is IdentifierType.ID:
                raise
        try:
            keyword: dict[str, Any] = {BY_TYPE[ident.type].name: ident.value}
            return self.client.contact_create(**keyword).id
        except ObjectAlreadyExistsError:  # created meanwhile elsewhere
            return self.client.contact_get(ident).id

    def _failed(self, rec: BulkRecipient, params: Mapping[str, object], exc: EngageError,
                *, maybe_sent: bool) -> None:
        self.journal.set(rec.key, "unknown" if maybe_sent else "failed", error=exc)
        self.count("unknown" if maybe_sent else "failed", self._row(rec, params, exc))
        if isinstance(exc, (AuthenticationError, ConfigurationError)):
            self.fatal = self.fatal or exc  # every other recipient would fail the same way
            self.stop.set()


def send_bulk(client: EngageClient, message_id: int, recipients: Iterable[object], *,
              journal: str | os.PathLike[str], workers: int = 8, create_if_missing: bool = False,
              parameters: Mapping[str, object] | None = None,
              on_progress: Callable[[BulkReport], None] | None = None,
              resend_unknown: bool = False) -> BulkReport:
    """Send prepared message ``message_id`` to each recipient once; see the module doc.

    Rows that cannot be used (no or a bad identifier, a parameter the service would
    refuse) are reported as failed with their line and cost no request; a recipient given
    twice is sent once (the repeat is skipped). Raises the error when the job cannot go on
    at all (authentication, configuration), after the calls in flight; Ctrl-C stops after
    them too, with :class:`BulkInterrupted` carrying the report.
    """
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise InvalidInputError("workers must be a positive int")
    base = dict(parameters or {})
    job = _Job(client, message_id, Journal(journal, message_id), create_if_missing,
               resend_unknown)
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
                for rec in recipients_from(recipients):
                    if job.stop.is_set():
                        break
                    params = {**base, **rec.parameters}
                    problem = _check(client, message_id, rec, params)
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
           params: Mapping[str, object]) -> InvalidInputError | None:
    """Why this row cannot be sent (before any request), or None."""
    try:
        if rec.problem is not None:
            raise InvalidInputError(rec.problem)
        client._wire.check("messageSendSingle", client._message(message_id, 1, params, (),
                                                                None))
    except InvalidInputError as exc:
        return exc
    return None



# ---------------------------------------------------------------- files


def read_rows(path: str | os.PathLike[str], id_column: str = "email",
              ) -> Iterator[BulkRecipient]:
    """Recipients from a CSV file (a header row) or a JSON-lines file (``.jsonl``).

    ``id_column`` names the identifier (``email``, ``mobile_number``, ``app_alias``,
    ``external_id`` or ``contact_id``); every other column is a parameter of that
    recipient. A row that cannot be used (undecodable, not JSON, no identifier) comes back
    with its ``problem`` and line number; a file without the column raises
    InvalidInputError.
    """
    if id_column not in BY_NAME:
        raise InvalidInputError(f"the identifier column is one of {', '.join(BY_NAME)}")
    file = Path(path)
    # undecodable bytes are kept as surrogate escapes, so one bad row does not stop the rest
    with file.open(encoding="utf-8-sig", errors="surrogateescape", newline="") as fh:
        if file.suffix.lower() in (".jsonl", ".ndjson"):
            for number, text in enumerate(fh, start=1):
                if text.strip():
                    yield _row_from(number, id_column, functools.partial(json.loads, text))
            return
        import csv

        reader = csv.DictReader(fh)
        if id_column not in (reader.fieldnames or []):
            raise InvalidInputError(f"{file.name} has no {id_column!r} column (columns: "
                                    f"{', '.join(reader.fieldnames or []) or 'none'})")
        for values in reader:
            yield _row_from(reader.line_num, id_column, functools.partial(dict, values))


def _row_from(line: int, id_column: str, load: Callable[[], Any]) -> BulkRecipient:
    try:
        values = load()
        if not isinstance(values, dict):
            raise InvalidInputError("not an object of column names and values")
        if any(isinstance(v, str) and _undecodable(v) for v in (*values, *values.values())):
            raise InvalidInputError("not valid UTF-8")
        params = {k: v for k, v in values.items() if k != id_column and k is not None}
        return _from_mapping(line, {id_column: values.get(id_column), "parameters": params})
    except (InvalidInputError, ValueError) as exc:
        return BulkRecipient(line, None, {}, f"line {line}: {exc}")


def _undecodable(text: str) -> bool:
    return any("\udc80" <= ch <= "\udcff" for ch in text)


def write_failed(path: str | os.PathLike[str], report: BulkReport, id_column: str) -> int:
    """The failed rows as a CSV ready to be fed back (identifier column, then parameters);
    returns how many were written."""
    import csv

    rows = list(report.failures)
    names = sorted({k for r in rows for k in r.parameters})
    with Path(path).open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow([id_column, *names])
        for r in rows:
            writer.writerow([r.identifier_value or "", *(r.parameters.get(n, "") for n in names)])
    return len(rows)
