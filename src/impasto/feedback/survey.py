"""Blind A/B surveys: render every variant on every photo x painting, ask which of two is better,
report who wins.

:func:`create_survey` renders each variant (a method, or a method with settings) through the
stylization contract, keeps the images in the store's ``surveys`` folder, records them as runs and
stores one question per pair of variants per photo x painting, sides and order shuffled with a stored
seed (so the survey can be rebuilt and audited). :func:`next_question` and :func:`answer` are what a
questionnaire (the web UI, a script) needs: a question never names its variants. :func:`survey_report`
gives win rates with Wilson intervals and Bradley-Terry strengths with bootstrap intervals
(:mod:`impasto.feedback.stats`).
"""

from __future__ import annotations

import itertools
import json
import random
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from impasto.errors import InputError
from impasto.feedback import stats
from impasto.feedback.fingerprint import file_fingerprint
from impasto.feedback.store import DEFAULT_PROFILE, FeedbackStore, RunRecord
from impasto.progress import Callback

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


@dataclass
class SurveySpec:
    """What to render: ``variants`` are method names (``adain``) or settings (``gatys:strength=0.3``,
    ``soft:method=gatys,strength=0.2``: NAME:key=value,... as ``impasto compare`` reads them, with the
    method taken from NAME when NAME is a method); ``size`` is every output's long side (photos are
    brought to it first, so every variant sees the same input)."""

    name: str
    photos: list[Path]
    paintings: list[Path]
    variants: list[str]
    size: int | None = 512
    seed: int | None = None
    profile: str = DEFAULT_PROFILE
    folder: Path | None = None


def check_name(name: str) -> str:
    if not _NAME.match(name or ""):
        raise InputError(f"survey name {name!r}: use letters, digits, '.', '_' and '-' (64 at most)")
    return name


def parse_variant(text: str, size: int | None) -> tuple[str, Any]:
    """``adain`` or ``NAME:key=value,...`` -> (the variant's name, its validated options)."""
    from impasto.compare import parse_setting
    from impasto.options import METHODS

    head, colon, rest = text.partition(":")
    method = head if head in METHODS and "method=" not in rest else None
    if not colon and method is None:
        raise InputError(f"{text!r}: not a method ({', '.join(METHODS)}) nor a NAME:key=value,... setting")
    parts = [p for p in rest.split(",") if p.strip()]
    keys = {p.partition("=")[0].strip().replace("-", "_") for p in parts}
    if method is None:
        method = next((p.split("=", 1)[1].strip() for p in parts if p.strip().startswith("method=")), "gatys")
    parts = [p for p in parts if p.partition("=")[0].strip() != "method"]  # given once, below
    size_key = "size" if method == "gatys" else "max_size"
    if size is not None and size_key not in keys:  # the survey's size, unless the variant names its own
        parts.insert(0, f"{size_key}={size}")
    name, options = parse_setting(f"{head}:method={method},{','.join(parts)}")
    return (text if head in METHODS and colon else name), options


def _variants(spec: SurveySpec) -> list[tuple[str, Any]]:
    parsed = [parse_variant(v, spec.size) for v in spec.variants]
    if len(parsed) < 2:
        raise InputError("a survey compares at least two variants (--method/--setting)")
    if len({n for n, _ in parsed}) != len(parsed):
        raise InputError("the survey's variants must differ (give a setting a NAME: 'soft:method=gatys,...')")
    return parsed


def _render_pair(index: int, photo: Path, painting: Path, variants: list[tuple[str, Any]], ctx: dict[str, Any]
                 ) -> list[RunRecord]:
    """Every variant on one photo x painting, saved as ``p{index}/v{variant}.png``; their run records."""
    from impasto import stylizer
    from impasto.io import load_image, resize_long, save_image

    content = load_image(photo)
    if ctx["size"] is not None:
        content = resize_long(content, ctx["size"])
    style = load_image(painting)
    folder = ctx["folder"] / f"p{index:03d}"
    folder.mkdir(parents=True, exist_ok=True)
    runs = []
    for v, (name, options) in enumerate(variants):
        styles = [style] if stylizer.get_method(stylizer.method_of(options)).needs_style else []
        chosen = ctx["chosen"][name][painting]  # a fast variant: the style this painting is
        out = stylizer.stylize(stylizer.StylizeRequest(content, styles, chosen), ctx["callback"])
        target = save_image(out.image, folder / f"v{v:02d}.png").resolve()
        runs.append(RunRecord.from_output(out.record, content_fp=file_fingerprint(photo),
                                          style_fps=[file_fingerprint(painting)], output_path=str(target),
                                          output_hash=file_fingerprint(target), source="survey", label=name))
    return runs


