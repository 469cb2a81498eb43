"""The feedback store keeps what it is given across processes and crashes, refuses files that are not
its own without touching them, forgets for real, and the CLI records runs and finds them to rate."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from impasto.cli import main
from impasto.errors import InputError
from impasto.feedback import schema
from impasto.feedback.store import FeedbackStore, RunRecord, StoreError

SRC = Path(__file__).resolve().parents[1] / "src"


def _run(marker: str = "", **kw: object) -> RunRecord:
    return RunRecord(method="gatys", settings={"strength": 0.5, "note": marker}, seconds=1.5, **kw)  # type: ignore[arg-type]


def _child(code: str) -> list[str]:
    return [sys.executable, "-c", f"import sys; sys.path.insert(0, {str(SRC)!r}); {code}"]


def _photo(path: Path, seed: int = 0) -> Path:
    Image.fromarray(np.random.default_rng(seed).integers(0, 255, (24, 32, 3), dtype=np.uint8)).save(path)
    return path


# schema and migration ---------------------------------------------------------------------------------


def test_a_new_store_is_ours_current_in_wal_mode_with_foreign_keys(tmp_path):
    db = tmp_path / "f.sqlite3"
    with FeedbackStore(db) as store:
        conn = store._conn
        assert conn.execute("PRAGMA application_id").fetchone()[0] == schema.APPLICATION_ID
        assert conn.execute("PRAGMA user_version").fetchone()[0] == schema.VERSION
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        assert conn.execute("PRAGMA secure_delete").fetchone()[0] == 1
        assert conn.execute("PRAGMA busy_timeout").fetchone()[0] >= 1000
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert tables == {"profiles", "runs", "ratings", "choices", "surveys", "survey_items"}
    assert db.stat().st_mode & 0o077 == 0  # the user's history is private to the user


def test_the_default_database_lives_in_the_data_directory(private_impasto_home):
    with FeedbackStore() as store:
        store.add_run("default", _run())
    assert (private_impasto_home / "impasto.sqlite3").is_file()


def _version_1_file(path: Path) -> None:
    """A file as impasto's first feedback schema wrote it (verbatim, not from the current code)."""
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE runs (id INTEGER PRIMARY KEY, profile TEXT NOT NULL, created REAL NOT NULL, "
                 "method TEXT NOT NULL, settings TEXT NOT NULL, seconds REAL, output_path TEXT)")
    conn.execute("CREATE TABLE ratings (id INTEGER PRIMARY KEY, run_id INTEGER NOT NULL REFERENCES runs(id), "
                 "stars INTEGER NOT NULL, created REAL NOT NULL)")
    conn.executemany("INSERT INTO runs VALUES (?, ?, ?, ?, ?, ?, ?)", [
        (1, "default", 100.0, "gatys", '{"strength": 0.5}', 12.0, "/tmp/a.png"),
        (2, "alice", 200.0, "adain", '{"strength": 1.0}', 0.4, "/tmp/b.png"),
        (3, "alice", 300.0, "fast", '{"strength": 1.0}', 0.1, None)])
    conn.executemany("INSERT INTO ratings VALUES (?, ?, ?, ?)", [(1, 1, 4, 150.0), (2, 2, 5, 250.0), (3, 3, 9, 350.0)])
    conn.execute(f"PRAGMA application_id = {schema.APPLICATION_ID}")
    conn.execute("PRAGMA user_version = 1")
    conn.commit()
    conn.close()


def test_a_version_1_file_is_migrated_keeping_its_runs_and_ratings(tmp_path):
    db = tmp_path / "old.sqlite3"
    _version_1_file(db)
    with FeedbackStore(db) as store:
        assert store._conn.execute("PRAGMA user_version").fetchone()[0] == schema.VERSION
        assert store._conn.execute("PRAGMA foreign_key_check").fetchall() == []
        assert store.profiles() == ["alice", "default"]
        alice = store.history("alice")
        assert [(r["id"], r["method"], r["stars"]) for r in alice] == [(3, "fast", None), (2, "adain", 5)]
        assert store.run(1)["settings"] == {"strength": 0.5} and store.run(1)["stars"] == 4
        assert store.run(1)["output_path"] == "/tmp/a.png"
        assert store.query("SELECT count(*) AS n FROM ratings")[0]["n"] == 2  # 9 stars could not be carried
        new_id = store.add_run("alice", _run())  # and the new tables work on the migrated file
        store.choose("alice", 2, new_id, "a")
        assert store.stats("alice")["profiles"]["alice"]["choices"] == 1


