"""`make serve`: the API of template.yaml on http://127.0.0.1:$PORT, no Docker, no AWS.

    python -m local_api [--port N] [--quiet] [--metrics]

Prints the URL, the routes and a curl example, then one line per request. Ctrl-C or
SIGTERM stops it: the requests in flight finish, then it exits 0.

What reaches the console: one access line per request (method, path, status, function,
duration) on stderr, and the handlers' own JSON log lines, unchanged, on stdout. Those
are kept because the layer logs only what a developer wants to see (AWS unreachable, an
unexpected error, a key that could not be fetched), not one line per request. The
handlers' EMF metrics document, one per request, is switched off
(POWERTOOLS_METRICS_DISABLED, read by the layer's telemetry at each flush) unless
--metrics asks for it: it is meant for CloudWatch, and one per request buries the rest.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shlex
import signal
import sys
import time
from collections.abc import Sequence

from local_api.backend import BackendError
from local_api.gateway import Binding
from local_api.server import DEFAULT_PORT, OPENAPI_PATH, LocalApi

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
_SYNCHRONOUS_SIGNALS = hasattr(signal, "pthread_sigmask") and hasattr(signal, "sigwait")


def _arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m local_api",
        description="Serve template.yaml's HTTP API locally on 127.0.0.1, with the real "
        "handlers and an embedded moto (or the AWS_ENDPOINT_URL* endpoints).",
    )
    parser.add_argument(
        "--port",
        type=int,
        default=None,
        help=f"port on 127.0.0.1 (default: $PORT, else {DEFAULT_PORT}; 0 picks a free one)",
    )
    parser.add_argument("--quiet", action="store_true", help="no access line per request")
    parser.add_argument(
        "--metrics", action="store_true", help="let the handlers print their EMF metrics"
    )
    args = parser.parse_args(argv)
    if args.port is None:
        raw = os.environ.get("PORT") or str(DEFAULT_PORT)
        if not raw.isdigit():
            parser.error(f"PORT must be a number, not {raw!r}")
        args.port = int(raw)
    if not 0 <= args.port <= 65535:
        parser.error(f"the port must be between 0 and 65535, not {args.port}")
    return args


def banner(api: LocalApi) -> str:
    """What is served where, and a first request to try: all of it read from the API."""
    assert api.backend is not None
    lines = [f"Local API on {api.url}  (Ctrl-C to stop)", ""]
    lines += [f"  {line}" for line in api.backend.describe()]
    if api.overrides:
        shell = ", ".join(f"{name}={value}" for name, value in sorted(api.overrides.items()))
        lines.append(f"  from your shell: {shell}")
    lines += ["", "Routes (template.yaml):"]
    methods = max(len(b.route.method) for b in api.bindings)
    paths = max(len(b.route.path) for b in api.bindings)
    for binding in api.bindings:
        route = f"{binding.route.method:<{methods}}  {binding.route.path:<{paths}}"
        lines.append(f"  {route}  -> {binding.function.logical_id}")
    lines += ["", f"OpenAPI document: {api.url}{OPENAPI_PATH}"]
    lines += ["", "Try:", f"  {curl_example(api)}", ""]
    return "\n".join(lines)


def curl_example(api: LocalApi) -> str:
    """A merge if the API has one (PATCH), else its first GET, else its first route;
    every {param} filled with "demo"."""
    by_method: dict[str, Binding] = {}
    for binding in api.bindings:
        by_method.setdefault(binding.route.method, binding)
    binding = by_method.get("PATCH") or by_method.get("GET") or api.bindings[0]
    path = binding.route.path
    for name in binding.parameters:
        path = path.replace("{" + name + "}", "demo").replace("{" + name + "+}", "demo")
    words = ["curl", "-s"]
    if binding.route.method not in ("GET", "ANY"):
        words += ["-X", binding.route.method]
    words.append(api.url + path)
    if binding.route.method in ("PATCH", "PUT", "POST"):
        body = json.dumps({"greeting": "hello"}) if binding.route.method == "PATCH" else "{}"
        words += ["-H", "content-type: application/json", "-d", body]
    return shlex.join(words)


def configure_logging(quiet: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
    # The server's access lines, and aws_local's warnings (an endpoint without TTL).
    for name in ("local_api", "devtools"):
        server_log = logging.getLogger(name)
        server_log.addHandler(handler)
        server_log.setLevel(logging.WARNING if quiet else logging.INFO)
        server_log.propagate = False


def block_stop_signals() -> None:
    """Block SIGINT and SIGTERM for wait_for_stop to take. Call it before any thread
    exists, so that every thread inherits the mask."""
    if _SYNCHRONOUS_SIGNALS:
        signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)


def cannot_listen(port: int, error: OSError) -> str:
    return f"error: cannot listen on 127.0.0.1:{port}: {error.strerror or error}"


def start_api(api: LocalApi) -> bool:
    """Start `api`; False, after one line on stderr saying why, when it cannot."""
    try:
        api.start()
    except BackendError as error:
        print(f"error: {error}", file=sys.stderr)
        return False
    except OSError as error:
        print(cannot_listen(api.port, error), file=sys.stderr)
        return False
    return True


def wait_for_stop() -> signal.Signals:
    """Block until SIGINT or SIGTERM. On POSIX the signals are blocked in every thread (set
    before any is started) and taken here synchronously: no handler runs at a random point,
    so Ctrl-C never becomes a KeyboardInterrupt traceback, during start-up either."""
    if _SYNCHRONOUS_SIGNALS:
        return signal.Signals(signal.sigwait(STOP_SIGNALS))
    try:  # Windows: Ctrl-C arrives as KeyboardInterrupt in the main thread
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        return signal.SIGINT


def main(argv: Sequence[str] | None = None) -> int:
    args = _arguments(argv)
    configure_logging(args.quiet)
    block_stop_signals()
    signing_key = os.environ.get("SIGNING_SECRET") or None
    api = LocalApi(args.port, signing_key=signing_key, metrics=args.metrics)
    if not start_api(api):
        return 1
    print(banner(api), flush=True)
    try:
        received = wait_for_stop()
        print(f"\n{received.name}: stopping...", file=sys.stderr, flush=True)
    finally:
        api.close()
    print("stopped", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
