"""The contract suite's target: `python -m local_api` (as `make serve` runs it) by
default; the deployed stack that `make e2e` resolved (tests/contract/e2e.py) otherwise.

Tests speak only HTTP through `api` (or `lifecycle_api`), create sessions only through
`new_session`, which ends each of them when the test is over, and read the signing key
only through `signing_key`, which a deployed run has only when E2E_SIGNING_KEY holds it.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Callable, Iterator

import pytest

from devtools import aws_local
from local_api.process import serving
from tests.contract import target as targets
from tests.contract.target import Target

LOCAL_KEY = aws_local.SAMPLE_KEY
# Which token modes the local servers run with: one server each way.
PLAIN = {"TOKEN_REVOCATION": "false", "SINGLE_USE_TOKENS": "false"}
LIFECYCLE = {"TOKEN_REVOCATION": "true", "SINGLE_USE_TOKENS": "true"}


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _local(settings: dict[str, str]) -> Iterator[Target]:
    port = _free_port()
    with serving(port, signing_key=LOCAL_KEY, args=["--quiet"], capture=False, settings=settings):
        yield Target(f"http://127.0.0.1:{port}")


def _deployed_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() == "true"


@pytest.fixture(scope="session")
def api() -> Iterator[Target]:
    """The API under test, with TOKEN_REVOCATION and SINGLE_USE_TOKENS off when local."""
    if targets.DEPLOYED is not None:
        yield targets.DEPLOYED
    else:
        yield from _local(PLAIN)


@pytest.fixture(scope="session")
def lifecycle_api() -> Iterator[Target]:
    """The API with TOKEN_REVOCATION and SINGLE_USE_TOKENS on: a second local server, or
    the deployed stack when E2E_TOKEN_REVOCATION and E2E_SINGLE_USE_TOKENS say it has
    them (its parameters TokenRevocation, SingleUseTokens)."""
    if targets.DEPLOYED is None:
        yield from _local(LIFECYCLE)
        return
    missing = [
        name
        for name in ("E2E_TOKEN_REVOCATION", "E2E_SINGLE_USE_TOKENS")
        if not _deployed_flag(name)
    ]
    if missing:
        unknown = " and ".join(missing)
        pytest.skip(f"the deployed stack's token modes are unknown: set {unknown}=true")
    yield targets.DEPLOYED


@pytest.fixture
def signing_key(api: Target) -> str:
    """The key the API signs with: known locally; deployed, only from E2E_SIGNING_KEY."""
    if api.local:
        return LOCAL_KEY
    key = os.environ.get("E2E_SIGNING_KEY")
    if not key:
        pytest.skip("the deployed signing key is unknown: set E2E_SIGNING_KEY to test it")
    return key


@pytest.fixture
def new_session(request: pytest.FixtureRequest) -> Iterator[Callable[..., str]]:
    """`new_session(target=api)`: a fresh random session id, ended after the test (its
    metadata deleted, its tokens revoked where revocation is on)."""
    created: list[tuple[Target, str]] = []

    def make(target: Target | None = None, *, prefix: str = "e2e-", suffix: str = "") -> str:
        chosen = target or request.getfixturevalue("api")
        session = f"{prefix}{uuid.uuid4().hex}{suffix}"
        created.append((chosen, session))
        return session

    yield make
    for target, session in created:
        reply = target.delete(f"/sessions/{session}")
        assert reply.status in (200, 400), (session, reply.status, reply.body)