def test_a_file_from_a_newer_impasto_is_refused(tmp_path):
    db = tmp_path / "new.sqlite3"
    FeedbackStore(db).close()
    conn = sqlite3.connect(db)
    conn.execute(f"PRAGMA user_version = {schema.VERSION + 1}")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match="newer impasto"):
        FeedbackStore(db)


# processes at once, and a killed one ----------------------------------------------------------------

_WRITER = """
import time
from impasto.feedback.store import FeedbackStore, RunRecord
time.sleep(max(0.0, float(sys.argv[4]) - time.time()))  # all four start together
store = FeedbackStore(sys.argv[1])
for i in range(int(sys.argv[2])):
    store.add_run("p" + sys.argv[3], RunRecord(method="fast", settings={"i": i}, seconds=0.01))
"""


def test_four_processes_writing_at_once_lose_nothing(tmp_path):
    db = tmp_path / "busy.sqlite3"  # not created yet: the four also race to create it
    start = str(time.time() + 1.5)
    procs = [subprocess.Popen([*_child(_WRITER), str(db), "50", str(k), start], stderr=subprocess.PIPE)
             for k in range(4)]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err.decode()
    with FeedbackStore(db) as store:
        assert store.query("SELECT count(*) AS n FROM runs")[0]["n"] == 200
        assert store.profiles() == ["p0", "p1", "p2", "p3"]
        assert all(len(store.history(f"p{k}", limit=100)) == 50 for k in range(4))


_FOREVER = """
from impasto.feedback.store import FeedbackStore, RunRecord
store = FeedbackStore(sys.argv[1])
i = 0
while True:
    store.add_run("default", RunRecord(method="fast", settings={"i": i, "pad": "x" * 3000}, seconds=0.01))
    i += 1
"""


def test_a_writer_killed_mid_write_leaves_a_readable_database(tmp_path):
    db = tmp_path / "killed.sqlite3"
    proc = subprocess.Popen([*_child(_FOREVER), str(db)])
    seen = 0
    try:
        deadline = time.monotonic() + 60
        while seen < 30 and time.monotonic() < deadline:
            time.sleep(0.05)
            if db.exists() and proc.poll() is None:
                with FeedbackStore(db) as store:
                    seen = store.query("SELECT count(*) AS n FROM runs")[0]["n"]
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    assert seen >= 30
    with FeedbackStore(db) as store:
        assert store._conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        kept = store.query("SELECT count(*) AS n, max(id) AS last FROM runs")[0]
        assert kept["n"] >= seen and kept["n"] == kept["last"]  # nothing committed is lost, no gap
        store.add_run("default", _run())  # and it takes writes again


# privacy ----------------------------------------------------------------------------------------------


def _raw(db: Path) -> bytes:
    return b"".join(p.read_bytes() for p in (db, Path(f"{db}-wal")) if p.exists())


def test_forget_deletes_a_profile_for_real_and_all_deletes_everyone(tmp_path, capsys):
    db = tmp_path / "f.sqlite3"
    alice, bob = "ALICE-6c1d0e9b-private", "BOB-93f1aa07-private"
    with FeedbackStore(db) as store:
        a = store.add_run("alice", _run(alice, thumbnail=alice.encode()))
        store.rate(a, 5)
        b = store.add_run("bob", _run(bob))
        store.choose("alice", a, b, "a")
        assert alice.encode() in _raw(db) and bob.encode() in _raw(db)
        result = store.forget("alice")
        assert result["profiles"] == 1 and result["runs"] == 1 and result["choices"] == 1 and result["compacted"]
        assert alice.encode() not in _raw(db)  # while the store is still open: not in the file nor the WAL
        assert bob.encode() in _raw(db) and store.profiles() == ["bob"]
        assert store.query("SELECT count(*) AS n FROM ratings")[0]["n"] == 0
    assert main(["feedback", "forget", "--all", "--db", str(db)]) == 0
    assert bob.encode() not in _raw(db)
    with FeedbackStore(db) as store:
        assert store.profiles() == [] and store.export()["profiles"] == []


