"""`make bench`: every benchmark, printed as markdown tables; JSON in bench/results/ and
the chart docs/benchmark.png.

`python -m bench --quick` runs each part on a tiny budget (the test suite does, to prove
the benchmark still runs end to end); its figures mean nothing and no chart is written.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import time

for _name in [n for n in os.environ if n.startswith("AWS_ENDPOINT_URL")]:
    del os.environ[_name]  # the benchmarks bring their own loopback backends
os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")

from moto.server import ThreadedMotoServer  # noqa: E402

from bench import aws_calls, cold_start, report, throughput, tokens  # noqa: E402


class Progress:
    """One stderr line, rewritten in place: where a long run is and for how long."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.tty = sys.stderr.isatty()
        self.width = 0

    def __call__(self, message: str) -> None:
        line = f"[{time.monotonic() - self.started:5.0f} s] {message}"
        if self.tty:
            sys.stderr.write("\r" + line.ljust(self.width))
            self.width = len(line)
        else:
            sys.stderr.write(line + "\n")
        sys.stderr.flush()

    def done(self) -> None:
        if self.tty and self.width:
            sys.stderr.write("\r" + " " * self.width + "\r")
            sys.stderr.flush()
        self.width = 0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def main(quick: bool = False) -> dict:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto server's request log
    progress = Progress()
    results: dict = {"started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "quick": quick}

    def section(title: str, text: str) -> None:
        progress.done()
        print(f"\n## {title}\n\n{text}", flush=True)

    results["tokens"] = tokens.run(
        **({"rounds": 2, "per_round": 50} if quick else {}), progress=progress
    )
    section(
        "Tokens in-process, against the SignalWire SDK's SessionManager (same key, "
        "alternating rounds, best round)",
        tokens.table(results["tokens"]),
    )

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        endpoint = f"http://127.0.0.1:{port}"
        results["aws_calls"] = aws_calls.run(endpoint, progress=progress)
        section(
            "AWS calls and DynamoDB capacity per operation (counted through botocore's events)",
            aws_calls.table(results["aws_calls"]) + "\n\n" + aws_calls.assumptions(),
        )
        if not quick:
            results["cold_start"] = cold_start.run(endpoint, progress=progress)
            section(
                "Cold start: fresh interpreters, median of 7, Lambda-like venv",
                cold_start.table(results["cold_start"]),
            )
    finally:
        server.stop()

    seconds = 0.3 if quick else throughput.SECONDS
    results["throughput"] = throughput.run(free_port(), seconds=seconds, progress=progress)
    section(
        f"Throughput of `make serve` (embedded moto): {throughput.CLIENTS} keep-alive "
        f"clients, {seconds:g} s a route",
        throughput.table(results["throughput"]),
    )
    if not quick:
        print(f"\nJSON: {report.save_json(results)}\nchart: {report.chart(results)}")
    return results


if __name__ == "__main__":
    main(quick="--quick" in sys.argv[1:])
