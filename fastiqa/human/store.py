"""The votes database of a study: SQLite (standard library) in WAL mode with
synchronous=FULL, so a vote is on disk when add_vote returns.

Tables (all append-only: triggers refuse UPDATE and DELETE):
  meta(key, value)                       schema_version, created_by
  raters(id, name, token, created)       one row per rater session
  plan(rater_id, pos, trial)             the rater's trials, written at session start
  votes(rater_id, pos, value, ...)       UNIQUE(rater_id, pos): a trial is answered once
  events(rater_id, kind, data, created)  session start / resume, breaks, page events

Raters are matched by their normalised name (name_key: NFKC, trimmed, inner
spaces collapsed, case-folded), so " Carl-Careful " and "carl-careful" are one
rater; the name is stored as given (trimmed). A rater's votes come in plan order:
a vote for a later trial than their next unanswered one is refused (OrderError),
so the training trials cannot be skipped.
"""
import json
import secrets
import sqlite3
import threading
import time
import unicodedata

from .._version import __version__
from .errors import LimitError, OrderError, StudyError

SCHEMA_VERSION = 1

_DDL = """
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS raters(id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE,
    token TEXT NOT NULL UNIQUE, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS plan(rater_id INTEGER NOT NULL REFERENCES raters(id), pos INTEGER NOT NULL,
    trial TEXT NOT NULL, PRIMARY KEY(rater_id, pos));
CREATE TABLE IF NOT EXISTS votes(id INTEGER PRIMARY KEY, rater_id INTEGER NOT NULL, pos INTEGER NOT NULL,
    value INTEGER NOT NULL, response_ms REAL, viewport_w INTEGER, viewport_h INTEGER, dpr REAL,
    created REAL NOT NULL, UNIQUE(rater_id, pos), FOREIGN KEY(rater_id, pos) REFERENCES plan(rater_id, pos));
CREATE TABLE IF NOT EXISTS events(id INTEGER PRIMARY KEY, rater_id INTEGER, kind TEXT NOT NULL,
    data TEXT NOT NULL, created REAL NOT NULL);
"""
_APPEND_ONLY = ("raters", "plan", "votes", "events")


def clean_name(name):
    """The name as stored: NFC, trimmed, runs of white space made one space."""
    return " ".join(unicodedata.normalize("NFC", name).split())


def name_key(name):
    """What two names must share to be the same rater: NFKC, trimmed, spaces collapsed, case-folded."""
    return " ".join(unicodedata.normalize("NFKC", name).casefold().split())


