"""Requests per second of each route through `make serve` on its embedded moto backend.

The server runs in its own process (`python -m local_api`), as a developer runs it;
the clients are threads of this process, each holding one keep-alive connection. Every
loop is bounded in requests and in time, and talks to 127.0.0.1 only.
"""

from __future__ import annotations

import http.client
import json
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from bench import report
from devtools.aws_local import SAMPLE_KEY
from local_api.process import serving
from session_manager import tokens

CLIENTS = 4
SECONDS = 3.0
MAX_REQUESTS = 20_000  # per route, whichever limit comes first


@dataclass(frozen=True)
class Case:
    name: str
    method: str
    path: Callable[[int, int], str]  # (client, i) -> path
    body: Callable[[int, int], dict | None]
    expect: int


def _cases() -> list[Case]:
    far = int(time.time()) + 3600
    token = tokens.mint(SAMPLE_KEY.encode(), "bench-read", "get_weather", far)
    return [
        Case(
            "GET metadata",
            "GET",
            lambda c, i: "/sessions/bench-read/metadata",
            lambda c, i: None,
            200,
        ),
        Case(
            "PATCH metadata",
            "PATCH",
            lambda c, i: f"/sessions/bench-w{c}-{i % 50}/metadata",
            lambda c, i: {"step": i, "caller": "+15551234567"},
            200,
        ),
        Case(
            "PUT metadata",
            "PUT",
            lambda c, i: f"/sessions/bench-w{c}-{i % 50}/metadata",
            lambda c, i: {"step": i},
            200,
        ),
        Case(
            "DELETE metadata",
            "DELETE",
            lambda c, i: f"/sessions/bench-w{c}-{i % 50}/metadata",
            lambda c, i: None,
            200,
        ),
        Case(
            "POST tokens",
            "POST",
            lambda c, i: "/sessions/bench-read/tokens",
            lambda c, i: {"function_name": "get_weather"},
            201,
        ),
        Case(
            "POST tokens/validate",
            "POST",
            lambda c, i: "/tokens/validate",
            lambda c, i: {"token": token, "call_id": "bench-read", "function_name": "get_weather"},
            200,
        ),
    ]


def _client(
    port: int,
    case: Case,
    client: int,
    stop_at: float,
    budget: list[int],
    lock: threading.Lock,
    latencies: list[float],
) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    i = 0
    try:
        while time.perf_counter() < stop_at:
            with lock:
                if budget[0] <= 0:
                    return
                budget[0] -= 1
            body = case.body(client, i)
            data = json.dumps(body).encode() if body is not None else None
            started = time.perf_counter()
            connection.request(
                case.method,
                case.path(client, i),
                body=data,
                headers={"Content-Type": "application/json"},
            )
            response = connection.getresponse()
            response.read()
            latencies.append(time.perf_counter() - started)
            if response.status != case.expect:
                raise RuntimeError(f"{case.name}: HTTP {response.status}")
            i += 1
    finally:
        connection.close()


def _measure(port: int, case: Case, seconds: float) -> dict[str, float]:
    latencies: list[float] = []
    budget, lock = [MAX_REQUESTS], threading.Lock()
    started = time.perf_counter()
    stop_at = started + seconds
    threads = [
        threading.Thread(target=_client, args=(port, case, c, stop_at, budget, lock, latencies))
        for c in range(CLIENTS)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=seconds + 30)
    elapsed = time.perf_counter() - started
    ordered = sorted(latencies)
    return {
        "requests": len(ordered),
        "rps": len(ordered) / elapsed,
        "p50_ms": statistics.median(ordered) * 1000,
        "p99_ms": ordered[max(0, int(len(ordered) * 0.99) - 1)] * 1000,
    }


def run(
    port: int,
    seconds: float = SECONDS,
    progress: Callable[[str], None] | None = None,
) -> list[dict[str, object]]:
    # A longer start than the tests allow: the benchmarks run beside other loads.
    with serving(port, signing_key=SAMPLE_KEY, args=["--quiet"], capture=False, start_secs=60):
        seed = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        seed.request("PUT", "/sessions/bench-read/metadata", body=b'{"caller": "+15551234567"}')
        seed.getresponse().read()
        seed.close()
        rows = []
        cases = _cases()
        for index, case in enumerate(cases):
            if progress:
                progress(f"HTTP: {case.name} for {seconds:g} s ({index + 1}/{len(cases)})")
            rows.append({"route": case.name, **_measure(port, case, seconds)})
        return rows


def table(rows: list[dict[str, object]]) -> str:
    return report.markdown_table(
        ["route", "requests", "req/s", "p50 ms", "p99 ms"],
        (
            [
                row["route"],
                row["requests"],
                f"{row['rps']:.0f}",
                f"{row['p50_ms']:.1f}",
                f"{row['p99_ms']:.1f}",
            ]
            for row in rows
        ),
    )
