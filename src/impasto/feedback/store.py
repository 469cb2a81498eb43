"""The feedback store: run history, star ratings and A/B choices in one SQLite file on this machine.

Why SQLite: one file the user can see, copy and delete, safe for several processes at once (WAL,
``BEGIN IMMEDIATE`` so writers queue instead of failing, a busy timeout so they wait) and for a process
killed mid-write (a transaction is all or nothing). Nothing here sends anything anywhere, images are
not kept (only sha256 fingerprints) unless a profile opts in to small thumbnails, and :meth:`forget`
deletes for real: ``secure_delete`` zeroes freed pages, then VACUUM and a WAL truncation drop the old
copies from the files. A file at the path that is not ours (random bytes, another application's
SQLite) is refused with a one-line :class:`StoreError` and never written to.

This module imports only the standard library (and impasto's errors and paths): recording a run must
not pull in torch, and the web UI calls it from its worker threads (one connection, one lock).
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from impasto.errors import ImpastoError, InputError
from impasto.feedback import schema
from impasto.paths import data_home

DB_NAME = "impasto.sqlite3"
WINNERS = ("a", "b", "same", "skip")
DEFAULT_PROFILE = "default"
_SQLITE_MAGIC = b"SQLite format 3\x00"
_MOVE_AWAY = "move it away or give --db another path"


class StoreError(ImpastoError):
    """The feedback database cannot be used (not ours, corrupt, newer, locked too long, read-only)."""


def default_db_path() -> Path:
    """``impasto.sqlite3`` in the data directory ($IMPASTO_HOME, $XDG_DATA_HOME/impasto, ~/.local/share/impasto)."""
    return data_home() / DB_NAME


def recording_disabled() -> bool:
    """IMPASTO_NO_RECORD=1 (or true/yes) turns recording off for every command, like --no-record."""
    return os.environ.get("IMPASTO_NO_RECORD", "").strip().lower() in ("1", "true", "yes", "on")


def check_profile(name: str) -> str:
    if not isinstance(name, str) or not 0 < len(name) <= 64 or not name.isprintable() or name != name.strip():
        raise InputError(f"profile name {name!r}: use 1 to 64 printable characters, no surrounding spaces")
    return name


@dataclass
class RunRecord:
    """One stylization as the store keeps it: settings and timings, fingerprints, never the images
    (``thumbnail``: a small PNG, only kept when the profile or the run opted in)."""

    method: str
    settings: dict[str, Any]
    seconds: float | None = None
    info: dict[str, Any] = field(default_factory=dict)
    content_fp: str | None = None
    style_fps: list[str] = field(default_factory=list)
    output_path: str | None = None
    output_hash: str | None = None
    thumbnail: bytes | None = None
    source: str = "cli"
    label: str | None = None

    @classmethod
    def from_output(cls, record: dict[str, Any], **fields: Any) -> RunRecord:
        """From a :class:`impasto.stylizer.StylizeOutput` record: its options become the settings, the
        rest (seconds, device, precision, losses, size) the info."""
        info = {k: v for k, v in record.items() if k not in ("method", "options")}
        return cls(method=record["method"], settings=record.get("options", {}), seconds=record.get("seconds"),
                   info=info, **fields)


def _check_file(path: Path) -> bool:
    """Refuse, without opening it as a database, anything at the path that is not a SQLite file.
    True when there is nothing there yet (no file, or an empty one): only then may a schema be created."""
    if path.is_dir():
        raise StoreError(f"{path}: is a folder, not a feedback database; give --db a file path")
    try:
        with open(path, "rb") as fh:
            head = fh.read(len(_SQLITE_MAGIC))
    except FileNotFoundError:
        return True
    except OSError as exc:
        raise StoreError(f"{path}: cannot read the feedback database ({exc.strerror})") from exc
    if head and head != _SQLITE_MAGIC:
        raise StoreError(f"{path}: not a SQLite database, so not impasto's feedback store; {_MOVE_AWAY}")
    return not head


def _create_private(path: Path) -> None:
    """A new database file readable by its owner only: it holds the user's history."""
    if not path.parent.is_dir():
        raise StoreError(f"{path}: folder {path.parent} does not exist")
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        pass
    except OSError as exc:  # a folder that takes no new file (/proc, read-only): the place, not a bug
        raise StoreError(f"{path}: cannot create the feedback database there ({exc.strerror or exc})") from exc