def test_export_holds_everything_a_profile_has_and_nothing_of_others(tmp_path, capsys):
    db = tmp_path / "f.sqlite3"
    with FeedbackStore(db) as store:
        a = store.add_run("alice", _run("a1", thumbnail=b"\x89PNG-thumb", content_fp="c" * 64))
        store.rate(a, 3)
        store.rate(a, 4)
        store.choose("alice", a, store.add_run("alice", _run("a2")), "same")
        store.add_run("bob", _run("b1"))
    assert main(["feedback", "export", "--json", "--profile", "alice", "--db", str(db)]) == 0
    out = json.loads(capsys.readouterr().out)
    (profile,) = out["profiles"]
    assert profile["name"] == "alice" and len(profile["runs"]) == 2 and "b1" not in json.dumps(out)
    first = profile["runs"][0]
    assert [r["stars"] for r in first["ratings"]] == [3, 4] and first["content_fp"] == "c" * 64
    assert first["thumbnail_png_base64"] == "iVBORy10aHVtYg==" and profile["choices"][0]["winner"] == "same"
    assert main(["feedback", "export", "--json", "--db", str(db)]) == 0
    assert [p["name"] for p in json.loads(capsys.readouterr().out)["profiles"]] == ["alice", "bob"]


def test_history_is_newest_first_with_the_latest_rating_and_stats_count_it(tmp_path):
    with FeedbackStore(tmp_path / "f.sqlite3") as store:
        first, second = store.add_run("me", _run()), store.add_run("me", RunRecord("adain", {}, seconds=0.5))
        store.rate(first, 2)
        store.rate(first, 5)
        history = store.history("me")
        assert [(r["id"], r["stars"]) for r in history] == [(second, None), (first, 5)]
        assert store.history("me", method="adain")[0]["id"] == second
        me = store.stats("me")["profiles"]["me"]
        assert me["runs"] == 2 and me["rated"] == 1
        assert me["methods"]["gatys"]["mean_stars"] == 5 and me["methods"]["adain"]["rated"] == 0
        with pytest.raises(InputError, match="1 to 5"):
            store.rate(first, 6)
        with pytest.raises(InputError, match="no recorded run"):
            store.rate(999, 3)
        with pytest.raises(InputError, match="winner"):
            store.choose("me", first, second, "both")


def test_the_store_does_not_import_torch():
    code = "import impasto.feedback.store, impasto.feedback.stats; assert 'torch' not in sys.modules"
    proc = subprocess.run(_child(code), capture_output=True, timeout=60)
    assert proc.returncode == 0, proc.stderr.decode()


# files that are not ours ------------------------------------------------------------------------------


def _foreign_files(tmp: Path) -> dict[str, Path]:
    rnd = tmp / "random.sqlite3"
    rnd.write_bytes(np.random.default_rng(0).integers(0, 256, 8192, dtype=np.uint8).tobytes())
    text = tmp / "text.sqlite3"
    text.write_text("my notes, not a database\n")
    other = tmp / "other.sqlite3"
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE bookmarks (url TEXT)")
    conn.execute("INSERT INTO bookmarks VALUES ('https://example.org')")
    conn.commit()
    conn.close()
    damaged = tmp / "damaged.sqlite3"
    damaged.write_bytes(b"SQLite format 3\x00" + bytes(range(256)) * 16)
    return {"random": rnd, "text": text, "other_app": other, "damaged": damaged}


@pytest.mark.parametrize("kind", ["random", "text", "other_app", "damaged"])
def test_a_foreign_or_corrupt_file_gives_exit_2_and_is_never_written(tmp_path, capsys, kind):
    db = _foreign_files(tmp_path)[kind]
    before = db.read_bytes()
    photo = _photo(tmp_path / "photo.png")
    out = tmp_path / "out.png"
    for argv in (["feedback", "stats"], ["rate", str(photo), "3"], ["survey", "report", "x"],
                 ["stylize", str(photo), "--method", "fast", "--max-size", "16", "-o", str(out), "--quiet"]):
        assert main([*argv, "--db", str(db)]) == 2, argv
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and str(db) in err, err
    assert db.read_bytes() == before and not out.exists()  # the run never started
    with pytest.raises(StoreError):
        FeedbackStore(db)
    assert db.read_bytes() == before


