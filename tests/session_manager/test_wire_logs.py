"""The signing key never reaches a log, whatever the log level: botocore logs response
bodies at DEBUG, and GetSecretValue's body is the key."""

from __future__ import annotations

import logging

from session_manager import SessionManager, wire_logs

FUNCTION = "lookup_order"


def test_minting_and_validating_never_log_the_key(
    make_manager, secretsmanager, secret, signing_key, everything_logged
):
    manager = make_manager()
    token = manager.generate_token(FUNCTION, "c1")
    assert manager.validate_token("c1", FUNCTION, token)
    # A forged token: the refresh fetches AWSCURRENT and AWSPREVIOUS again.
    forged = SessionManager(secret_key="f" * 40).generate_token(FUNCTION, "c1")
    assert not manager.validate_token("c1", FUNCTION, forged)
    manager.set_session_metadata("c1", {"step": 1})

    text = everything_logged.text()
    # Wire logging was on: DynamoDB's response body is there (so this test can fail).
    assert "Response body" in text and '"Attributes"' in text
    assert everything_logged.leaked(signing_key, text) == []


def test_the_same_fetch_outside_the_guard_would_log_the_key(
    secretsmanager, secret, signing_key, everything_logged
):
    # The control: botocore does log the key unless wire_logs hides it.
    secretsmanager.get_secret_value(SecretId=secret)
    assert signing_key in everything_logged.text()


def test_hidden_covers_loggers_made_after_install(everything_logged):
    wire_logs.install()
    late = logging.getLogger("botocore.some_module_imported_later")
    with wire_logs.hidden():
        late.debug("would carry a body")
    assert "would carry a body" not in everything_logged.text()
    late.debug("outside the guard")
    assert "outside the guard" in everything_logged.text()
