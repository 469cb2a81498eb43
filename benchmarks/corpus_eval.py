"""Shared by the corpus benchmarks (cyclegan_paintings.py, transfer_paintings.py).

Files are chosen by split and name prefix through ``impasto.train.data.Selection``, the same rule the
trainers use, so a benchmark reads exactly the rows the trainer never saw. KID comes with its jackknife
standard error (``impasto.metrics.kernel_distance_se``); means over seeds come with t intervals. The
domain probe (``impasto.probe``) is fitted on ``train`` rows only and checked on the held-out ones.
"""

from __future__ import annotations

import math
import statistics
from pathlib import Path
from typing import Any

import torch

from impasto.metrics import domain_features, kernel_distance_se, pooled_part
from impasto.probe import DomainProbe
from impasto.train.data import select_images, selection

#: two-sided 95% Student t quantiles by degrees of freedom (scipy is not needed for 3 seeds)
T95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228}


def corpus_files(corpus: Path, folder: str, prefixes: str, splits: str, limit: int | None = None) -> list[Path]:
    """Files of ``corpus/folder`` on the given splits (comma list) whose names start with ``prefixes``."""
    sel = selection(corpus / "split.tsv", prefixes)
    found: list[Path] = []
    for split in (s.strip() for s in splits.split(",") if s.strip()):
        found += select_images(corpus / folder, sel, split, name=folder, required=False)[0]
    if not found:
        raise SystemExit(f"no {folder} in {corpus} on split(s) {splits} with prefix(es) {prefixes}")
    found = sorted(found)
    return found[:limit] if limit else found


def spread(paths: list[Path], n: int) -> list[Path]:
    """At most ``n`` of ``paths``, evenly spaced through the sorted list (not its first names only)."""
    return paths[:: max(1, len(paths) // n)][:n]


def features(images: list[torch.Tensor], feature_size: int) -> torch.Tensor:
    """One VGG pass per image for everything a set is scored on: the domain probe's rows, whose pooled
    relu5_3 part is what KID compares."""
    return domain_features(images, feature_size)


def kid(features_a: torch.Tensor, features_b: torch.Tensor) -> dict[str, Any]:
    """KID of two sets' ``features`` rows on their pooled VGG relu5_3 part, with its standard error and the
    set sizes."""
    value, se = kernel_distance_se(pooled_part(features_a), pooled_part(features_b))
    return {"kid": value, "se": se, "n": [len(features_a), len(features_b)]}


def fit_probe(groups: dict[str, list[torch.Tensor]], feature_size: int) -> DomainProbe:
    """The domain probe on training images of each kind, prepared exactly as the images it will judge."""
    return DomainProbe.fit({name: features(images, feature_size) for name, images in groups.items()})


def probe_row(probe: DomainProbe, features_rows: torch.Tensor, target: str = "target") -> dict[str, Any]:
    """The fraction of a set (its ``features`` rows) the probe calls ``target`` (with its standard error),
    and every kind's."""
    return {**probe.share(features_rows, target), "called": probe.fractions(features_rows)}


def mean_interval(values: list[float]) -> dict[str, Any]:
    """Mean and the half-width of its 95% t interval over independent runs (seeds)."""
    n = len(values)
    mean = statistics.fmean(values)
    if n < 2:
        return {"mean": mean, "half_width_95": None, "n": n, "values": values}
    t = T95.get(n - 1, 1.96)
    return {"mean": mean, "half_width_95": t * statistics.stdev(values) / math.sqrt(n), "n": n, "values": values}


def mean_se(values: list[float]) -> dict[str, float]:
    """Mean and standard error of per-image values."""
    n = len(values)
    se = statistics.stdev(values) / math.sqrt(n) if n > 1 else float("nan")
    return {"mean": statistics.fmean(values), "se": se}
