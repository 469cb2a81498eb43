"""``impasto serve``: the local web UI (FastAPI + uvicorn; needs the 'web' extra)."""

from __future__ import annotations

import argparse
import sys

from impasto.cli.common import non_empty, positive_int
from impasto.cli.feedback import add_store_flags
from impasto.errors import InputError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="local web UI: upload a photo, pick a painting, watch it paint")
    p.add_argument("--host", default="127.0.0.1", help="interface (127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--workers", type=positive_int, default=1, help="jobs running at once (1)")
    p.add_argument("--max-queued", type=positive_int, default=16, help="jobs waiting at most (16)")
    p.add_argument("--max-upload-mb", type=positive_int, default=20)
    p.add_argument("--max-megapixels", type=positive_int, default=24)
    p.add_argument("--max-size", type=positive_int, default=1024, help="longest output side (1024)")
    p.add_argument("--ttl", type=positive_int, default=24 * 3600,
                   help="seconds a finished result is kept, across restarts (86400)")
    p.add_argument("--max-finished", type=positive_int, default=200, help="finished results kept at most (200)")
    p.add_argument("--results-dir", type=non_empty,
                   help="where finished results are kept (default: web-results in the data directory, $IMPASTO_HOME "
                        "or ~/.local/share/impasto)")
    add_store_flags(p, profile_help="feedback profile of the page's runs, ratings and A/B answers when the page "
                    "names none (default: default); IMPASTO_NO_RECORD=1 turns recording off")
    p.add_argument("--allow-host", action="append", default=[], metavar="NAME",
                   help="also serve requests addressed to this Host name (loopback names and IP addresses "
                   "always are; other names are refused against DNS rebinding)")
    p.set_defaults(func=run_serve)


def run_serve(args: argparse.Namespace) -> int:
    try:
        import uvicorn

        from impasto.web.app import Limits, create_app
    except ImportError as exc:
        raise InputError(f"the web UI needs its extra: pip install 'impasto[web]' ({exc.name} is missing)") from exc
    if not 0 < args.port < 65536:
        raise InputError(f"--port must be between 1 and 65535, got {args.port}")
    from impasto.web.guard import Access
    from impasto.web.jobs import Capacity

    limits = Limits(max_upload_bytes=args.max_upload_mb * 2**20, max_pixels=args.max_megapixels * 1_000_000,
                    max_size=args.max_size)
    capacity = Capacity(workers=args.workers, max_queued=args.max_queued, max_finished=args.max_finished,
                        ttl=args.ttl)
    access = Access.for_bind(args.host, allowed_hosts=tuple(args.allow_host))
    app = create_app(limits=limits, capacity=capacity, access=access, results_dir=args.results_dir, db_path=args.db,
                     profile=args.profile)
    shown = f"[{args.host}]" if ":" in args.host else args.host
    if access.token is None:
        print(f"impasto web UI on http://{shown}:{args.port}/ (Ctrl+C to stop)", flush=True)
    else:
        print(f"warning: bound to {args.host}, so other machines can reach this server; every request needs "
              "the token below", file=sys.stderr, flush=True)
        print(f"impasto web UI on http://{shown}:{args.port}/?token={access.token} (Ctrl+C to stop)", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0
