"""Command line: serve a dataset with the emulator until the process is killed.

python -m servicenow.emulator --port 8001 --dataset PATH [--host 127.0.0.1]
    [--faults JSON-or-@file] [--token-ttl SECONDS] [--tls CERT KEY]
    [--latency-ms MS [--jitter-ms MS]]
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from .faults import Faults
from .server import Emulator


def _load_faults(value: str | None) -> Faults:
    if not value:
        return Faults()
    text = Path(value[1:]).read_text(encoding="utf-8") if value.startswith("@") else value
    data: Any = json.loads(text)
    if not isinstance(data, dict):
        raise ValueError("--faults must be a JSON object")
    return Faults.from_dict(data)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m servicenow.emulator", description="Serve a ServiceNow Table API emulator."
    )
    parser.add_argument("--dataset", required=True, help="dataset JSON (see generate.py)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001, help="0 picks a free port")
    parser.add_argument("--faults", help="faults as a JSON object, or @path to a JSON file")
    parser.add_argument("--token-ttl", type=float, default=1800, help="OAuth token lifetime (s)")
    parser.add_argument(
        "--tls",
        nargs=2,
        metavar=("CERT", "KEY"),
        help="serve https with this certificate chain and private key (PEM files)",
    )
    parser.add_argument(
        "--latency-ms",
        type=float,
        default=0.0,
        help="every API/OAuth request waits this long before its answer (a far-away instance)",
    )
    parser.add_argument(
        "--jitter-ms",
        type=float,
        default=0.0,
        help="plus a uniform random 0..this many ms per request",
    )
    args = parser.parse_args(argv)
    if args.latency_ms < 0 or args.jitter_ms < 0:
        parser.error("--latency-ms and --jitter-ms must be >= 0")

    try:
        faults = _load_faults(args.faults)
    except (OSError, ValueError) as exc:
        parser.error(f"--faults: {exc}")
    with open(args.dataset, encoding="utf-8") as handle:
        dataset = json.load(handle)

    emulator = Emulator(
        dataset,
        host=args.host,
        port=args.port,
        faults=faults,
        token_ttl=args.token_ttl,
        tls=tuple(args.tls) if args.tls else None,
        latency_ms=args.latency_ms,
        latency_jitter_ms=args.jitter_ms,
    )
    # The store keeps its own compact copy of every row; let the parsed JSON go.
    del dataset
    emulator.start()
    stopping = threading.Event()

    def request_stop(signum: int, frame: object) -> None:
        stopping.set()

    # SIGTERM (what process managers send) must shut down as cleanly as Ctrl-C.
    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    print(f"emulator listening on {emulator.url}", flush=True)
    try:
        while not stopping.wait(1.0):
            pass
    finally:
        emulator.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
