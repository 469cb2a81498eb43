"""``impasto serve``: the local web UI (FastAPI + uvicorn; needs the 'web' extra)."""

from __future__ import annotations

import argparse

from impasto.cli.common import positive_int
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
    p.add_argument("--ttl", type=positive_int, default=3600, help="seconds a finished result is kept (3600)")
    p.set_defaults(func=run_serve)


def run_serve(args: argparse.Namespace) -> int:
    try:
        import uvicorn

        from impasto.web.app import Limits, create_app
    except ImportError as exc:
        raise InputError(f"the web UI needs its extra: pip install 'impasto[web]' ({exc.name} is missing)") from exc
    if not 0 < args.port < 65536:
        raise InputError(f"--port must be between 1 and 65535, got {args.port}")
    limits = Limits(max_upload_bytes=args.max_upload_mb * 2**20, max_pixels=args.max_megapixels * 1_000_000,
                    max_size=args.max_size)
    app = create_app(workers=args.workers, limits=limits, ttl=args.ttl, max_queued=args.max_queued)
    print(f"impasto web UI on http://{args.host}:{args.port}/ (Ctrl+C to stop)", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0