def _questions(n_pairs: int, n_variants: int, seed: int) -> list[tuple[int, int, int]]:
    """(pair index, variant on side a, variant on side b) for every pair of variants on every image
    pair; sides and order drawn from ``seed``."""
    rng = random.Random(seed)
    out = []
    for pair in range(n_pairs):
        for i, j in itertools.combinations(range(n_variants), 2):
            out.append((pair, i, j) if rng.random() < 0.5 else (pair, j, i))
    rng.shuffle(out)
    return out


@dataclass
class Rendered:
    """A survey's images, rendered and not yet stored: ``runs[pair][variant]``, in the order of
    ``pairs`` (photo, painting) and ``variants`` (name, method, options record)."""

    variants: list[dict[str, Any]]
    pairs: list[tuple[Path, Path]]
    runs: list[list[RunRecord]]
    seed: int
    folder: Path | None = None


def create_survey(store: FeedbackStore, spec: SurveySpec, callback: Callback | None = None) -> dict[str, Any]:
    """Render, record and store a survey; returns its summary (name, folder, counts, seed)."""
    from impasto import stylizer
    from impasto.compare import options_per_painting

    check_name(spec.name)
    if not spec.photos or not spec.paintings:
        raise InputError("a survey needs at least one --photos and one --paintings image")
    if store.query("SELECT 1 FROM surveys WHERE name = ?", (spec.name,)):
        raise InputError(f"a survey named {spec.name!r} exists already (pick another --name)")
    variants = _variants(spec)
    for _, options in variants:
        stylizer.preload(options)  # a bad model fails before anything is rendered
    paintings = [s.resolve() for s in spec.paintings]
    # and so does a painting a fast model cannot paint: each variant's options for each painting, once
    chosen = {name: options_per_painting(name, options, paintings) for name, options in variants}
    seed = spec.seed if spec.seed is not None else random.SystemRandom().randrange(2**31)
    folder = (spec.folder or store.folder / "surveys" / spec.name).resolve()
    pairs = [(p.resolve(), s) for p in spec.photos for s in paintings]
    ctx = {"size": spec.size, "folder": folder, "callback": callback, "chosen": chosen}
    runs = [_render_pair(i, p, s, variants, ctx) for i, (p, s) in enumerate(pairs)]
    described = [{"name": n, **stylizer.record(o)} for n, o in variants]
    return save_survey(store, spec.name, spec.profile, Rendered(described, pairs, runs, seed, folder))


def save_survey(store: FeedbackStore, name: str, profile: str, rendered: Rendered) -> dict[str, Any]:
    """Store rendered images as runs and the survey with its questions, all in one transaction."""
    check_name(name)
    names = [v["name"] for v in rendered.variants]
    questions = _questions(len(rendered.pairs), len(names), rendered.seed)
    with store.writing() as conn:
        if conn.execute("SELECT 1 FROM surveys WHERE name = ?", (name,)).fetchone():
            raise InputError(f"a survey named {name!r} exists already (pick another --name)")
        run_ids = [[store.insert_run(conn, profile, r) for r in runs] for runs in rendered.runs]
        cursor = conn.execute(
            "INSERT INTO surveys (profile_id, name, created, variants, pairs, seed, folder) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (store.profile_id(conn, profile), name, time.time(), json.dumps(rendered.variants, default=str),
             json.dumps([[str(p), str(s)] for p, s in rendered.pairs]), rendered.seed,
             str(rendered.folder) if rendered.folder else None))
        conn.executemany(
            "INSERT INTO survey_items (survey_id, position, pair_index, variant_a, variant_b, run_a, run_b) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            [(cursor.lastrowid, pos, pair, names[a], names[b], run_ids[pair][a], run_ids[pair][b])
             for pos, (pair, a, b) in enumerate(questions)])
    return {"survey": name, "folder": str(rendered.folder) if rendered.folder else None, "variants": names,
            "pairs": len(rendered.pairs), "questions": len(questions), "images": len(rendered.pairs) * len(names),
            "seed": rendered.seed}