class Store:
    """One connection, serialised by a lock (the server's threads share it); the
    checks that must hold across processes (a free name, the next trial) run in
    BEGIN IMMEDIATE transactions."""

    def __init__(self, path):
        self.path = path
        self._lock = threading.Lock()
        self._plans = {}  # rater id -> plan (plans never change once written)
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
        self._db.execute("PRAGMA busy_timeout=30000")
        mode = self._db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if mode.lower() != "wal":
            raise StudyError(f"{path}: SQLite could not switch to WAL mode (got {mode})")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._init_schema()

    def _init_schema(self):
        with self._lock:
            has_meta = self._db.execute("SELECT name FROM sqlite_master WHERE name='meta'").fetchone()
            if has_meta:
                row = self._db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
                version = int(row[0]) if row else 0
                if version > SCHEMA_VERSION:
                    self._db.close()
                    raise StudyError(f"{self.path} was written by a newer fastiqa (database schema {version} > "
                                     f"{SCHEMA_VERSION}); upgrade fastiqa to open this study")
                return
            triggers = "".join(f"CREATE TRIGGER IF NOT EXISTS {t}_no_{op.lower()} BEFORE {op} ON {t} "
                               f"BEGIN SELECT RAISE(ABORT, '{t} is append-only'); END;\n"
                               for t in _APPEND_ONLY for op in ("UPDATE", "DELETE"))
            self._db.executescript(
                "BEGIN IMMEDIATE;" + _DDL + triggers
                + f"INSERT OR IGNORE INTO meta VALUES('schema_version', '{SCHEMA_VERSION}');"
                + f"INSERT OR IGNORE INTO meta VALUES('created_by', 'fastiqa {__version__}');COMMIT;")

    def close(self):
        with self._lock:
            self._db.close()

    # --- raters and plans ---------------------------------------------------------
    def create_rater(self, name, plan, max_raters=None):
        """(rater_id, token) of a new session with its plan, or None when the name (matched by
        name_key) is taken. LimitError when the study already has max_raters sessions."""
        token = secrets.token_urlsafe(18)
        name, key = clean_name(name), name_key(name)
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                names = [r[0] for r in self._db.execute("SELECT name FROM raters")]
                if any(name_key(n) == key for n in names):
                    return None
                if max_raters is not None and len(names) >= max_raters:
                    raise LimitError(f"this study has reached its limit of {max_raters} rater sessions "
                                     "(fastiqa human serve --max-raters)")
                cur = self._db.execute("INSERT INTO raters(name, token, created) VALUES(?, ?, ?)",
                                       (name, token, time.time()))
                rid = cur.lastrowid
                self._db.executemany("INSERT INTO plan VALUES(?, ?, ?)",
                                     [(rid, k, json.dumps(t)) for k, t in enumerate(plan)])
                self._db.execute("COMMIT")
            finally:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
        return rid, token

    def rater(self, token=None, name=None):
        """{'id', 'name', 'token'} or None."""
        col, val = ("token", token) if token is not None else ("name", name)
        with self._lock:
            row = self._db.execute(f"SELECT id, name, token FROM raters WHERE {col}=?", (val,)).fetchone()
        return None if row is None else {"id": row[0], "name": row[1], "token": row[2]}

    def raters(self):
        with self._lock:
            return [{"id": r[0], "name": r[1]} for r in self._db.execute("SELECT id, name FROM raters ORDER BY id")]

    def plan(self, rater_id):
        """The rater's trials in order (cached: a plan is written once, with the session)."""
        with self._lock:
            plan = self._plans.get(rater_id)
            if plan is None:
                rows = self._db.execute("SELECT trial FROM plan WHERE rater_id=? ORDER BY pos",
                                        (rater_id,)).fetchall()
                plan = [json.loads(r[0]) for r in rows]
                if plan:
                    self._plans[rater_id] = plan
        return plan

    def answered(self, rater_id):
        with self._lock:
            return {r[0] for r in self._db.execute("SELECT pos FROM votes WHERE rater_id=?", (rater_id,))}

    # --- votes and events ---------------------------------------------------------
    def add_vote(self, rater_id, pos, value, response_ms=None, viewport_w=None, viewport_h=None, dpr=None,
                 in_order=True):
        """True when stored now, False when this trial already had its vote (kept unchanged).
        StudyError when pos is not in the rater's plan; OrderError (in_order) when an earlier
        trial of the plan is still unanswered."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                if self._db.execute("SELECT 1 FROM votes WHERE rater_id=? AND pos=?", (rater_id, pos)).fetchone():
                    return False
                if not self._db.execute("SELECT 1 FROM plan WHERE rater_id=? AND pos=?", (rater_id, pos)).fetchone():
                    raise StudyError(f"vote for trial {pos} of rater {rater_id} is not in their plan")
                if in_order:
                    first = self._next_pos(rater_id)
                    if first is not None and pos != first:
                        raise OrderError(f"trial {pos} is not the next one: answer trial {first} first "
                                         "(trials are answered in order; training cannot be skipped)")
                self._db.execute("INSERT INTO votes(rater_id, pos, value, response_ms, viewport_w, viewport_h, dpr,"
                                 " created) VALUES(?, ?, ?, ?, ?, ?, ?, ?)",
                                 (rater_id, pos, value, response_ms, viewport_w, viewport_h, dpr, time.time()))
                self._db.execute("COMMIT")
            finally:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
        return True

    def _next_pos(self, rater_id):
        return self._db.execute(
            "SELECT MIN(p.pos) FROM plan p WHERE p.rater_id=? AND NOT EXISTS "
            "(SELECT 1 FROM votes v WHERE v.rater_id=p.rater_id AND v.pos=p.pos)", (rater_id,)).fetchone()[0]

    def next_pos(self, rater_id):
        """The rater's first unanswered trial, or None when every trial has its vote."""
        with self._lock:
            return self._next_pos(rater_id)

    def add_event(self, rater_id, kind, data=None, max_events=None):
        """Appends an event; with max_events, LimitError when the rater already has that many."""
        with self._lock:
            if max_events is not None:
                n = self._db.execute("SELECT COUNT(*) FROM events WHERE rater_id=?", (rater_id,)).fetchone()[0]
                if n >= max_events:
                    raise LimitError(f"this session has reached its limit of {max_events} events")
            self._db.execute("INSERT INTO events(rater_id, kind, data, created) VALUES(?, ?, ?, ?)",
                             (rater_id, kind, json.dumps(data or {}), time.time()))

    def votes(self):
        """Every vote joined with its trial: [{rater, rater_id, pos, value, response_ms, ..., trial}]."""
        with self._lock:
            rows = self._db.execute(
                "SELECT r.name, v.rater_id, v.pos, v.value, v.response_ms, v.viewport_w, v.viewport_h, v.dpr, "
                "v.created, p.trial FROM votes v JOIN raters r ON r.id = v.rater_id "
                "JOIN plan p ON p.rater_id = v.rater_id AND p.pos = v.pos ORDER BY v.id").fetchall()
        keys = ("rater", "rater_id", "pos", "value", "response_ms", "viewport_w", "viewport_h", "dpr", "created")
        return [dict(zip(keys, r[:-1]), trial=json.loads(r[-1])) for r in rows]

    def events(self):
        with self._lock:
            rows = self._db.execute("SELECT rater_id, kind, data, created FROM events ORDER BY id").fetchall()
        return [{"rater_id": r[0], "kind": r[1], "data": json.loads(r[2]), "created": r[3]} for r in rows]
