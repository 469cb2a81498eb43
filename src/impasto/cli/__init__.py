"""``impasto`` command line: argparse subcommands over the Python API.

User errors (:class:`~impasto.errors.ImpastoError`) become one line on stderr and exit code 2;
models load lazily inside each subcommand so ``impasto --help`` is instant.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from impasto import __version__
from impasto.cli import data as data_cmd
from impasto.cli import evaluate as evaluate_cmd
from impasto.cli import export as export_cmd
from impasto.cli import feedback as feedback_cmd
from impasto.cli import generate as generate_cmd
from impasto.cli import serve as serve_cmd
from impasto.cli import sheet as sheet_cmd
from impasto.cli import stylize as stylize_cmd
from impasto.cli import survey as survey_cmd
from impasto.cli import train as train_cmd
from impasto.cli import translate as translate_cmd
from impasto.cli import video as video_cmd
from impasto.cli import weights as weights_cmd
from impasto.errors import ImpastoError

SUBCOMMANDS = (stylize_cmd, sheet_cmd, video_cmd, train_cmd, translate_cmd, generate_cmd, export_cmd, evaluate_cmd,
               data_cmd, serve_cmd, weights_cmd, feedback_cmd, survey_cmd)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2 (argparse's default prints usage too)
        self.exit(2, f"impasto: error: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="impasto", description="Neural style transfer and image generation.")
    parser.add_argument("--version", action="version", version=f"impasto {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for module in SUBCOMMANDS:
        module.register(sub)
    return parser


#: flags whose value is a list of numbers that may start with a minus sign ("-1,2"), which argparse would
#: otherwise take for another flag and answer "expected one argument" instead of naming the bad number
NUMBER_LIST_FLAGS = ("--style-weights",)


def _attach_number_lists(argv: Sequence[str]) -> list[str]:
    """``--style-weights -1,2`` as ``--style-weights=-1,2``, so the value reaches its own check."""
    out: list[str] = []
    for arg in argv:
        if out and out[-1] in NUMBER_LIST_FLAGS and arg[:1] == "-" and arg[1:2] in "0123456789.":
            out[-1] = f"{out[-1]}={arg}"
        else:
            out.append(arg)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(_attach_number_lists(sys.argv[1:] if argv is None else argv))
    from impasto.device import keep_freed_memory  # here: importing torch is not free

    keep_freed_memory()
    try:
        return int(args.func(args) or 0)
    except ImpastoError as exc:
        print(f"impasto: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # a full disk or a read-only place met outside io's atomic writes (stdout, a log)
        from impasto.io import write_failure

        failure = write_failure(exc, exc.filename or "writing output", note="")
        if failure is None:
            raise
        print(f"impasto: error: {failure}", file=sys.stderr)
        return 2
    except (MemoryError, RuntimeError) as exc:  # torch reports an allocation that failed as a RuntimeError
        if not _out_of_memory(exc):
            raise
        print(f"impasto: error: out of memory{_wanted(exc)}; ask for less (a smaller image size, batch or number "
              "of images) or close other programs", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("impasto: interrupted", file=sys.stderr)
        return 130


def _out_of_memory(exc: BaseException) -> bool:
    """A failed allocation (the CPU allocator's "can't allocate memory", CUDA's out of memory), which the
    user can act on (a smaller size), as opposed to a bug, which keeps its traceback."""
    text = str(exc).lower()
    return isinstance(exc, MemoryError) or "can't allocate memory" in text or "out of memory" in text


def _wanted(exc: BaseException) -> str:
    """' (one allocation of N GiB/MiB)' when torch's message says how much it tried to allocate."""
    import re

    found = re.search(r"allocate (\d+) bytes", str(exc))
    if not found:
        return ""
    size = int(found.group(1))
    amount = f"{size / 2**30:.1f} GiB" if size >= 2**30 else f"{size / 2**20:.0f} MiB"
    return f" (one allocation of {amount})"