def _survey_row(store: FeedbackStore, name: str) -> dict[str, Any]:
    rows = store.query("SELECT id, name, variants, pairs, seed, folder FROM surveys WHERE name = ?", (name,))
    if not rows:
        raise InputError(f"no survey named {name!r} (see 'impasto feedback stats')")
    row = rows[0]
    row["variants"], row["pairs"] = json.loads(row["variants"]), json.loads(row["pairs"])
    return row


def survey_folder(store: FeedbackStore, name: str) -> Path | None:
    """The folder a survey's images were rendered into (None if it recorded none): the only place a
    questionnaire may serve its images from."""
    folder = _survey_row(store, name)["folder"]
    return Path(folder) if folder else None


def list_surveys(store: FeedbackStore) -> list[dict[str, Any]]:
    """Every survey: name, owner profile, creation time, question and answer counts."""
    return store.query(
        "SELECT s.name, p.name AS profile, s.created, (SELECT count(*) FROM survey_items WHERE survey_id = s.id) "
        "AS questions, (SELECT count(*) FROM choices WHERE survey_id = s.id) AS answers FROM surveys s "
        "JOIN profiles p ON p.id = s.profile_id ORDER BY s.created")


_QUESTION = ("SELECT i.id, i.position, i.pair_index, ra.output_path AS image_a, rb.output_path AS image_b, i.run_a, "
             "i.run_b FROM survey_items i JOIN runs ra ON ra.id = i.run_a JOIN runs rb ON rb.id = i.run_b "
             "WHERE i.survey_id = ?")
_OPEN = (" AND NOT EXISTS (SELECT 1 FROM choices c JOIN profiles p ON p.id = c.profile_id "
         "WHERE c.item_id = i.id AND p.name = ?)")


def _question(store: FeedbackStore, row: dict[str, Any], item: dict[str, Any], profile: str) -> dict[str, Any]:
    total = store.query("SELECT count(*) AS n FROM survey_items WHERE survey_id = ?", (row["id"],))[0]["n"]
    photo, painting = row["pairs"][item.pop("pair_index")]
    return {"survey": row["name"], **item, "photo": photo, "painting": painting, "total": total,
            "answered": total - _unanswered(store, row["id"], profile)}


def next_question(store: FeedbackStore, survey: str, profile: str = DEFAULT_PROFILE) -> dict[str, Any] | None:
    """The first question ``profile`` has not answered (None when done): its id, position, progress
    (``answered`` of ``total``), the photo and painting, and the two images as sides a and b (their
    files and run ids); never which variant is which."""
    row = _survey_row(store, survey)
    items = store.query(f"{_QUESTION}{_OPEN} ORDER BY i.position LIMIT 1", (row["id"], profile))
    return _question(store, row, items[0], profile) if items else None


def get_question(store: FeedbackStore, survey: str, question_id: int, profile: str = DEFAULT_PROFILE
                 ) -> dict[str, Any]:
    """One question by id, as :func:`next_question` gives it: what a server looks the image files up
    in (never a path from the client)."""
    row = _survey_row(store, survey)
    items = store.query(f"{_QUESTION} AND i.id = ?", (row["id"], int(question_id)))
    if not items:
        raise InputError(f"survey {survey!r} has no question {question_id}")
    return _question(store, row, items[0], profile)


def _unanswered(store: FeedbackStore, survey_id: int, profile: str) -> int:
    return store.query(f"SELECT count(*) AS n FROM survey_items i WHERE i.survey_id = ?{_OPEN}",
                       (survey_id, profile))[0]["n"]


def answer(store: FeedbackStore, survey: str, question_id: int, winner: str, *, profile: str = DEFAULT_PROFILE
           ) -> int:
    """Record ``profile``'s answer (a, b, same or skip) to one question; answering again replaces the
    earlier answer. Returns the choice id."""
    row = _survey_row(store, survey)
    with store.writing() as conn:
        item = conn.execute("SELECT run_a, run_b FROM survey_items WHERE id = ? AND survey_id = ?",
                            (int(question_id), row["id"])).fetchone()
        if item is None:
            raise InputError(f"survey {survey!r} has no question {question_id}")
        conn.execute("DELETE FROM choices WHERE item_id = ? AND profile_id = (SELECT id FROM profiles WHERE name = ?)",
                     (int(question_id), profile))
        return store.insert_choice(conn, profile, (item[0], item[1]), winner, (row["id"], int(question_id)))


