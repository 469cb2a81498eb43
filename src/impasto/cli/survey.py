"""``impasto survey``: create a blind A/B survey of methods or settings, answer it, report it."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from impasto.cli.common import ProgressBar, path_arg, positive_int, print_json
from impasto.cli.feedback import add_store_flags, open_store
from impasto.errors import InputError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("survey", help="blind A/B surveys of methods and settings: create, next, answer, report")
    ssub = p.add_subparsers(dest="survey_command", metavar="ACTION", parser_class=type(p))
    ssub.required = True
    c = ssub.add_parser("create", help="render every variant on every photo x painting and store the questions")
    c.add_argument("--name", required=True, help="the survey's name (letters, digits, . _ -)")
    c.add_argument("--photos", nargs="+", type=path_arg, required=True, help="photos (files or folders)")
    c.add_argument("--paintings", nargs="+", type=path_arg, required=True, help="paintings (files or folders)")
    c.add_argument("--method", action="append", default=[], help="a variant: a method with its defaults (repeat)")
    c.add_argument("--setting", action="append", default=[],
                   help="a variant with settings: 'gatys:strength=0.3' or 'soft:method=gatys,strength=0.2' (repeat)")
    c.add_argument("--size", type=positive_int, default=512, help="long side of every image (512)")
    c.add_argument("--seed", type=int, default=None, help="seed of the sides and order (default: random, stored)")
    c.add_argument("--out-dir", type=path_arg, default=None, help="where the images go (default: surveys/NAME beside "
                   "the database)")
    c.add_argument("--json", action="store_true")
    c.add_argument("--quiet", "-q", action="store_true")
    add_store_flags(c, profile_help="the profile that owns the survey (default: default)")
    c.set_defaults(func=run_create)
    _register_questions(ssub)
    r = ssub.add_parser("report", help="win rates (Wilson intervals) and Bradley-Terry strengths")
    r.add_argument("name")
    r.add_argument("--json", action="store_true")
    r.add_argument("--html", type=path_arg, default=None, help="also write an HTML page with the images")
    r.add_argument("--bootstrap", type=positive_int, default=1000, help="bootstrap samples (1000)")
    add_store_flags(r, profile_default=None, profile_help="only this respondent's answers (default: everyone's)")
    r.set_defaults(func=run_report)


def _register_questions(ssub: argparse._SubParsersAction) -> None:
    n = ssub.add_parser("next", help="the next question you have not answered (JSON)")
    n.add_argument("name")
    add_store_flags(n, profile_help="the respondent (default: default)")
    n.set_defaults(func=run_next)
    a = ssub.add_parser("answer", help="answer a question: a, b, same or skip")
    a.add_argument("name")
    a.add_argument("question", type=int)
    a.add_argument("winner", choices=["a", "b", "same", "skip"])
    add_store_flags(a, profile_help="the respondent (default: default)")
    a.set_defaults(func=run_answer)


def _expand(paths: list[Path], flag: str) -> list[Path]:
    from impasto.io import list_images

    out: list[Path] = []
    for p in paths:
        if p.is_dir():
            out.extend(list_images(p))
        elif p.is_file():
            out.append(p)
        else:
            raise InputError(f"{flag} {p}: no such file or folder")
    if not out:
        raise InputError(f"{flag}: no images found")
    return out


def run_create(args: argparse.Namespace) -> int:
    from impasto.feedback.survey import SurveySpec, create_survey

    spec = SurveySpec(name=args.name, photos=_expand(args.photos, "--photos"),
                      paintings=_expand(args.paintings, "--paintings"), variants=[*args.method, *args.setting],
                      size=args.size, seed=args.seed, profile=args.profile, folder=args.out_dir)
    bar = ProgressBar(args.quiet, desc=f"survey {args.name}")
    with open_store(args) as store:
        try:
            summary = create_survey(store, spec, bar)
        finally:
            bar.close()
    if args.json:
        print_json(summary)
    elif not args.quiet:
        print(f"survey {summary['survey']}: {summary['images']} images, {summary['questions']} questions in "
              f"{summary['folder']}", file=sys.stderr)
    return 0


def run_next(args: argparse.Namespace) -> int:
    from impasto.feedback.survey import next_question

    with open_store(args) as store:
        question = next_question(store, args.name, args.profile)
    print_json({"question": question})
    return 0


def run_answer(args: argparse.Namespace) -> int:
    from impasto.feedback.survey import answer

    with open_store(args) as store:
        answer(store, args.name, args.question, args.winner, profile=args.profile)
    return 0


def run_report(args: argparse.Namespace) -> int:
    from impasto.feedback.page import write_survey_page
    from impasto.feedback.survey import survey_report

    if args.html is not None and args.html.suffix.lower() not in (".html", ".htm"):
        raise InputError(f"--html {args.html}: give a .html file")
    with open_store(args) as store:
        report = survey_report(store, args.name, profile=args.profile, samples=args.bootstrap)
    if args.html is not None:
        write_survey_page(report, args.html)
    if args.json:
        print_json(report)
        return 0
    print(f"survey {report['survey']}: {report['answers']} answers, {report['skipped']} skipped")
    bt = report["bradley_terry"]
    for name, r in sorted(report["overall"].items(), key=lambda kv: -bt[kv[0]]["strength"]):
        shown = "-" if r["rate"] is None else f"{r['rate']:.1%} [{r['low']:.1%}, {r['high']:.1%}]"
        print(f"  {name}: win rate {shown} of {r['n']}; Bradley-Terry {bt[name]['strength']:.3f} "
              f"[{bt[name]['low']:.3f}, {bt[name]['high']:.3f}]")
    return 0