# the CLI records runs and rates them ------------------------------------------------------------------

FAST = ["--method", "fast", "--max-size", "32", "--quiet"]


def test_cli_stylize_records_the_run_and_rate_finds_it_by_path_and_after_a_move_by_hash(tmp_path, capsys):
    db = tmp_path / "f.sqlite3"
    photo, out = _photo(tmp_path / "photo.png"), tmp_path / "out.png"
    assert main(["stylize", str(photo), *FAST, "-o", str(out), "--json", "--db", str(db)]) == 0
    run_id = json.loads(capsys.readouterr().out)["run_id"]
    with FeedbackStore(db) as store:
        run = store.run(run_id)
    assert run["method"] == "fast" and run["settings"]["max_size"] == 32 and run["seconds"] > 0
    assert run["output_path"] == str(out.resolve()) and run["info"]["device"]
    from impasto.feedback.fingerprint import file_fingerprint

    assert run["output_hash"] == file_fingerprint(out) and run["content_fp"] == file_fingerprint(photo)
    assert not run["has_thumbnail"]
    assert main(["rate", str(out), "4", "--db", str(db)]) == 0
    moved = tmp_path / "elsewhere" / "renamed.png"
    moved.parent.mkdir()
    out.rename(moved)
    assert main(["rate", str(moved), "5", "--db", str(db)]) == 0
    with FeedbackStore(db) as store:
        assert [r["stars"] for r in store.query("SELECT stars FROM ratings WHERE run_id = ?", (run_id,))] == [4, 5]
    capsys.readouterr()
    for argv, message in ((["rate", str(photo), "3"], "no recorded run"), (["rate", str(moved), "6"], "1 to 5"),
                          (["rate", str(moved), "four"], "1 to 5")):
        assert main([*argv, "--db", str(db)]) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1


def test_no_record_and_the_environment_switch_record_nothing_and_the_default_goes_to_the_data_home(
        tmp_path, monkeypatch, private_impasto_home):
    photo = _photo(tmp_path / "photo.png")
    db = private_impasto_home / "impasto.sqlite3"
    assert main(["stylize", str(photo), *FAST, "-o", str(tmp_path / "a.png"), "--no-record"]) == 0
    assert not db.exists()
    monkeypatch.setenv("IMPASTO_NO_RECORD", "1")
    assert main(["stylize", str(photo), *FAST, "-o", str(tmp_path / "b.png")]) == 0
    assert not db.exists()
    monkeypatch.delenv("IMPASTO_NO_RECORD")
    assert main(["stylize", str(photo), *FAST, "-o", str(tmp_path / "c.png"), "--profile", "carol"]) == 0
    with FeedbackStore(db) as store:
        assert [r["output_path"] for r in store.history("carol")] == [str((tmp_path / "c.png").resolve())]


def test_thumbnails_are_kept_only_when_the_run_or_the_profile_opted_in(tmp_path, capsys):
    db, photo = tmp_path / "f.sqlite3", _photo(tmp_path / "photo.png")
    flags = [*FAST, "--db", str(db)]
    assert main(["stylize", str(photo), *flags, "-o", str(tmp_path / "a.png")]) == 0
    assert main(["stylize", str(photo), *flags, "-o", str(tmp_path / "b.png"), "--keep-thumbnails"]) == 0
    assert main(["feedback", "thumbnails", "on", "--db", str(db)]) == 0
    assert main(["stylize", str(photo), *flags, "-o", str(tmp_path / "c.png")]) == 0
    with FeedbackStore(db) as store:
        kept = [r["has_thumbnail"] for r in reversed(store.history("default"))]
        thumb = store.thumbnail(store.history("default")[0]["id"])
    assert kept == [False, True, True] and thumb is not None and thumb.startswith(b"\x89PNG")
    assert main(["feedback", "stats", "--json", "--db", str(db)]) == 0
    stats = json.loads(capsys.readouterr().out)["profiles"]["default"]
    assert stats["runs"] == 3 and stats["thumbnails"] == 2 and stats["methods"]["fast"]["runs"] == 3


