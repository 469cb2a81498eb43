"""``impasto rate`` and ``impasto feedback`` (stats, history, export, forget, thumbnails), and the
--profile/--db flags and run recording every recording command shares.

Recording is on by default and local: ``--no-record`` or IMPASTO_NO_RECORD=1 turns it off, and such a run
does not open the store at all (no learned defaults either: the run is as without a profile). The store
is opened (and so checked) before a run starts, so a damaged database file stops the command with
exit 2 before any work; a write that fails after the image is saved only warns, the image is kept.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from impasto.cli.common import path_arg, print_json
from impasto.errors import ImpastoError, InputError
from impasto.feedback.store import DEFAULT_PROFILE, FeedbackStore, recording_disabled


def add_store_flags(p: argparse.ArgumentParser, *, profile_default: str | None = DEFAULT_PROFILE,
                    profile_help: str = "whose feedback this is (default: default)") -> None:
    p.add_argument("--profile", default=profile_default, help=profile_help)
    p.add_argument("--db", type=path_arg, default=None,
                   help="feedback database (default: impasto.sqlite3 in $IMPASTO_HOME, $XDG_DATA_HOME/impasto or "
                        "~/.local/share/impasto)")


def add_record_flags(p: argparse.ArgumentParser) -> None:
    """Flags of a command whose runs are recorded in the feedback store."""
    g = p.add_argument_group("feedback (kept on this machine only)")
    add_store_flags(g)  # type: ignore[arg-type]
    g.add_argument("--no-record", action="store_true", help="do not record this run (or set IMPASTO_NO_RECORD=1)")
    g.add_argument("--keep-thumbnails", action="store_true",
                   help="keep a small thumbnail of the output with the record (off unless the profile opted in)")


def open_store(args: argparse.Namespace) -> FeedbackStore:
    return FeedbackStore(args.db)


class Recorder:
    """Records a command's runs; opened before the run so a bad database fails first."""

    def __init__(self, store: FeedbackStore, profile: str, thumbnails: bool) -> None:
        self.store, self.profile = store, profile
        self.thumbnails = thumbnails or store.keep_thumbnails(profile)

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Recorder | None:
        if not store_in_use(args):
            return None
        from impasto.feedback.store import check_profile

        check_profile(args.profile)
        return cls(open_store(args), args.profile, args.keep_thumbnails)

    def close(self) -> None:
        self.store.close()

    def record(self, output: dict[str, Any], files: dict[str, Any], image: Any, png: bytes | None = None
               ) -> int | None:
        """``files``: content (a path), styles (paths), output (a path, or None when ``png`` went to
        stdout). Returns the run id, or None (with a one-line warning) when recording failed."""
        from impasto.feedback.fingerprint import run_record

        try:
            result = files.get("output") or png or b""
            run = run_record(output, content=files["content"], styles=list(files.get("styles") or []),
                             result=result, source="cli", thumbnail=image if self.thumbnails else None)
            return self.store.add_run(self.profile, run)
        except (ImpastoError, OSError) as exc:
            print(f"impasto: warning: the run was not recorded in the feedback store ({exc})", file=sys.stderr)
            return None


def register(sub: argparse._SubParsersAction) -> None:
    r = sub.add_parser("rate", help="rate a stylized image 1 to 5 stars (found by its path, or its content if moved)")
    r.add_argument("output", type=path_arg, help="an output of 'impasto stylize'")
    r.add_argument("stars", help="1 to 5")
    add_store_flags(r)
    r.set_defaults(func=run_rate)

    f = sub.add_parser("feedback", help="your recorded runs, ratings and choices: stats, history, export, forget")
    fsub = f.add_subparsers(dest="feedback_command", metavar="ACTION", parser_class=type(f))
    fsub.required = True
    everyone = "one profile (default: every profile)"
    s = fsub.add_parser("stats", help="runs, ratings and choices per profile and method")
    add_store_flags(s, profile_default=None, profile_help=everyone)
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=run_stats)
    h = fsub.add_parser("history", help="a profile's runs, newest first")
    add_store_flags(h)
    h.add_argument("--limit", type=int, default=20)
    h.add_argument("--json", action="store_true")
    h.set_defaults(func=run_history)
    e = fsub.add_parser("export", help="everything the store keeps, as JSON on stdout")
    add_store_flags(e, profile_default=None, profile_help=everyone)
    e.add_argument("--json", action="store_true", help="JSON (the only format)")
    e.set_defaults(func=run_export)
    _register_forget(fsub)
    _register_taste(fsub)
    t = fsub.add_parser("thumbnails", help="keep small output thumbnails with this profile's records (on/off)")
    t.add_argument("state", choices=["on", "off"])
    add_store_flags(t)
    t.set_defaults(func=run_thumbnails)


