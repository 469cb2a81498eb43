"""Where impasto keeps the user's own state (feedback database, the web server's finished results).

One home for the rule so every store agrees: ``$IMPASTO_HOME`` if set, else ``$XDG_DATA_HOME/impasto``,
else ``~/.local/share/impasto``. Nothing here is ever sent anywhere: it is the user's machine.
"""

from __future__ import annotations

import os
from pathlib import Path


def data_home() -> Path:
    """The data directory (not created here: a reader must not leave folders behind)."""
    explicit = os.environ.get("IMPASTO_HOME")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_DATA_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".local" / "share"
    return base / "impasto"
