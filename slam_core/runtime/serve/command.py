"""``slam serve RUN``: serve a trained run (a checkpoint of it, an export) with the OpenAI transcription API."""

from __future__ import annotations

import argparse
from pathlib import Path

from slam_core.errors import SlamError


def serve_command(parser: argparse.ArgumentParser):
    """Add ``slam serve``'s arguments to ``parser``; return the function that runs it."""
    parser.add_argument(
        "folder",
        metavar="RUN",
        help="run folder (its best, else latest, checkpoint), a checkpoint folder or an export folder (slam export)",
    )
    parser.add_argument("--spec", help="the spec to build the model from (default: the run's or export's spec.json)")
    parser.add_argument("--set", action="append", default=[], metavar="PATH=VALUE", help="override a spec field")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--device", help="cpu, cuda, cuda:1, ... (default: cuda when present)")
    parser.add_argument("--max-batch-size", type=int, default=8, help="requests decoded together (default 8)")
    parser.add_argument(
        "--max-wait-ms", type=float, default=20.0, help="how long a request waits for others to batch with (default 20)"
    )
    parser.add_argument("--max-pending", type=int, default=64, help="requests queued before 503 (default 64)")
    parser.add_argument("--max-upload-mb", type=float, default=25.0, help="largest upload accepted (default 25)")
    return run


def run(args: argparse.Namespace) -> int:
    try:
        import uvicorn
    except ImportError:
        raise SlamError("slam serve needs the serve extra: pip install 'slam-core[serve]'") from None
    from slam_core.runtime.infer.weights import spec_of
    from slam_core.runtime.serve.app import ServeSettings, create_app
    from slam_core.runtime.serve.transcriber import Transcriber

    path = Path(args.folder)
    if not path.exists():
        raise SlamError(f"{path}: no such run, checkpoint or export folder")
    spec = _spec_file(args) if args.spec else spec_of(path, args.set)
    transcriber = Transcriber.load(path, spec=spec, device=args.device)
    settings = ServeSettings(
        model_name=spec.name or path.resolve().name,
        max_batch_size=args.max_batch_size,
        max_wait_ms=args.max_wait_ms,
        max_pending=args.max_pending,
        max_upload_bytes=int(args.max_upload_mb * 2**20),
    )
    weights = transcriber.checkpoint or "the spec's own weights (no checkpoint found)"
    print(
        f"slam serve: {settings.model_name} ({weights}) on http://{args.host}:{args.port} "
        "- POST /v1/audio/transcriptions",
        flush=True,
    )
    uvicorn.run(create_app(transcriber, settings), host=args.host, port=args.port, log_level="warning")
    return 0


def _spec_file(args: argparse.Namespace):
    """``--spec`` with ``--set`` applied; its relative paths start from its folder (docs/spec.md, Paths)."""
    from slam_core.spec import load_spec

    return load_spec(args.spec, overrides=args.set)