def _ids(conn: sqlite3.Connection) -> tuple[int, int, bool]:
    """(application id, schema version, has tables) read in ONE statement, so one snapshot: three reads
    could straddle another process's commit and see its tables without its id (a foreign file)."""
    app_id, version, tables = conn.execute(
        "SELECT (SELECT application_id FROM pragma_application_id), (SELECT user_version FROM pragma_user_version), "
        "(SELECT count(*) FROM sqlite_master)").fetchone()
    return int(app_id), int(version), tables > 0


def _foreign(path: Path) -> StoreError:
    return StoreError(f"{path}: a SQLite database of another application, not impasto's feedback store; {_MOVE_AWAY}")


def _upgrade(conn: sqlite3.Connection, path: Path) -> None:
    """Create the schema on an empty file or migrate an older one, in one write transaction that
    re-reads the version (another process may have done it while this one waited)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        app_id, version, has_tables = _ids(conn)
        if app_id == 0 and version == 0 and not has_tables:
            schema.create(conn)
        elif app_id != schema.APPLICATION_ID:
            raise _foreign(path)
        elif version < schema.VERSION:
            schema.migrate(conn, version)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def _wal(conn: sqlite3.Connection, timeout: float) -> None:
    """WAL mode (persistent in the file); switching needs a moment alone with it, so retry while busy."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            conn.execute("PRAGMA journal_mode = WAL").fetchone()
            return
        except sqlite3.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _prepare(conn: sqlite3.Connection, path: Path, timeout: float) -> None:
    app_id, version, has_tables = _ids(conn)
    # a database with no tables and no owner holds nothing to lose: it is what a concurrent impasto process
    # shows while it creates the file, so it is taken (under the write lock, in _upgrade); anything with
    # tables or another owner's id is refused and never written
    if app_id != schema.APPLICATION_ID and not (app_id == 0 and version == 0 and not has_tables):
        raise _foreign(path)
    if app_id == schema.APPLICATION_ID and version > schema.VERSION:
        raise StoreError(f"{path}: written by a newer impasto (schema {version}, this one knows {schema.VERSION}); "
                         "upgrade impasto")
    if app_id != schema.APPLICATION_ID or version < schema.VERSION:
        _upgrade(conn, path)
    _wal(conn, timeout)
    for pragma in ("foreign_keys = ON", "secure_delete = ON", "synchronous = NORMAL"):
        conn.execute(f"PRAGMA {pragma}")


def connect(path: Path, timeout: float = 30.0) -> sqlite3.Connection:
    """An autocommit connection to a checked, current database at ``path`` (created if absent)."""
    _check_file(path)
    if not path.exists():
        _create_private(path)
    try:
        conn = sqlite3.connect(path, timeout=timeout, isolation_level=None, check_same_thread=False)
    except sqlite3.Error as exc:
        raise StoreError(f"{path}: cannot open the feedback database ({exc})") from exc
    try:
        conn.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
        _prepare(conn, path, timeout)
    except sqlite3.OperationalError as exc:
        conn.close()
        raise _operational(path, exc, timeout) from exc
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise StoreError(f"{path}: unreadable feedback database ({exc}); {_MOVE_AWAY}") from exc
    except BaseException:
        conn.close()
        raise
    return conn


def _operational(path: Path, exc: sqlite3.OperationalError, timeout: float) -> StoreError:
    """Busy is not damage: say which it is, so nobody moves a good database away."""
    if "locked" in str(exc) or "busy" in str(exc):
        return StoreError(f"{path}: the feedback database stayed busy for {timeout:g}s (another impasto process "
                          "writing?); try again, or --no-record")
    return StoreError(f"{path}: the feedback database cannot be used ({exc})")


