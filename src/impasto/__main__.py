"""``python -m impasto`` runs the CLI."""

import sys

from impasto.cli import main

sys.exit(main())
