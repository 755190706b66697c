"""The hub's own small database (SQLite): users, sign-in failures, sessions, its audit log and
the erasure requests it filed.

The hub never writes the warehouse (a run may hold DuckDB's single writer lock for minutes), so
what happens in the hub is recorded here, in `settings.hub_database` (`data/hub/hub.sqlite`):

- `users`: name, role and an argon2id hash of the password (never the password);
- `sign_in_failures`: failed sign-ins per typed name, known or not, so a locked name tells
  nobody whether it exists; `MAX_FAILURES` in a row lock the name for `LOCKOUT`;
- `sessions`: the SHA-256 of each session id (the id itself lives only in the signed cookie),
  its CSRF token, and when it expires (`SESSION_IDLE` without a request, `SESSION_MAX` at most);
- `audit_log`: one row per download, sign-in, sign-out, lock-out, erasure request filed and
  user change, in the shape of the warehouse's `privacy.audit_log` (ml/audit.py) plus who did
  it and their role. Targets are export names, file paths, request ids and user names; never
  a customer's identifier;
- `erasure_filings`: which request ids the hub filed, as which file, by whom (never the
  subject, which lives only in the landing file).
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import sqlite3
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from ml.hub.roles import check_role

MAX_FAILURES = 5
LOCKOUT = timedelta(minutes=15)
SESSION_IDLE = timedelta(hours=1)
SESSION_MAX = timedelta(hours=12)
MIN_PASSWORD = 12
USERNAME = re.compile(r"^[a-z][a-z0-9._-]{1,31}$")
ACTIONS = (
    "download",
    "sign_in",
    "sign_in_failed",
    "locked_out",
    "sign_out",
    "erasure_filed",
    "user_added",
    "user_removed",
    "role_changed",
    "password_changed",
    "unlocked",
)

_SCHEMA = """
create table if not exists users (
    username text primary key,
    role text not null,
    password_hash text not null,
    created_at text not null,
    updated_at text not null
);
create table if not exists sign_in_failures (
    username text primary key,
    failures integer not null,
    last_failed_at text not null,
    locked_until text
);
create table if not exists sessions (
    session_hash text primary key,
    username text not null,
    csrf_token text not null,
    created_at text not null,
    last_seen_at text not null
);
create table if not exists audit_log (
    audit_id text primary key,
    occurred_at text not null,
    action text not null,
    username text not null,
    role text,
    target text not null,
    run_id text,
    files text not null,
    row_count integer not null,
    details text not null
);
create index if not exists audit_log_occurred on audit_log (occurred_at);
create table if not exists erasure_filings (
    request_id text primary key,
    file text not null,
    filed_by text not null,
    filed_at text not null
);
"""

_HASHER = PasswordHasher()


class UserError(ValueError):
    """A user command cannot be done as asked; the message says why and what to do."""


@dataclass(frozen=True)
class User:
    username: str
    role: str
    created_at: str


@dataclass(frozen=True)
class Session:
    """A signed-in session: the user, their current role, and the CSRF token of its forms."""

    session_id: str
    username: str
    role: str
    csrf_token: str


@dataclass(frozen=True)
class SignIn:
    """The outcome of a sign-in: `user` when it worked; otherwise `failures_left` before the
    name is locked, or `locked_until` when it is."""

    user: User | None = None
    failures_left: int = 0
    locked_until: datetime | None = None


def now() -> datetime:
    """UTC now without a time zone, to the second (how every time here is stored)."""
    return datetime.now(UTC).replace(tzinfo=None, microsecond=0)


def _text(moment: datetime) -> str:
    return moment.isoformat(sep=" ", timespec="seconds")


def _moment(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def check_username(name: str) -> str:
    """The user name in lower case if it has 2 to 32 letters, digits, dots, dashes or
    underscores and starts with a letter."""
    value = (name or "").strip().lower()
    if not USERNAME.match(value):
        raise UserError(
            f"{name!r} is not a user name: use 2 to 32 lower-case letters, digits, '.', '-' "
            "or '_', starting with a letter (e.g. maria.lopez)"
        )
    return value


def check_password(password: str, username: str) -> str:
    """The password if it is long enough and not the user name."""
    if len(password) < MIN_PASSWORD:
        raise UserError(f"the password must be at least {MIN_PASSWORD} characters long")
    if password.strip().lower() == username.lower():
        raise UserError("the password must not be the user name")
    return password


class HubStore:
    """The hub's SQLite database at `path` (created with its tables on first use)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(self.path, timeout=10)
        try:
            # WAL lets pages read while a download is being recorded; it stays set in the file
            connection.execute("pragma journal_mode = wal")
            connection.executescript(_SCHEMA)
        finally:
            connection.close()
        self.path.chmod(0o600)

    @contextmanager
    def connect(self) -> Iterator[sqlite3.Connection]:
        """A connection in one transaction: committed when the block ends, rolled back on an
        error."""
        connection = sqlite3.connect(self.path, timeout=10, isolation_level=None)
        try:
            connection.row_factory = sqlite3.Row
            connection.execute("pragma busy_timeout = 10000")
            connection.execute("begin immediate")
            try:
                yield connection
            except BaseException:
                connection.execute("rollback")
                raise
            connection.execute("commit")
        finally:
            connection.close()

    # --- users --------------------------------------------------------------------------------

    def add_user(self, name: str, role: str, password: str, actor: str) -> User:
        username = check_username(name)
        check_role(role)
        check_password(password, username)
        moment = _text(now())
        with self.connect() as connection:
            if connection.execute("select 1 from users where username = ?", [username]).fetchone():
                raise UserError(
                    f"user {username} already exists: change it with `users set-role` or "
                    "`users set-password`, or remove it first"
                )
            connection.execute(
                "insert into users values (?, ?, ?, ?, ?)",
                [username, role, _HASHER.hash(password), moment, moment],
            )
            self._audit(connection, "user_added", actor, None, username, details={"role": role})
        return User(username, role, moment)

    def set_role(self, name: str, role: str, actor: str) -> None:
        username = check_username(name)
        check_role(role)
        with self.connect() as connection:
            self._existing(connection, username)
            connection.execute(
                "update users set role = ?, updated_at = ? where username = ?",
                [role, _text(now()), username],
            )
            self._audit(connection, "role_changed", actor, None, username, details={"role": role})

    def set_password(self, name: str, password: str, actor: str) -> None:
        username = check_username(name)
        check_password(password, username)
        with self.connect() as connection:
            self._existing(connection, username)
            connection.execute(
                "update users set password_hash = ?, updated_at = ? where username = ?",
                [_HASHER.hash(password), _text(now()), username],
            )
            # a new password ends every session of the old one
            connection.execute("delete from sessions where username = ?", [username])
            self._audit(connection, "password_changed", actor, None, username)

    def remove_user(self, name: str, actor: str) -> None:
        username = check_username(name)
        with self.connect() as connection:
            self._existing(connection, username)
            connection.execute("delete from users where username = ?", [username])
            connection.execute("delete from sessions where username = ?", [username])
            self._audit(connection, "user_removed", actor, None, username)

    def unlock(self, name: str, actor: str) -> bool:
        """Forget a name's failed sign-ins; whether it had any."""
        username = check_username(name)
        with self.connect() as connection:
            removed = connection.execute(
                "delete from sign_in_failures where username = ?", [username]
            ).rowcount
            self._audit(connection, "unlocked", actor, None, username)
        return bool(removed)

    def users(self) -> list[User]:
        with self.connect() as connection:
            rows = connection.execute(
                "select username, role, created_at from users order by username"
            ).fetchall()
        return [User(row["username"], row["role"], row["created_at"]) for row in rows]

    def _existing(self, connection: sqlite3.Connection, username: str) -> None:
        if not connection.execute("select 1 from users where username = ?", [username]).fetchone():
            raise UserError(f"there is no user {username}: `users list` shows who there is")

    # --- signing in ---------------------------------------------------------------------------

    def sign_in(self, name: str, password: str) -> SignIn:
        """Check a name and password, counting failures and locking the name after
        MAX_FAILURES in a row; a locked name is refused without looking at the password."""
        username = (name or "").strip().lower()
        moment = now()
        with self.connect() as connection:
            failure = connection.execute(
                "select failures, locked_until from sign_in_failures where username = ?",
                [username],
            ).fetchone()
            locked_until = _moment(failure["locked_until"]) if failure else None
            if locked_until and locked_until > moment:
                return SignIn(locked_until=locked_until)
            failures = failure["failures"] if failure and not locked_until else 0
            row = connection.execute(
                "select username, role, password_hash, created_at from users where username = ?",
                [username],
            ).fetchone()
            if row is not None and _verify(row["password_hash"], password):
                connection.execute("delete from sign_in_failures where username = ?", [username])
                if _HASHER.check_needs_rehash(row["password_hash"]):
                    connection.execute(
                        "update users set password_hash = ? where username = ?",
                        [_HASHER.hash(password), username],
                    )
                user = User(row["username"], row["role"], row["created_at"])
                self._audit(connection, "sign_in", username, user.role, username)
                return SignIn(user=user)
            if row is None:
                _verify(_dummy_hash(), password)  # the same work for a name that does not exist
            failures += 1
            locked = moment + LOCKOUT if failures >= MAX_FAILURES else None
            connection.execute(
                "insert or replace into sign_in_failures values (?, ?, ?, ?)",
                [username, failures, _text(moment), _text(locked) if locked else None],
            )
            shown = username if USERNAME.match(username) else "(not a valid user name)"
            self._audit(
                connection,
                "locked_out" if locked else "sign_in_failed",
                shown,
                None,
                shown,
                details={"failures": failures},
            )
        if locked:
            return SignIn(locked_until=locked)
        return SignIn(failures_left=MAX_FAILURES - failures)

    # --- sessions -----------------------------------------------------------------------------

    def open_session(self, user: User) -> Session:
        session_id = secrets.token_urlsafe(32)
        csrf_token = secrets.token_urlsafe(32)
        moment = _text(now())
        with self.connect() as connection:
            connection.execute(
                "insert into sessions values (?, ?, ?, ?, ?)",
                [_session_hash(session_id), user.username, csrf_token, moment, moment],
            )
        return Session(session_id, user.username, user.role, csrf_token)

    def session(self, session_id: str) -> Session | None:
        """The live session with this id (its user's role as it is now), or None when it is
        unknown, expired, or its user was removed; a live session's idle clock restarts."""
        moment = now()
        with self.connect() as connection:
            row = connection.execute(
                "select sessions.username, users.role, sessions.csrf_token, sessions.created_at, "
                "sessions.last_seen_at from sessions inner join users using (username) "
                "where sessions.session_hash = ?",
                [_session_hash(session_id)],
            ).fetchone()
            if row is None:
                return None
            created, seen = _moment(row["created_at"]), _moment(row["last_seen_at"])
            if moment - seen > SESSION_IDLE or moment - created > SESSION_MAX:
                connection.execute(
                    "delete from sessions where session_hash = ?", [_session_hash(session_id)]
                )
                return None
            connection.execute(
                "update sessions set last_seen_at = ? where session_hash = ?",
                [_text(moment), _session_hash(session_id)],
            )
        return Session(session_id, row["username"], row["role"], row["csrf_token"])

    def close_session(self, session: Session) -> None:
        with self.connect() as connection:
            connection.execute(
                "delete from sessions where session_hash = ?", [_session_hash(session.session_id)]
            )
            self._audit(connection, "sign_out", session.username, session.role, session.username)

    # --- the audit log ------------------------------------------------------------------------

    def record(
        self,
        action: str,
        username: str,
        role: str | None,
        target: str,
        *,
        run_id: str | None = None,
        files: Sequence[str] = (),
        rows: int = 0,
        details: Mapping[str, Any] | None = None,
    ) -> str:
        """Append one audit row and return its id."""
        with self.connect() as connection:
            return self._audit(
                connection,
                action,
                username,
                role,
                target,
                run_id=run_id,
                files=files,
                rows=rows,
                details=details,
            )

    def _audit(
        self,
        connection: sqlite3.Connection,
        action: str,
        username: str,
        role: str | None,
        target: str,
        *,
        run_id: str | None = None,
        files: Sequence[str] = (),
        rows: int = 0,
        details: Mapping[str, Any] | None = None,
    ) -> str:
        if action not in ACTIONS:
            raise ValueError(f"unknown hub audit action {action!r}; one of {', '.join(ACTIONS)}")
        audit_id = uuid.uuid4().hex
        connection.execute(
            "insert into audit_log values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                audit_id,
                datetime.now(UTC).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds"),
                action,
                username,
                role,
                target,
                run_id,
                json.dumps([str(f) for f in files]),
                int(rows),
                json.dumps(dict(details or {}), sort_keys=True, default=str),
            ],
        )
        return audit_id

    def audit_rows(self, limit: int = 500) -> list[dict[str, Any]]:
        """The newest audit rows first, with `files` and `details` decoded."""
        with self.connect() as connection:
            rows = connection.execute(
                "select * from audit_log order by occurred_at desc limit ?", [limit]
            ).fetchall()
        decoded = []
        for row in rows:
            item = dict(row)
            item["files"] = json.loads(item["files"])
            item["details"] = json.loads(item["details"])
            decoded.append(item)
        return decoded

    # --- erasure requests filed ---------------------------------------------------------------

    def record_filing(self, request_id: str, file: str, username: str, role: str) -> None:
        with self.connect() as connection:
            connection.execute(
                "insert into erasure_filings values (?, ?, ?, ?)",
                [request_id, file, username, _text(now())],
            )
            self._audit(
                connection, "erasure_filed", username, role, request_id, files=[file], rows=1
            )

    def filings(self) -> list[dict[str, Any]]:
        with self.connect() as connection:
            rows = connection.execute(
                "select * from erasure_filings order by filed_at desc, request_id desc"
            ).fetchall()
        return [dict(row) for row in rows]


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _HASHER.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


_DUMMY: list[str] = []


def _dummy_hash() -> str:
    if not _DUMMY:
        _DUMMY.append(_HASHER.hash(secrets.token_urlsafe(16)))
    return _DUMMY[0]


def _session_hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode("utf-8")).hexdigest()
