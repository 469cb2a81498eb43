"""CLI flags derived from the stylization contract's declarations (:mod:`impasto.options`).

Every option of every method becomes one flag (``--style-index`` for ``style_index``), added once even
when several methods share it; flags default to "not given" so that the method's own declared default
applies, and a flag the chosen method does not have is an error, not silently ignored.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

from impasto import options
from impasto.cli.common import non_empty

#: what `impasto stylize`'s --strength accepts beyond the declaration (see cli/feedback.StrengthChooser)
AUTO_STRENGTH_HELP = {"strength": "; or 'auto': the strength learned from your profile's A/B choices and ratings "
                                  "(applied by itself once they are enough: see 'impasto feedback explain')"}


def _methods_by_field(methods: Iterable[str]) -> dict[str, tuple[dataclasses.Field, list[str]]]:
    table: dict[str, tuple[dataclasses.Field, list[str]]] = {}
    for name in methods:
        for f in options.fields(name):
            if f.name in table:
                table[f.name][1].append(name)
            else:
                table[f.name] = (f, [name])
    return table


def add_option_flags(p: argparse.ArgumentParser, methods: Iterable[str] = tuple(options.METHODS),
                     extra_help: Mapping[str, str] | None = None) -> list[str]:
    """Add a flag for every option of ``methods``; returns the field names (see :func:`given`).
    ``extra_help``: text appended to some flags' help, for what one command accepts beyond the declaration."""
    table = _methods_by_field(methods)
    groups: dict[str, Any] = {}
    for name, (f, users) in table.items():
        key = ", ".join(users)
        group = groups.get(key) or groups.setdefault(key, p.add_argument_group(f"options of {key}"))
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
        shown = ",".join(default) if isinstance(default, list) else default
        help_text = f"{f.metadata['help']} (default {shown}){(extra_help or {}).get(name, '')}"
        if str(f.type) == "bool":
            flag = f"--no-{name.replace('_', '-')}" if default else f"--{name.replace('_', '-')}"
            group.add_argument(flag, dest=name, action="store_const", const=not default, default=argparse.SUPPRESS,
                               help=f.metadata["help"])
            continue
        choices = f.metadata.get("choices")
        group.add_argument("--" + name.replace("_", "-"), dest=name, default=argparse.SUPPRESS, type=non_empty,
                           choices=list(choices) if choices else None, help=help_text)
    return list(table)


def given(args: argparse.Namespace, names: Iterable[str]) -> dict[str, Any]:
    """The options the user actually gave on the command line (others keep their declared defaults)."""
    return {n: getattr(args, n) for n in names if hasattr(args, n)}


def options_from_args(args: argparse.Namespace, method: str, names: Iterable[str]) -> options.Options:
    return options.make_options(method, given(args, names))
