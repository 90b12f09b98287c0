"""Concurrent merges over real HTTP against the local API in this process (conftest.py's
`local_api`), where the test can make threads switch often enough for a lost write inside
the embedded moto to show. The HTTP contract itself is tests/contract, which runs against
`python -m local_api` and, with `make e2e`, against a deployed stack.
"""

from __future__ import annotations

import sys
import threading
import uuid

import pytest
from local_http import TIMEOUT_SECS

pytestmark = pytest.mark.slow


def new_session() -> str:
    return f"call-{uuid.uuid4().hex[:12]}"


def metadata_path(session_id: str) -> str:
    return f"/sessions/{session_id}/metadata"


# -- concurrency ---------------------------------------------------------------------------


def test_eight_concurrent_merges_into_one_new_session_keep_every_key(client):
    """8 threads released together by a barrier, each merging its own key into the same
    session, which none of them has created yet: no write may be lost. Three rounds, each
    on a fresh session, as a lost write depends on how the threads happen to interleave."""
    workers = 8
    # Switch threads every few microseconds instead of every 5 ms, so the requests really
    # interleave inside the backend: a lost write shows up here, not once in many runs.
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    try:
        for _ in range(3):
            session = new_session()
            statuses = merge_concurrently(client, session, workers)
            assert statuses == dict.fromkeys(range(workers), 200)
            metadata = client.get(metadata_path(session)).json["metadata"]
            assert metadata == {f"key{i}": i for i in range(workers)}
    finally:
        sys.setswitchinterval(interval)


def merge_concurrently(client, session: str, workers: int) -> dict[int, int]:
    """Each worker PATCHes {"key<i>": i} into `session` once; returns the statuses."""
    barrier = threading.Barrier(workers, timeout=TIMEOUT_SECS)
    statuses: dict[int, int] = {}
    errors: list[BaseException] = []

    def merge(index: int) -> None:
        try:
            barrier.wait()
            statuses[index] = client.patch(metadata_path(session), {f"key{index}": index}).status
        except BaseException as error:  # reported by the assertions below
            errors.append(error)

    threads = [threading.Thread(target=merge, args=(i,), daemon=True) for i in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=TIMEOUT_SECS * 3)
    assert not any(thread.is_alive() for thread in threads), "a merge did not finish"
    assert not errors, errors
    return statuses