def test_stdout_output_is_recorded_by_the_hash_of_the_png_written(tmp_path):
    db, photo = tmp_path / "f.sqlite3", _photo(tmp_path / "photo.png")
    proc = subprocess.run([sys.executable, "-m", "impasto", "stylize", str(photo), *FAST, "-o", "-", "--db", str(db)],
                          capture_output=True, timeout=300, env={**os.environ, "PYTHONPATH": str(SRC)})
    assert proc.returncode == 0, proc.stderr.decode()
    from impasto.feedback.fingerprint import bytes_fingerprint

    with FeedbackStore(db) as store:
        (run,) = store.history("default")
    assert run["output_path"] is None and run["output_hash"] == bytes_fingerprint(proc.stdout)


def test_a_record_that_fails_after_the_run_only_warns_and_the_image_is_kept(tmp_path, capsys, monkeypatch):
    photo, out = _photo(tmp_path / "photo.png"), tmp_path / "out.png"

    def full(*args: object) -> int:
        raise StoreError("database or disk is full")

    monkeypatch.setattr(FeedbackStore, "add_run", full)
    assert main(["stylize", str(photo), *FAST, "-o", str(out), "--db", str(tmp_path / "f.sqlite3")]) == 0
    err = capsys.readouterr().err
    assert out.is_file() and "warning: the run was not recorded" in err and "disk is full" in err


# what the web UI uses ---------------------------------------------------------------------------------


def test_a_picture_has_one_fingerprint_whether_a_tensor_an_array_or_a_pil_image():
    from impasto.feedback.fingerprint import fingerprint, pixels_fingerprint, run_record
    from impasto.io import load_image

    pil = Image.fromarray(np.random.default_rng(3).integers(0, 255, (20, 30, 3), dtype=np.uint8))
    as_tensor, as_array = load_image(pil), np.asarray(pil)
    assert pixels_fingerprint(pil) == fingerprint(as_tensor) == fingerprint(as_array)
    assert fingerprint(as_tensor) != fingerprint(load_image(pil.rotate(90, expand=True)))
    record = {"method": "adain", "options": {"strength": 1.0}, "seconds": 0.3, "device": "cpu"}
    run = run_record(record, content=as_tensor, styles=[b"painting bytes"], result=b"\x89PNG...", thumbnail=as_tensor)
    assert run.source == "web" and run.output_path is None and run.content_fp == fingerprint(pil)
    assert run.output_hash == fingerprint(b"\x89PNG...") and run.info == {"seconds": 0.3, "device": "cpu"}
    assert run.thumbnail is not None and run.thumbnail.startswith(b"\x89PNG")


def test_threads_sharing_one_store_lose_nothing(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    with FeedbackStore(tmp_path / "f.sqlite3") as store:
        def work(k: int) -> None:
            for i in range(25):
                run = store.add_run(f"t{k}", _run(str(i)))
                store.rate(run, 1 + i % 5)

        with ThreadPoolExecutor(4) as pool:
            list(pool.map(work, range(4)))
        assert store.query("SELECT count(*) AS n FROM ratings")[0]["n"] == 100
        assert sum(p["runs"] for p in store.stats()["profiles"].values()) == 100


def test_a_folder_batch_records_one_run_per_saved_output_and_none_for_a_skipped_file(tmp_path, capsys):
    db, folder = tmp_path / "f.sqlite3", tmp_path / "photos"
    folder.mkdir()
    _photo(folder / "a.png")
    _photo(folder / "b.png")
    (folder / "broken.png").write_bytes(b"not an image")
    out = tmp_path / "out"
    assert main(["stylize", str(folder), *FAST, "-o", str(out), "--db", str(db), "-q"]) == 2  # broken: skipped
    with FeedbackStore(db) as store:
        runs = store.query("SELECT output_path, method FROM runs ORDER BY output_path")
    assert [(Path(r["output_path"]).name, r["method"]) for r in runs] == [("a_stylized.png", "fast"),
                                                                           ("b_stylized.png", "fast")]
    assert main(["rate", str(out / "b_stylized.png"), "5", "--db", str(db)]) == 0