def _answers(store: FeedbackStore, survey_id: int, profile: str | None) -> list[dict[str, Any]]:
    sql = ("SELECT i.pair_index, i.variant_a, i.variant_b, c.winner, p.name AS profile FROM choices c "
           "JOIN survey_items i ON i.id = c.item_id JOIN profiles p ON p.id = c.profile_id WHERE c.survey_id = ?")
    if profile is None:
        return store.query(sql, (survey_id,))
    return store.query(sql + " AND p.name = ?", (survey_id, profile))


def _tally(answers: list[dict[str, Any]], names: list[str]) -> tuple[dict[tuple[int, int], list[int]], int]:
    """(i, j) with i < j -> [i won, j won, ties], and the number of skips."""
    index = {n: k for k, n in enumerate(names)}
    cells: dict[tuple[int, int], list[int]] = {}
    skipped = 0
    for ans in answers:
        if ans["winner"] == "skip" or ans["variant_a"] not in index or ans["variant_b"] not in index:
            skipped += 1
            continue
        a, b = index[ans["variant_a"]], index[ans["variant_b"]]
        key, flip = ((a, b), False) if a < b else ((b, a), True)
        cell = cells.setdefault(key, [0, 0, 0])
        if ans["winner"] == "same":
            cell[2] += 1
        else:
            cell[0 if (ans["winner"] == "a") != flip else 1] += 1
    return cells, skipped


def _overall(cells: dict[tuple[int, int], list[int]], names: list[str]) -> dict[str, Any]:
    totals = {n: [0, 0, 0] for n in names}
    for (i, j), (wi, wj, ties) in cells.items():
        for k, won, lost in ((i, wi, wj), (j, wj, wi)):
            t = totals[names[k]]
            t[0], t[1], t[2] = t[0] + won, t[1] + lost, t[2] + ties
    return {n: stats.rate(*t) for n, t in totals.items()}


def survey_report(store: FeedbackStore, name: str, *, profile: str | None = None, samples: int = 1000,
                  seed: int = 0) -> dict[str, Any]:
    """Win rates (overall, per matchup, per photo x painting) with 95% Wilson intervals, and
    Bradley-Terry strengths with 95% bootstrap intervals; ``profile`` limits it to one respondent."""
    row = _survey_row(store, name)
    names = [v["name"] for v in row["variants"]]
    answers = _answers(store, row["id"], profile)
    cells, skipped = _tally(answers, names)
    strengths = stats.bradley_terry(stats.wins_matrix(len(names), cells))  # type: ignore[arg-type]
    low, high = stats.bootstrap_bradley_terry(len(names), cells, samples=samples, seed=seed)  # type: ignore[arg-type]
    matchups = [{"a": names[i], "b": names[j], **stats.rate(*cells.get((i, j), [0, 0, 0]))}
                for i, j in itertools.combinations(range(len(names)), 2)]
    by_image = []
    for pair_index, (photo, painting) in enumerate(row["pairs"]):
        pair_cells, _ = _tally([a for a in answers if a["pair_index"] == pair_index], names)
        by_image.append({"photo": photo, "painting": painting, "variants": _overall(pair_cells, names)})
    return {"survey": name, "seed": row["seed"], "variants": row["variants"], "answers": len(answers),
            "skipped": skipped, "respondents": len({a["profile"] for a in answers}),
            "overall": _overall(cells, names), "matchups": matchups, "by_image": by_image,
            "bradley_terry": {n: {"strength": float(strengths[k]), "low": float(low[k]), "high": float(high[k])}
                              for k, n in enumerate(names)},
            "images": _images(store, row)}


def _images(store: FeedbackStore, row: dict[str, Any]) -> list[dict[str, Any]]:
    """Per photo x painting: the photo, the painting and each variant's output file."""
    outputs = store.query(
        "SELECT DISTINCT i.pair_index, r.label, r.output_path FROM survey_items i JOIN runs r "
        "ON r.id IN (i.run_a, i.run_b) WHERE i.survey_id = ?", (row["id"],))
    out = [{"photo": p, "painting": s, "outputs": {}} for p, s in row["pairs"]]
    for o in outputs:
        out[o["pair_index"]]["outputs"][o["label"]] = o["output_path"]
    return out
