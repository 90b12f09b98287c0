"""The signing key never reaches a log, whatever the log level: botocore logs response
bodies at DEBUG, and GetSecretValue's body is the key."""

from __future__ import annotations

import base64
import io
import logging
from collections.abc import Iterator

import pytest

from session_manager import SessionManager, wire_logs

FUNCTION = "lookup_order"


def forms(key: str) -> list[str]:
    raw = key.encode()
    return [
        key,
        raw.hex(),
        base64.b64encode(raw).decode(),
        base64.urlsafe_b64encode(raw).decode().rstrip("="),
        repr(raw),
    ]


@pytest.fixture
def everything_logged(caplog) -> Iterator[io.StringIO]:
    """Root at DEBUG, as `logging.basicConfig(level=logging.DEBUG)` sets it: every record
    of every logger, in caplog and in a stream handler on root."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setLevel(logging.DEBUG)
    root = logging.getLogger()
    root.addHandler(handler)
    caplog.set_level(logging.DEBUG)  # root, restored after the test
    # A user may also turn botocore's own loggers up: the key must stay out regardless.
    for name in ("botocore", "botocore.parsers", "botocore.endpoint", "urllib3"):
        caplog.set_level(logging.DEBUG, logger=name)
    yield stream
    root.removeHandler(handler)


def all_text(caplog, stream: io.StringIO) -> str:
    records = "\n".join(f"{r.name} {r.getMessage()} {r.exc_text or ''}" for r in caplog.records)
    return records + "\n" + stream.getvalue()


def test_minting_and_validating_never_log_the_key(
    make_manager, secretsmanager, secret, signing_key, everything_logged, caplog
):
    manager = make_manager()
    token = manager.generate_token(FUNCTION, "c1")
    assert manager.validate_token("c1", FUNCTION, token)
    # A forged token: the refresh fetches AWSCURRENT and AWSPREVIOUS again.
    forged = SessionManager(secret_key="f" * 40).generate_token(FUNCTION, "c1")
    assert not manager.validate_token("c1", FUNCTION, forged)
    manager.set_session_metadata("c1", {"step": 1})

    text = all_text(caplog, everything_logged)
    # Wire logging was on: DynamoDB's response body is there (so this test can fail).
    assert "Response body" in text and '"Attributes"' in text
    for form in forms(signing_key):
        assert form not in text


def test_the_same_fetch_outside_the_guard_would_log_the_key(
    secretsmanager, secret, signing_key, everything_logged, caplog
):
    # The control: botocore does log the key unless wire_logs hides it.
    secretsmanager.get_secret_value(SecretId=secret)
    assert signing_key in all_text(caplog, everything_logged)


def test_hidden_covers_loggers_made_after_install(everything_logged, caplog):
    wire_logs.install()
    late = logging.getLogger("botocore.some_module_imported_later")
    with wire_logs.hidden():
        late.debug("would carry a body")
    assert "would carry a body" not in all_text(caplog, everything_logged)
    late.debug("outside the guard")
    assert "outside the guard" in all_text(caplog, everything_logged)