def _json(value: Any) -> str:
    return json.dumps(value, default=str, sort_keys=True)


def _row_dict(cursor: sqlite3.Cursor, row: tuple[Any, ...]) -> dict[str, Any]:
    return {d[0]: v for d, v in zip(cursor.description, row, strict=True)}


_RUN_COLUMNS = ("r.id, p.name AS profile, r.created, r.source, r.label, r.method, r.settings, r.seconds, r.info, "
                "r.content_fp, r.style_fps, r.output_path, r.output_hash, r.thumbnail IS NOT NULL AS has_thumbnail")


def _run_dict(row: dict[str, Any]) -> dict[str, Any]:
    out = dict(row)
    for key in ("settings", "info", "style_fps"):
        out[key] = json.loads(out[key]) if out.get(key) is not None else None
    if "has_thumbnail" in out:
        out["has_thumbnail"] = bool(out["has_thumbnail"])
    return out


class FeedbackStore:
    """The user's feedback database. Open one per process (or per thread group: calls are serialized by
    a lock); every write is one short ``BEGIN IMMEDIATE`` transaction."""

    def __init__(self, path: str | os.PathLike[str] | None = None, *, timeout: float = 30.0) -> None:
        self.path = Path(path) if path is not None else default_db_path()
        if path is None:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.timeout = timeout
        self._lock = threading.RLock()
        self._conn = connect(self.path, timeout)

    @property
    def folder(self) -> Path:
        """Where files belonging to this store (survey images) go: beside the database."""
        return self.path.parent

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> FeedbackStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def writing(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (for the feedback package): all of it is kept, or none of it."""
        with self._lock, self._errors():
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
                self._conn.execute("COMMIT")
            except BaseException:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise

    @contextlib.contextmanager
    def reading(self) -> Iterator[sqlite3.Connection]:
        """One read transaction: a consistent snapshot while other processes write."""
        with self._lock, self._errors():
            if self._conn.in_transaction:  # nested in this thread's own transaction: already a snapshot
                yield self._conn
                return
            self._conn.execute("BEGIN")
            try:
                yield self._conn
            finally:
                if self._conn.in_transaction:
                    self._conn.execute("COMMIT")

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.OperationalError as exc:
            raise _operational(self.path, exc, self.timeout) from exc
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{self.path}: the feedback database is damaged ({exc}); {_MOVE_AWAY}") from exc

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        """Rows as dicts, read in one snapshot."""
        with self.reading() as conn:
            cursor = conn.execute(sql, params)
            return [_row_dict(cursor, row) for row in cursor.fetchall()]

    # profiles -------------------------------------------------------------------------------------

    @staticmethod
    def profile_id(conn: sqlite3.Connection, name: str, *, create: bool = True) -> int | None:
        """The profile's id (created on first use when ``create``), inside the caller's transaction."""
        check_profile(name)
        if create:
            conn.execute("INSERT OR IGNORE INTO profiles (name, created) VALUES (?, ?)", (name, time.time()))
        row = conn.execute("SELECT id FROM profiles WHERE name = ?", (name,)).fetchone()
        return row[0] if row else None

    def profiles(self) -> list[str]:
        return [r["name"] for r in self.query("SELECT name FROM profiles ORDER BY name")]

    def keep_thumbnails(self, profile: str) -> bool:
        """Whether this profile opted in to keeping a small thumbnail of each output."""
        rows = self.query("SELECT keep_thumbnails FROM profiles WHERE name = ?", (check_profile(profile),))
        return bool(rows and rows[0]["keep_thumbnails"])

    def set_keep_thumbnails(self, profile: str, keep: bool) -> None:
        with self.writing() as conn:
            pid = self.profile_id(conn, profile)
            conn.execute("UPDATE profiles SET keep_thumbnails = ? WHERE id = ?", (int(bool(keep)), pid))

    # runs -----------------------------------------------------------------------------------------

    def add_run(self, profile: str, run: RunRecord) -> int:
        """Record one stylization; returns its run id (what ratings and choices refer to)."""
        with self.writing() as conn:
            return self.insert_run(conn, profile, run)

    def insert_run(self, conn: sqlite3.Connection, profile: str, run: RunRecord) -> int:
        """:meth:`add_run` inside the caller's transaction (a survey records its runs with its questions)."""
        pid = self.profile_id(conn, profile)
        cursor = conn.execute(
            "INSERT INTO runs (profile_id, created, source, label, method, settings, seconds, info, content_fp, "
            "style_fps, output_path, output_hash, thumbnail) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (pid, time.time(), run.source, run.label, run.method, _json(run.settings), run.seconds, _json(run.info),
             run.content_fp, _json(list(run.style_fps)), run.output_path, run.output_hash, run.thumbnail))
        return int(cursor.lastrowid or 0)

    def run(self, run_id: int) -> dict[str, Any] | None:
        """One run (settings, info and fingerprints decoded; the thumbnail as ``has_thumbnail``) with its
        latest rating as ``stars``."""
        rows = self.query(f"SELECT {_RUN_COLUMNS}, (SELECT stars FROM ratings WHERE run_id = r.id ORDER BY id DESC "
                          "LIMIT 1) AS stars FROM runs r JOIN profiles p ON p.id = r.profile_id WHERE r.id = ?",
                          (int(run_id),))
        return _run_dict(rows[0]) if rows else None

    def thumbnail(self, run_id: int) -> bytes | None:
        rows = self.query("SELECT thumbnail FROM runs WHERE id = ?", (int(run_id),))
        return rows[0]["thumbnail"] if rows else None

    def find_output(self, profile: str, *, path: str | None = None, output_hash: str | None = None
                    ) -> dict[str, Any] | None:
        """The newest run of ``profile`` whose output is this file: same path and content first, then
        the same content anywhere (the file was moved), then the same path (content changed since)."""
        where = []
        if path is not None and output_hash is not None:
            where.append(("r.output_path = ? AND r.output_hash = ?", (path, output_hash)))
        if output_hash is not None:
            where.append(("r.output_hash = ?", (output_hash,)))
        if path is not None:
            where.append(("r.output_path = ?", (path,)))
        for clause, params in where:
            rows = self.query(f"SELECT r.id FROM runs r JOIN profiles p ON p.id = r.profile_id WHERE p.name = ? "
                              f"AND {clause} ORDER BY r.id DESC LIMIT 1", (check_profile(profile), *params))
            if rows:
                return self.run(rows[0]["id"])
        return None

    def history(self, profile: str, *, limit: int = 50, offset: int = 0, method: str | None = None,
                source: str | None = None) -> list[dict[str, Any]]:
        """The profile's runs, newest first, each with its latest rating (``stars``, None if unrated)."""
        sql = (f"SELECT {_RUN_COLUMNS}, (SELECT stars FROM ratings WHERE run_id = r.id ORDER BY id DESC LIMIT 1) "
               "AS stars FROM runs r JOIN profiles p ON p.id = r.profile_id WHERE p.name = ?")
        params: list[Any] = [check_profile(profile)]
        for column, value in (("r.method", method), ("r.source", source)):
            if value is not None:
                sql += f" AND {column} = ?"
                params.append(value)
        sql += " ORDER BY r.id DESC LIMIT ? OFFSET ?"
        return [_run_dict(r) for r in self.query(sql, (*params, int(limit), int(offset)))]

    # ratings and choices --------------------------------------------------------------------------

    def rate(self, run_id: int, stars: int) -> int:
        """A 1-5 star rating of a run (a later rating of the same run supersedes it in history and stats)."""
        if isinstance(stars, bool) or not isinstance(stars, int) or not 1 <= stars <= 5:
            raise InputError(f"a rating is 1 to 5 stars, got {stars!r}")
        with self.writing() as conn:
            if conn.execute("SELECT 1 FROM runs WHERE id = ?", (int(run_id),)).fetchone() is None:
                raise InputError(f"no recorded run {run_id}")
            cursor = conn.execute("INSERT INTO ratings (run_id, stars, created) VALUES (?, ?, ?)",
                                  (int(run_id), stars, time.time()))
            return int(cursor.lastrowid or 0)

    def choose(self, profile: str, run_a: int, run_b: int, winner: str) -> int:
        """An A/B choice between two runs outside a survey: ``winner`` is a, b, same or skip."""
        with self.writing() as conn:
            return self.insert_choice(conn, profile, (run_a, run_b), winner)

    def insert_choice(self, conn: sqlite3.Connection, profile: str, runs: tuple[int, int], winner: str,
                      survey: tuple[int, int] | None = None) -> int:
        """:meth:`choose` inside the caller's transaction; ``survey`` is (survey id, question id)."""
        if winner not in WINNERS:
            raise InputError(f"winner must be one of {', '.join(WINNERS)}, got {winner!r}")
        for run_id in runs:
            if conn.execute("SELECT 1 FROM runs WHERE id = ?", (int(run_id),)).fetchone() is None:
                raise InputError(f"no recorded run {run_id}")
        pid = self.profile_id(conn, profile)
        survey_id, item_id = survey if survey is not None else (None, None)
        cursor = conn.execute("INSERT INTO choices (profile_id, run_a, run_b, winner, survey_id, item_id, created) "
                              "VALUES (?, ?, ?, ?, ?, ?, ?)",
                              (pid, int(runs[0]), int(runs[1]), winner, survey_id, item_id, time.time()))
        return int(cursor.lastrowid or 0)

    # stats, export, forget ------------------------------------------------------------------------

    def stats(self, profile: str | None = None) -> dict[str, Any]:
        """Per profile: counts, and per method the runs, mean seconds, runs rated and their mean stars (the
        latest rating of each run counts)."""
        names = self.profiles() if profile is None else [check_profile(profile)]
        return {"database": str(self.path), "profiles": {name: self._profile_stats(name) for name in names}}

    def _profile_stats(self, name: str) -> dict[str, Any]:
        def count(sql: str) -> int:
            return int(self.query(sql, (name,))[0]["n"])

        runs = "FROM runs r JOIN profiles p ON p.id = r.profile_id WHERE p.name = ?"
        latest = "(SELECT run_id, stars FROM ratings WHERE id IN (SELECT max(id) FROM ratings GROUP BY run_id))"
        methods = self.query(
            "SELECT r.method, count(*) AS runs, avg(r.seconds) AS mean_seconds, count(g.stars) AS rated, "
            f"avg(g.stars) AS mean_stars FROM runs r JOIN profiles p ON p.id = r.profile_id LEFT JOIN {latest} g "
            "ON g.run_id = r.id WHERE p.name = ? GROUP BY r.method ORDER BY r.method", (name,))
        return {"runs": count(f"SELECT count(*) AS n {runs}"),
                "rated": count(f"SELECT count(DISTINCT run_id) AS n FROM ratings WHERE run_id IN (SELECT r.id {runs})"),
                "choices": count("SELECT count(*) AS n FROM choices c JOIN profiles p ON p.id = c.profile_id "
                                 "WHERE p.name = ?"),
                "surveys": count("SELECT count(*) AS n FROM surveys s JOIN profiles p ON p.id = s.profile_id "
                                 "WHERE p.name = ?"),
                "thumbnails": count(f"SELECT count(*) AS n {runs} AND r.thumbnail IS NOT NULL"),
                "methods": {m.pop("method"): m for m in methods}}

    def export(self, profile: str | None = None) -> dict[str, Any]:
        """Everything kept for one profile (or all): runs with their ratings, choices, surveys with their
        questions; thumbnails as base64 PNG. What the user sees here is all the store holds."""
        names = self.profiles() if profile is None else [check_profile(profile)]
        with self.reading():  # one snapshot for the whole export (the lock is re-entrant)
            profiles = [self._export_profile(name) for name in names]
        return {"format": "impasto-feedback", "schema": schema.VERSION, "exported": time.time(),
                "database": str(self.path), "profiles": [p for p in profiles if p is not None]}

    def _export_profile(self, name: str) -> dict[str, Any] | None:
        rows = self.query("SELECT id, name, created, keep_thumbnails FROM profiles WHERE name = ?", (name,))
        if not rows:
            return None
        pid = rows[0].pop("id")
        runs = [_run_dict(r) for r in self.query(
            f"SELECT {_RUN_COLUMNS}, r.thumbnail FROM runs r JOIN profiles p ON p.id = r.profile_id "
            "WHERE p.id = ? ORDER BY r.id", (pid,))]
        for run in runs:
            thumb = run.pop("thumbnail")
            run["thumbnail_png_base64"] = base64.b64encode(thumb).decode() if thumb is not None else None
            run["ratings"] = self.query("SELECT stars, created FROM ratings WHERE run_id = ? ORDER BY id", (run["id"],))
        surveys = self.query("SELECT id, name, created, variants, pairs, seed, folder FROM surveys "
                             "WHERE profile_id = ? ORDER BY id", (pid,))
        for survey in surveys:
            survey["variants"], survey["pairs"] = json.loads(survey["variants"]), json.loads(survey["pairs"])
            survey["questions"] = self.query("SELECT id, position, pair_index, variant_a, variant_b, run_a, run_b "
                                             "FROM survey_items WHERE survey_id = ? ORDER BY position", (survey["id"],))
        choices = self.query("SELECT c.id, c.run_a, c.run_b, c.winner, s.name AS survey, c.item_id AS question, "
                             "c.created FROM choices c LEFT JOIN surveys s ON s.id = c.survey_id "
                             "WHERE c.profile_id = ? ORDER BY c.id", (pid,))
        return {**rows[0], "keep_thumbnails": bool(rows[0]["keep_thumbnails"]), "runs": runs, "choices": choices,
                "surveys": surveys}

    def forget(self, profile: str | None = None) -> dict[str, Any]:
        """Delete a profile's data (``None``: everyone's) for real: rows, then the freed pages (zeroed by
        secure_delete), the WAL's old copies (VACUUM, then a TRUNCATE checkpoint), and the survey image
        folders this store made. Returns what was deleted; ``compacted`` is False when another process
        kept the WAL open, so old copies may remain in it until that process closes."""
        with self.writing() as conn:
            where, params = ("", ()) if profile is None else (" WHERE name = ?", (check_profile(profile),))
            pids = [r[0] for r in conn.execute(f"SELECT id FROM profiles{where}", params).fetchall()]
            marks = ",".join("?" * len(pids))
            counts = {table: conn.execute(f"SELECT count(*) FROM {table} WHERE profile_id IN ({marks})",
                                          pids).fetchone()[0] for table in ("runs", "choices", "surveys")}
            folders = [r[0] for r in conn.execute(f"SELECT folder FROM surveys WHERE profile_id IN ({marks})",
                                                  pids).fetchall() if r[0]]
            conn.execute(f"DELETE FROM profiles WHERE id IN ({marks})", pids)  # the rest cascades
        compacted = self.compact()
        removed = [f for f in folders if self._remove_survey_folder(Path(f))]
        return {"profiles": len(pids), **counts, "survey_folders_removed": removed, "compacted": compacted}

    def compact(self) -> bool:
        """VACUUM and truncate the WAL so deleted rows leave no copy in either file; False if busy."""
        with self._lock, self._errors():
            self._conn.execute("VACUUM")
            busy = self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
        return not busy

    def _remove_survey_folder(self, folder: Path) -> bool:
        """Only folders this store created (under its ``surveys`` folder), never a user's own."""
        root = (self.folder / "surveys").resolve()
        target = folder.resolve()
        if root not in target.parents or not target.is_dir():
            return False
        shutil.rmtree(target, ignore_errors=True)
        return True