def _register_forget(fsub: argparse._SubParsersAction) -> None:
    g = fsub.add_parser("forget", help="delete a profile's feedback (or everyone's) for good")
    who = g.add_mutually_exclusive_group(required=True)
    who.add_argument("--profile", help="the profile to delete")
    who.add_argument("--all", action="store_true", help="every profile")
    g.add_argument("--db", type=path_arg, default=None, help="feedback database (default: the data directory's)")
    g.add_argument("--json", action="store_true")
    g.set_defaults(func=run_forget)


def _register_taste(fsub: argparse._SubParsersAction) -> None:
    x = fsub.add_parser("explain", help="what impasto learned of a profile's taste, and from how many answers")
    add_store_flags(x)
    x.add_argument("--json", action="store_true")
    x.set_defaults(func=run_explain)
    pr = fsub.add_parser("prefer", help="record an A/B choice between two outputs of 'impasto stylize' (the "
                         "first is the one you prefer), as the web UI's A/B mode does")
    pr.add_argument("winner", type=path_arg)
    pr.add_argument("loser", type=path_arg)
    pr.add_argument("--same", action="store_true", help="you like them equally")
    add_store_flags(pr)
    pr.set_defaults(func=run_prefer)


def store_in_use(args: argparse.Namespace) -> bool:
    """False under --no-record or IMPASTO_NO_RECORD: the run neither writes nor reads the store, so a busy
    or damaged database never stops it (the store's own errors suggest --no-record)."""
    return not (getattr(args, "no_record", False) or recording_disabled())


class StrengthChooser:
    """``--strength auto`` (or no ``--strength`` once the profile has evidence): the strength learned
    from the profile's answers for this method and pair, else the declared default, and the record saying
    which. With no answers nothing is measured and the run is exactly as without a profile."""

    def __init__(self, args: argparse.Namespace, method: str) -> None:
        self.method, self.profile = method, args.profile
        given = getattr(args, "strength", None)
        self.auto = given == "auto"
        self.store: FeedbackStore | None = None
        if given is not None and not self.auto:
            return  # the user set it
        if not store_in_use(args):
            if self.auto:
                raise InputError("--strength auto learns from your feedback store; not with --no-record "
                                 "(or IMPASTO_NO_RECORD)")
            return
        from impasto.feedback.store import check_profile, default_db_path
        from impasto.feedback.taste import gather

        check_profile(args.profile)
        path = args.db or default_db_path()
        if not self.auto and not Path(path).exists():
            return
        store = FeedbackStore(path)
        if self.auto or gather(store, self.profile).strength.get(method):
            self.store = store
        else:
            store.close()

    def choose(self, content: Any, styles: list[Any]) -> tuple[float | None, dict[str, Any] | None]:
        """(strength or None for the declared default, the record's ``learned`` entry or None)."""
        if self.store is None:
            return None, None
        from impasto.feedback.taste import learned_strength, pair_feature

        feature = pair_feature(content, styles[0]) if styles else 0.0
        learned = learned_strength(self.store, self.profile, self.method, feature)
        return learned.strength, learned.record()


def _evidence(args: argparse.Namespace) -> Any:
    """The profile's answers, or None when there is no database yet (nothing is created by reading) or the
    run keeps out of the store."""
    from impasto.feedback.store import check_profile, default_db_path
    from impasto.feedback.taste import gather

    check_profile(args.profile)
    path = args.db or default_db_path()
    if not store_in_use(args) or not Path(path).exists():
        return None
    with FeedbackStore(path) as store:
        return gather(store, args.profile)


def learned_method(args: argparse.Namespace) -> tuple[str, dict[str, Any] | None]:
    """No --method: the one the profile's answers clearly prefer, when it takes what was given (a painting
    or not); otherwise the declared default. Returns (method, the record's note or None)."""
    from impasto.feedback.taste import preferred_method
    from impasto.options import DEFAULT_METHOD, METHODS

    if args.method is not None:
        return args.method, None
    ev = _evidence(args)
    chosen = preferred_method(ev, tuple(METHODS)) if ev is not None else None
    if chosen is None or METHODS[chosen].needs_style != bool(args.style):
        return DEFAULT_METHOD, None
    return chosen, {"method": chosen, "answers": len(ev.methods), "source": "learned"}


def learned_colour(args: argparse.Namespace, method: str) -> tuple[str | None, dict[str, Any] | None]:
    """No --preserve-color: keep the photo's colours (luminance) when the profile's answers clearly prefer it."""
    if hasattr(args, "preserve_color"):
        return None, None
    ev = _evidence(args)
    taste = ev.colour_taste(method) if ev is not None else None
    if taste is None or taste.decided() is not True:
        return None, None
    return "luminance", {"preserve_color": "luminance", "answers": taste.answers, "source": "learned"}


