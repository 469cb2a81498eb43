"""What every long-running function reports: one record type for the engine, the trainers and the UIs.

It lives below everything else so that training, the web server and the CLI can all read progress
without importing the Gatys engine.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch


@dataclass
class Progress:
    """One step of a run: the CLI bar, the web preview and ``--json`` read the same record."""

    stage: str
    step: int
    total: int
    losses: dict[str, float]
    elapsed: float
    preview: torch.Tensor | None = None
    scale: int | None = None


Callback = Callable[[Progress], bool | None]
"""Return True from a callback to stop early (the web UI's cancel, the benchmark's target loss)."""
