"""`make bench`: every benchmark, printed as markdown tables."""

from __future__ import annotations

import logging
import os
import socket

for _name in [n for n in os.environ if n.startswith("AWS_ENDPOINT_URL")]:
    del os.environ[_name]  # the benchmarks bring their own loopback backends
os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")

from moto.server import ThreadedMotoServer  # noqa: E402

from bench import cold_start, throughput  # noqa: E402


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def main() -> None:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto server's request log
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        print("## Cold start: fresh interpreters, median of 7, Lambda-like venv\n")
        print(cold_start.table(cold_start.run(f"http://127.0.0.1:{port}")), flush=True)
    finally:
        server.stop()
    print(
        f"\n## Throughput of `make serve` (embedded moto): {throughput.CLIENTS} keep-alive "
        f"clients, {throughput.SECONDS:.0f} s a route\n"
    )
    print(throughput.table(throughput.run(free_port())))


if __name__ == "__main__":
    main()