def run_explain(args: argparse.Namespace) -> int:
    from impasto.feedback.taste import explain
    from impasto.options import METHODS

    with open_store(args) as store:
        result = explain(store, args.profile, tuple(METHODS))
    if args.json:
        print_json(result)
        return 0
    print(f"profile {args.profile!r}:")
    for method, m in result["methods"].items():
        if m["strength_answers"]:
            state = "applied by default" if m["strength_applies"] else "not yet applied (needs more answers)"
            print(f"  {method}: preferred strength {m['strength_estimate']:.2f} +- {m['strength_spread']:.2f} "
                  f"from {m['strength_answers']} answers, {state}"
                  + ("; it depends on the pair" if m["depends_on_pair"] else ""))
        else:
            print(f"  {method}: no strength answers yet: the declared default applies")
        if m["colour_answers"]:
            taste = {True: "keeps the photo's colours", False: "takes the painting's colours", None: "undecided"}
            print(f"    colour: {taste[m['keeps_colour']]} ({m['colour_answers']} answers)")
    chosen = result["preferred_method"]
    print(f"  method: {chosen + ' preferred' if chosen else 'no clear preference'} "
          f"({result['method_answers']} answers)")
    return 0


def run_prefer(args: argparse.Namespace) -> int:
    from impasto.feedback.fingerprint import file_fingerprint

    runs = []
    with open_store(args) as store:
        for path in (args.winner, args.loser):
            digest = file_fingerprint(path) if path.is_file() else None
            run = store.find_output(args.profile, path=str(path.resolve()), output_hash=digest)
            if run is None:
                raise InputError(f"{path}: no recorded run of profile {args.profile!r} made this image")
            runs.append(run["id"])
        if runs[0] == runs[1]:
            raise InputError("the two images are the same recorded run")
        store.choose(args.profile, runs[0], runs[1], "same" if args.same else "a")
    print(f"recorded: run {runs[0]} {'equal to' if args.same else 'preferred over'} run {runs[1]}", file=sys.stderr)
    return 0


def _stars(text: str) -> int:
    try:
        stars = int(text)
    except ValueError:
        stars = 0
    if not 1 <= stars <= 5 or str(stars) != text.strip():
        raise InputError(f"a rating is a whole number of stars from 1 to 5, got {text!r}")
    return stars


def run_rate(args: argparse.Namespace) -> int:
    from impasto.feedback.fingerprint import file_fingerprint

    stars = _stars(args.stars)
    digest = file_fingerprint(args.output) if args.output.is_file() else None
    with open_store(args) as store:
        run = store.find_output(args.profile, path=str(args.output.resolve()), output_hash=digest)
        if run is None:
            raise InputError(f"{args.output}: no recorded run of profile {args.profile!r} made this image "
                             "(not by its path nor by its content)")
        store.rate(run["id"], stars)
    print(f"rated run {run['id']} ({run['method']}) {stars}/5", file=sys.stderr)
    return 0


def run_stats(args: argparse.Namespace) -> int:
    with open_store(args) as store:
        result = store.stats(args.profile)
    if args.json:
        print_json(result)
        return 0
    if not result["profiles"]:
        print(f"nothing recorded yet in {result['database']}")
    for name, p in result["profiles"].items():
        print(f"{name}: {p['runs']} runs ({p['rated']} rated), {p['choices']} A/B choices, {p['surveys']} surveys")
        for method, m in p["methods"].items():
            stars = f", mean {m['mean_stars']:.2f} stars" if m["mean_stars"] is not None else ""
            secs = f", mean {m['mean_seconds']:.2f}s" if m["mean_seconds"] is not None else ""
            print(f"  {method}: {m['runs']} runs{secs}, {m['rated']} rated{stars}")
    return 0


def run_history(args: argparse.Namespace) -> int:
    with open_store(args) as store:
        runs = store.history(args.profile, limit=args.limit)
    if args.json:
        print_json({"profile": args.profile, "runs": runs})
        return 0
    import time

    for r in runs:
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(r["created"]))
        stars = f"{r['stars']}/5" if r["stars"] else "unrated"
        print(f"{r['id']:>6} {when} {r['method']:<6} {stars:<8} {r['output_path'] or '(stdout)'}")
    return 0


def run_export(args: argparse.Namespace) -> int:
    with open_store(args) as store:
        print_json(store.export(args.profile))
    return 0


def run_forget(args: argparse.Namespace) -> int:
    with open_store(args) as store:
        result = store.forget(None if args.all else args.profile)
    if args.json:
        print_json(result)
    else:
        print(f"deleted {result['profiles']} profile(s): {result['runs']} runs, {result['choices']} choices, "
              f"{result['surveys']} surveys", file=sys.stderr)
    if not result["compacted"]:
        print("impasto: warning: another impasto process has the database open; old copies of the deleted rows "
              "may stay in its -wal file until that process ends (run forget again then)", file=sys.stderr)
    return 0


def run_thumbnails(args: argparse.Namespace) -> int:
    with open_store(args) as store:
        store.set_keep_thumbnails(args.profile, args.state == "on")
    print(f"thumbnails {args.state} for profile {args.profile!r}", file=sys.stderr)
    return 0
