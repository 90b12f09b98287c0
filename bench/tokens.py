"""Minting and validating tokens in-process: this package against the SignalWire SDK.

Both sides get the same key and mint and validate for the same call and function, through
their public `SessionManager` methods. The two run in short alternating rounds, so a
shared machine's noise hits both alike;
each figure is the best round in this thread's CPU time (as timeit reports the best: the
slower rounds measure the neighbours), and the ratio is ours / the SDK's, higher is faster.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

from bench import report
from devtools.aws_local import SAMPLE_KEY

CALL_ID = "call-6f1c2a9e-demo"
FUNCTION = "get_weather"


def _rate(fn: Callable[[], object], n: int) -> float:
    # CPU time of this thread, not wall time: on a shared machine, the time this thread
    # waits for a core is the neighbours' work, not ours or the SDK's.
    started = time.thread_time()
    for _ in range(n):
        fn()
    return n / max(time.thread_time() - started, 1e-9)


def _cases() -> list[tuple[str, Callable[[], object], Callable[[], object]]]:
    from itertools import cycle

    from signalwire.core.security.session_manager import SessionManager as SdkManager

    from session_manager import SessionManager

    ours, sdk = SessionManager(secret_key=SAMPLE_KEY), SdkManager(secret_key=SAMPLE_KEY)
    token = ours.generate_token(FUNCTION, CALL_ID)
    # More distinct tokens than any cache here holds: each validation decodes anew.
    fresh = [sdk.generate_token(FUNCTION, CALL_ID) for _ in range(4096)]
    ours_fresh, sdk_fresh = cycle(fresh), cycle(fresh)
    # Signed with another key: both sides do the full work and refuse at the comparison.
    forged = SdkManager(secret_key=SAMPLE_KEY[::-1]).generate_token(FUNCTION, CALL_ID)
    assert sdk.validate_token(CALL_ID, FUNCTION, token), "the SDK refuses our token"
    assert ours.validate_token(CALL_ID, FUNCTION, fresh[0]), "we refuse the SDK's token"
    return [
        (
            "mint",
            lambda: ours.generate_token(FUNCTION, CALL_ID),
            lambda: sdk.generate_token(FUNCTION, CALL_ID),
        ),
        (
            "validate, a token seen before",  # the platform resends a function's token
            lambda: ours.validate_token(CALL_ID, FUNCTION, token),
            lambda: sdk.validate_token(CALL_ID, FUNCTION, token),
        ),
        (
            "validate, a new token each time",
            lambda: ours.validate_token(CALL_ID, FUNCTION, next(ours_fresh)),
            lambda: sdk.validate_token(CALL_ID, FUNCTION, next(sdk_fresh)),
        ),
        (
            "refuse a forged token",
            lambda: ours.validate_token(CALL_ID, FUNCTION, forged),
            lambda: sdk.validate_token(CALL_ID, FUNCTION, forged),
        ),
    ]


def run(
    rounds: int = 30, per_round: int = 2000, progress: Callable[[str], None] | None = None
) -> list[dict[str, object]]:
    rows = []
    cases = _cases()
    for index, (name, ours, sdk) in enumerate(cases):
        ours_rates, sdk_rates, ratios = [], [], []
        _rate(ours, per_round), _rate(sdk, per_round)  # warm up
        for round_ in range(rounds):
            if progress:
                progress(f"tokens: {name} {round_ + 1}/{rounds} ({index + 1}/{len(cases)})")
            a = _rate(ours, per_round)
            b = _rate(sdk, per_round)
            ours_rates.append(a)
            sdk_rates.append(b)
            ratios.append(a / b)
        rows.append(
            {
                "operation": name,
                "ours_ops": max(ours_rates),
                "sdk_ops": max(sdk_rates),
                "ratio": max(ours_rates) / max(sdk_rates),
                "median_round_ratio": statistics.median(ratios),
            }
        )
    return rows


def table(rows: list[dict[str, object]]) -> str:
    return report.markdown_table(
        ["operation", "ours ops/s", "SDK ops/s", "x (ours / SDK)"],
        (
            [
                row["operation"],
                f"{row['ours_ops']:,.0f}",
                f"{row['sdk_ops']:,.0f}",
                f"{row['ratio']:.2f}",
            ]
            for row in rows
        ),
    )
