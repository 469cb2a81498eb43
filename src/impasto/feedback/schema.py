"""The feedback database's layout, one version at a time, and the migrations between versions.

``PRAGMA user_version`` holds the version and ``PRAGMA application_id`` marks the file as ours, so a
file of another application is refused instead of written to. A migration runs inside one write
transaction: a crash halfway leaves the old version intact. Version 1 (runs with a free-text profile and
ratings, nothing else) is kept here as it was written, because old files in users' data folders still
have that shape and the migration (and its test) starts from it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

#: "impa" in ASCII: the SQLite header field that says "this file is impasto's feedback store"
APPLICATION_ID = 0x696D7061
VERSION = 2

#: version 1, as released: kept verbatim so old files can be rebuilt in tests and migrated
SCHEMA_V1 = (
    """CREATE TABLE runs (id INTEGER PRIMARY KEY, profile TEXT NOT NULL, created REAL NOT NULL,
       method TEXT NOT NULL, settings TEXT NOT NULL, seconds REAL, output_path TEXT)""",
    """CREATE TABLE ratings (id INTEGER PRIMARY KEY, run_id INTEGER NOT NULL REFERENCES runs(id),
       stars INTEGER NOT NULL, created REAL NOT NULL)""",
)

_TABLES = (
    """CREATE TABLE profiles (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        created REAL NOT NULL,
        keep_thumbnails INTEGER NOT NULL DEFAULT 0)""",
    """CREATE TABLE runs (
        id INTEGER PRIMARY KEY,
        profile_id INTEGER NOT NULL REFERENCES profiles(id) ON DELETE CASCADE,
        created REAL NOT NULL,
        source TEXT NOT NULL DEFAULT 'cli',
        label TEXT,
        method TEXT NOT NULL,
        settings TEXT NOT NULL,
        seconds REAL,
        info TEXT NOT NULL DEFAULT '{}',
        content_fp TEXT,
        style_fps TEXT NOT NULL DEFAULT '[]',
        output_path TEXT,
        output_hash TEXT,
        thumbnail BLOB)""",
    """CREATE TABLE ratings (
        id INTEGER PRIMARY KEY,
        run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        stars INTEGER NOT NULL CHECK (stars BETWEEN 1 AND 5),
        created REAL NOT NULL)""",
    """CREATE TABLE surveys (
        id INTEGER PRIMARY KEY,
        profile_id INTEGER NOT NULL REFERENCES profiles(id) ON DELETE CASCADE,
        name TEXT NOT NULL UNIQUE,
        created REAL NOT NULL,
        variants TEXT NOT NULL,
        pairs TEXT NOT NULL,
        seed INTEGER NOT NULL,
        folder TEXT)""",
    """CREATE TABLE survey_items (
        id INTEGER PRIMARY KEY,
        survey_id INTEGER NOT NULL REFERENCES surveys(id) ON DELETE CASCADE,
        position INTEGER NOT NULL,
        pair_index INTEGER NOT NULL,
        variant_a TEXT NOT NULL,
        variant_b TEXT NOT NULL,
        run_a INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        run_b INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        UNIQUE (survey_id, position))""",
    """CREATE TABLE choices (
        id INTEGER PRIMARY KEY,
        profile_id INTEGER NOT NULL REFERENCES profiles(id) ON DELETE CASCADE,
        run_a INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        run_b INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        winner TEXT NOT NULL CHECK (winner IN ('a', 'b', 'same', 'skip')),
        survey_id INTEGER REFERENCES surveys(id) ON DELETE CASCADE,
        item_id INTEGER REFERENCES survey_items(id) ON DELETE CASCADE,
        created REAL NOT NULL)""",
)
_INDEXES = (
    "CREATE INDEX runs_by_profile ON runs (profile_id, created)",
    "CREATE INDEX runs_by_output_path ON runs (output_path)",
    "CREATE INDEX runs_by_output_hash ON runs (output_hash)",
    "CREATE INDEX ratings_by_run ON ratings (run_id)",
    "CREATE INDEX choices_by_profile ON choices (profile_id, survey_id)",
    "CREATE INDEX choices_by_item ON choices (item_id)",
    "CREATE INDEX items_by_survey ON survey_items (survey_id, position)",
)


def create(conn: sqlite3.Connection) -> None:
    """The current layout on an empty file (inside the caller's write transaction)."""
    for statement in (*_TABLES, *_INDEXES):
        conn.execute(statement)
    stamp(conn, VERSION)


def stamp(conn: sqlite3.Connection, version: int) -> None:
    conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    conn.execute(f"PRAGMA user_version = {int(version)}")


def _v1_to_v2(conn: sqlite3.Connection) -> None:
    """Profiles become rows (the free-text name a foreign key), runs gain fingerprints, output hash,
    info and thumbnail, ratings get their 1-5 check; choices and surveys are new. Ratings outside 1-5
    (version 1 did not check) cannot be carried and are dropped."""
    conn.execute("ALTER TABLE ratings RENAME TO ratings_v1")
    conn.execute("ALTER TABLE runs RENAME TO runs_v1")
    for statement in _TABLES:
        conn.execute(statement)
    conn.execute("INSERT INTO profiles (name, created) SELECT profile, MIN(created) FROM runs_v1 GROUP BY profile")
    conn.execute("""INSERT INTO runs (id, profile_id, created, method, settings, seconds, output_path)
                    SELECT r.id, p.id, r.created, r.method, r.settings, r.seconds, r.output_path
                    FROM runs_v1 r JOIN profiles p ON p.name = r.profile""")
    conn.execute("""INSERT INTO ratings (id, run_id, stars, created)
                    SELECT id, run_id, stars, created FROM ratings_v1
                    WHERE stars BETWEEN 1 AND 5 AND run_id IN (SELECT id FROM runs)""")
    conn.execute("DROP TABLE ratings_v1")
    conn.execute("DROP TABLE runs_v1")
    for statement in _INDEXES:
        conn.execute(statement)


#: from version N to N + 1
MIGRATIONS: dict[int, Callable[[sqlite3.Connection], None]] = {1: _v1_to_v2}


def migrate(conn: sqlite3.Connection, found: int) -> None:
    """Bring a file from version ``found`` to :data:`VERSION` (inside the caller's write transaction,
    with foreign keys off, as SQLite's table-rebuild procedure asks)."""
    for version in range(found, VERSION):
        MIGRATIONS[version](conn)
    problems = conn.execute("PRAGMA foreign_key_check").fetchall()
    if problems:
        raise sqlite3.IntegrityError(f"migration left {len(problems)} dangling references")
    stamp(conn, VERSION)
