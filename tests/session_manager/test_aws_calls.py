"""How many DynamoDB and Secrets Manager calls each operation makes, cold and warm.

Cold: the first call on a new SessionManager (new clients, empty key cache). Warm: the
same operation again on that manager. The expected counts below are the record: if one
changes, the change is deliberate or a regression. Operation names are per API call
(before botocore's retries), DynamoDB and Secrets Manager counted together.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest

from session_manager import SessionManager

FUNCTION = "lookup_order"
TTL = 3600
ROTATED_KEY = "rotated-signing-key-0123456789abcdefgh"
MANY_KEYS = {f"k{i}": i for i in range(300)}  # too many for one UpdateExpression

Calls = list[Counter[str]]


@dataclass
class World:
    """What a case's setup may use: a manager of its own to seed data, the clock, the
    secret, and somewhere to keep tokens for the run."""

    seed: SessionManager
    clock: Any
    secretsmanager: Any
    secret: str
    signing_key: str
    tokens: list[str] = field(default_factory=list)

    def sessions(self, *session_ids: str) -> None:
        for session_id in session_ids:
            self.seed.set_session_metadata(session_id, {"a": 1})

    def old_key_tokens(self) -> None:
        """Two tokens signed with the seeded key, which a rotation makes AWSPREVIOUS."""
        signer = SessionManager(secret_key=self.signing_key, clock=self.clock)
        self.tokens = [signer.generate_token(FUNCTION, f"c{i}") for i in range(2)]


@dataclass
class Case:
    run: Callable[[SessionManager, World, int], Any]  # i = 0 cold, 1 warm
    cold: dict[str, int]
    warm: dict[str, int]
    setup: Callable[[World], None] = lambda world: None
    result: Any = ...  # what run returns, when it matters; ... to skip


def expire_sessions(*session_ids: str) -> Callable[[World], None]:
    def setup(world: World) -> None:
        world.sessions(*session_ids)
        world.clock.advance(TTL)  # past expires_at; the items stay in the table

    return setup


def rotate_after_old_key_tokens(world: World) -> None:
    world.old_key_tokens()
    world.secretsmanager.put_secret_value(SecretId=world.secret, SecretString=ROTATED_KEY)


def forged_tokens(world: World) -> None:
    forger = SessionManager(secret_key="f" * 40, clock=world.clock)
    world.tokens = [forger.generate_token(FUNCTION, f"c{i}") for i in range(2)]


def expired_tokens(world: World) -> None:
    world.old_key_tokens()
    world.clock.advance(10_000)


def debug_token(manager: SessionManager, token: str) -> dict[str, Any]:
    manager._debug_mode = True  # as in the SDK, debug_token decodes only in debug mode
    return manager.debug_token(token)


def validate(manager: SessionManager, world: World, i: int) -> bool:
    return manager.validate_token(f"c{i}", FUNCTION, world.tokens[i])


CASES = {
    # -- metadata: DynamoDB only, the same warm as cold --
    "get, live session": Case(
        setup=lambda w: w.sessions("s0", "s1"),
        run=lambda m, w, i: m.get_session_metadata(f"s{i}"),
        cold={"GetItem": 1},
        warm={"GetItem": 1},
        result={"a": 1},
    ),
    "get, unknown session": Case(
        run=lambda m, w, i: m.get_session_metadata(f"unknown{i}"),
        cold={"GetItem": 1},
        warm={"GetItem": 1},
        result={},
    ),
    "get, expired but present": Case(
        setup=expire_sessions("s0", "s1"),
        run=lambda m, w, i: m.get_session_metadata(f"s{i}"),
        cold={"GetItem": 1},
        warm={"GetItem": 1},
        result={},
    ),
    "merge, new session": Case(
        run=lambda m, w, i: m.set_session_metadata(f"new{i}", {"b": 2}),
        cold={"UpdateItem": 1},
        warm={"UpdateItem": 1},
        result={"b": 2},
    ),
    "merge, live session": Case(
        setup=lambda w: w.sessions("s0", "s1"),
        run=lambda m, w, i: m.set_session_metadata(f"s{i}", {"b": 2}),
        cold={"UpdateItem": 1},
        warm={"UpdateItem": 1},
        result={"a": 1, "b": 2},
    ),
    "merge, SDK form (key, value)": Case(
        run=lambda m, w, i: m.set_session_metadata(f"s{i}", "b", 2),
        cold={"UpdateItem": 1},
        warm={"UpdateItem": 1},
        result=True,
    ),
    "merge, expired but present": Case(
        setup=expire_sessions("s0", "s1"),
        run=lambda m, w, i: m.set_session_metadata(f"s{i}", {"b": 2}),
        # UpdateItem refused (the item is there but expired), then PutItem starts afresh.
        cold={"UpdateItem": 1, "PutItem": 1},
        warm={"UpdateItem": 1, "PutItem": 1},
        result={"b": 2},
    ),
    "merge, 300 keys (read-modify-write)": Case(
        run=lambda m, w, i: m.set_session_metadata(f"big{i}", MANY_KEYS),
        cold={"GetItem": 1, "PutItem": 1},
        warm={"GetItem": 1, "PutItem": 1},
        result=MANY_KEYS,
    ),
    "replace": Case(
        setup=lambda w: w.sessions("s0", "s1"),
        run=lambda m, w, i: m.replace_session_metadata(f"s{i}", {"c": 3}),
        cold={"PutItem": 1},
        warm={"PutItem": 1},
        result={"c": 3},
    ),
    "delete, live session": Case(
        setup=lambda w: w.sessions("s0", "s1"),
        run=lambda m, w, i: m.delete_session_metadata(f"s{i}"),
        cold={"DeleteItem": 1},
        warm={"DeleteItem": 1},
        result=True,
    ),
    "delete, expired but present": Case(
        setup=expire_sessions("s0", "s1"),
        run=lambda m, w, i: m.delete_session_metadata(f"s{i}"),
        cold={"DeleteItem": 1},
        warm={"DeleteItem": 1},
        result=False,
    ),
    "delete, unknown session": Case(
        run=lambda m, w, i: m.delete_session_metadata(f"unknown{i}"),
        cold={"DeleteItem": 1},
        warm={"DeleteItem": 1},
        result=False,
    ),
    # -- tokens: Secrets Manager only, nothing while the key is cached --
    "generate_token": Case(
        run=lambda m, w, i: m.generate_token(FUNCTION, f"c{i}"),
        cold={"GetSecretValue": 1},
        warm={},
    ),
    "validate_token, signed with AWSCURRENT": Case(
        setup=World.old_key_tokens,  # no rotation: the seeded key is still AWSCURRENT
        run=validate,
        cold={"GetSecretValue": 1},
        warm={},
        result=True,
    ),
    "validate_token, signed with AWSPREVIOUS": Case(
        setup=rotate_after_old_key_tokens,
        run=validate,
        # AWSCURRENT misses, so refresh: AWSCURRENT again (it may have rotated since the
        # cache was filled) and AWSPREVIOUS. Warm, both keys are cached.
        cold={"GetSecretValue": 3},
        warm={},
        result=True,
    ),
    "validate_token, forged": Case(
        setup=forged_tokens,
        run=validate,
        # The same three on the first miss; later misses wait out the refresh interval.
        cold={"GetSecretValue": 3},
        warm={},
        result=False,
    ),
    "validate_token, expired": Case(
        setup=expired_tokens,
        run=validate,
        cold={},  # claims are checked before any key is fetched
        warm={},
        result=False,
    ),
    "validate_token, wrong call": Case(
        setup=World.old_key_tokens,
        run=lambda m, w, i: m.validate_token("another-call", FUNCTION, w.tokens[i]),
        cold={},
        warm={},
        result=False,
    ),
    "debug_token": Case(
        setup=World.old_key_tokens,
        run=lambda m, w, i: debug_token(m, w.tokens[i])["components"]["call_id"],
        cold={},
        warm={},
    ),
    "create_session": Case(run=lambda m, w, i: m.create_session(), cold={}, warm={}),
}


@pytest.fixture
def world(make_manager, clock, secretsmanager, secret, signing_key) -> World:
    return World(make_manager(), clock, secretsmanager, secret, signing_key)


@pytest.fixture
def counted_manager(make_manager, calls_of) -> Callable[[], tuple[SessionManager, Calls]]:
    """A new (cold) manager with clients of its own, and the counters of their calls."""

    def make() -> tuple[SessionManager, Calls]:
        dynamodb, secrets = boto3.client("dynamodb"), boto3.client("secretsmanager")
        calls = [calls_of(dynamodb), calls_of(secrets)]
        return make_manager(dynamodb_client=dynamodb, secrets_client=secrets), calls

    return make


def calls_made(calls: Calls, run: Callable[[], Any]) -> tuple[Any, dict[str, int]]:
    """What run() returns, and the calls it made (both services, by operation name)."""
    before = sum(calls, Counter())
    result = run()
    return result, dict(sum(calls, Counter()) - before)


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_calls_per_operation_cold_and_warm(world, counted_manager, case):
    case.setup(world)
    manager, calls = counted_manager()

    for i, expected in enumerate((case.cold, case.warm)):
        result, made = calls_made(calls, lambda i=i: case.run(manager, world, i))
        assert made == expected, ("cold", "warm")[i]
        if case.result is not ...:
            assert result == case.result


def test_cleanup_is_one_scan_page_and_one_delete_per_stale_session(world, counted_manager):
    world.sessions("stale-1", "stale-2", "stale-3")
    world.clock.advance(TTL)
    world.sessions("live")
    manager, calls = counted_manager()

    assert calls_made(calls, manager.cleanup) == (3, {"Scan": 1, "DeleteItem": 3})
    assert calls_made(calls, manager.cleanup) == (0, {"Scan": 1})


def test_validating_a_previous_key_token_after_a_warm_start_costs_two(world, counted_manager):
    # The instance already holds AWSCURRENT when the first old-key token arrives: the
    # refresh reads AWSCURRENT again and AWSPREVIOUS once.
    rotate_after_old_key_tokens(world)
    manager, calls = counted_manager()
    manager.generate_token(FUNCTION, "warm-up")

    _, made = calls_made(calls, lambda: validate(manager, world, 0))
    assert made == {"GetSecretValue": 2}
