"""`python -m tpf_store.embedded --data-dir DIR [--port N]`: run a server until SIGINT/SIGTERM.

Prints the connection URL on stdout once the server accepts connections, so a script can read it.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from tpf_store.embedded.server import EmbeddedPostgres, EmbeddedPostgresError

_LOG = logging.getLogger("tpf_store.embedded")
# How often to check that postgres is still alive while waiting for a signal.
_LIVENESS_CHECK_S = 1.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tpf_store.embedded", description=__doc__)
    parser.add_argument("--data-dir", type=Path, required=True, help="created if missing")
    parser.add_argument("--port", type=int, default=None, help="default: remembered or free")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--fast", action="store_true", help="fsync=off: for throwaway data only")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)

    stop_requested = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop_requested.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)

    server = EmbeddedPostgres(args.data_dir, port=args.port, host=args.host, fast=args.fast)
    try:
        server.start()
    except EmbeddedPostgresError as error:
        _LOG.error("could not start embedded postgres: %s", error)
        return 1
    print(server.url, flush=True)
    try:
        while not stop_requested.wait(_LIVENESS_CHECK_S):
            if not server.is_running:
                _LOG.error("postgres exited; see %s", server.log_path)
                return 1
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
