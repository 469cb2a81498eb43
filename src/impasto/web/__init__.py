"""Local web UI: ``impasto serve`` (FastAPI app in :mod:`impasto.web.app`, jobs in :mod:`impasto.web.jobs`)."""
