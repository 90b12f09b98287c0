"""Tokens cross between this project and the real SignalWire SDKs, both ways, same key.

Our manager here is the deployed shape: its key comes from Secrets Manager (moto), and the
SDK holds the same key in code. Both run on the real clock, as the SDK cannot take another.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
import types
from collections import deque

import pytest
import signalwire.core.security.session_manager as sdk_module
import signalwire_agents.core.security.session_manager as agents_module
from signalwire.core.security.session_manager import SessionManager as SdkSessionManager
from signalwire_agents.core.security.session_manager import (
    SessionManager as AgentsSessionManager,
)

from session_manager import SessionManager, tokens

FUNCTION = "lookup_order"
NONCE = "0123456789abcdef"

# signalwire_agents splits the token on every dot, so it cannot read call ids with dots;
# those cases run against the `signalwire` SDK only.
SDKS = [
    pytest.param(SdkSessionManager, id="signalwire"),
    pytest.param(AgentsSessionManager, id="signalwire_agents"),
]


@pytest.fixture
def ours(make_manager) -> SessionManager:
    return make_manager(clock=time.time)


def raw(token: str) -> str:
    return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()


def b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode()


def sign(key: str, message: str) -> str:
    return hmac.new(key.encode(), message.encode(), hashlib.sha256).hexdigest()


@pytest.mark.parametrize("sdk_class", SDKS)
def test_sdk_token_validates_here(ours, signing_key, sdk_class):
    sdk = sdk_class(secret_key=signing_key)
    token = sdk.generate_token(FUNCTION, "call-1")
    assert ours.check_token("call-1", FUNCTION, token) is None


@pytest.mark.parametrize("sdk_class", SDKS)
def test_our_token_validates_in_the_sdk(ours, signing_key, sdk_class):
    sdk = sdk_class(secret_key=signing_key)
    token = ours.generate_token(FUNCTION, "call-1")
    assert sdk.validate_token("call-1", FUNCTION, token) is True
    assert sdk.validate_tool_token(FUNCTION, token, "call-1") is True


@pytest.mark.parametrize("sdk_class", SDKS)
def test_neither_side_accepts_the_other_sides_refusals(ours, signing_key, sdk_class):
    sdk = sdk_class(secret_key=signing_key)
    ours_token = ours.generate_token(FUNCTION, "call-1")
    sdk_token = sdk.generate_token(FUNCTION, "call-1")
    assert not sdk.validate_token("call-2", FUNCTION, ours_token)
    assert not sdk.validate_token("call-1", "other_function", ours_token)
    assert ours.check_token("call-2", FUNCTION, sdk_token) == tokens.Refusal.WRONG_CALL
    assert ours.check_token("call-1", "other_function", sdk_token) == tokens.Refusal.WRONG_FUNCTION


def test_tokens_signed_with_different_keys_do_not_cross(ours):
    sdk = SdkSessionManager(secret_key="x" * 40)
    assert ours.check_token("c", FUNCTION, sdk.generate_token(FUNCTION, "c")) == (
        tokens.Refusal.BAD_SIGNATURE
    )
    assert not sdk.validate_token("c", FUNCTION, ours.generate_token(FUNCTION, "c"))


@pytest.mark.parametrize("call_id", ["root.2", "a.b.c"])
def test_dotted_call_ids_cross_both_ways(ours, signing_key, call_id):
    sdk = SdkSessionManager(secret_key=signing_key)
    assert ours.validate_token(call_id, FUNCTION, sdk.generate_token(FUNCTION, call_id))
    assert sdk.validate_token(call_id, FUNCTION, ours.generate_token(FUNCTION, call_id))


def test_non_ascii_key_is_used_as_utf8_as_the_sdk_does():
    key = "clé-à-accents-" + "é" * 20  # 34 characters, more bytes
    ours = SessionManager(secret_key=key, clock=time.time)
    sdk = SdkSessionManager(secret_key=key)
    assert sdk.validate_token("c", FUNCTION, ours.generate_token(FUNCTION, "c"))
    assert ours.validate_token("c", FUNCTION, sdk.generate_token(FUNCTION, "c"))


@pytest.mark.parametrize("sdk_module_", [sdk_module, agents_module], ids=["signalwire", "agents"])
def test_same_inputs_give_the_same_token_byte_for_byte(
    monkeypatch, signing_key, clock, sdk_module_
):
    # Pin the nonce and the time on both sides: the tokens must then be identical strings.
    pinned_secrets = types.SimpleNamespace(
        token_hex=lambda n: NONCE, token_urlsafe=secrets.token_urlsafe
    )
    monkeypatch.setattr(tokens, "_NONCES", deque([NONCE]))  # ours draws from a pool
    monkeypatch.setattr(sdk_module_, "secrets", pinned_secrets)
    monkeypatch.setattr(sdk_module_, "time", types.SimpleNamespace(time=clock))

    ours = SessionManager(secret_key=signing_key, clock=clock)
    sdk = sdk_module_.SessionManager(secret_key=signing_key)
    assert ours.generate_token(FUNCTION, "call-1") == sdk.generate_token(FUNCTION, "call-1")


def test_colon_resplit_passes_the_sdk_and_is_refused_here(ours, signing_key):
    sdk = SdkSessionManager(secret_key=signing_key)
    token = sdk.generate_token("z", "x:y")  # function "z" for call "x:y"
    call_id, function, expiry, nonce, signature = raw(token).rsplit(".", 4)
    assert (call_id, function) == ("x:y", "z")
    # Signed over "x:y:z:...": the same bytes as call "x", function "y:z".
    resplit = b64(f"x.y:z.{expiry}.{nonce}.{signature}")

    assert sdk.validate_token("x", "y:z", resplit) is True  # the SDK's weakness
    assert ours.validate_token("x", "y:z", resplit) is False
    assert ours.check_token("x", "y:z", resplit) == tokens.Refusal.MALFORMED
    assert ours.check_token("x:y", "z", token) == tokens.Refusal.MALFORMED


@pytest.mark.parametrize(
    "mangle",
    [
        pytest.param(lambda t: t + "\n", id="trailing newline"),
        pytest.param(lambda t: t[:10] + "!" + t[10:], id="stray !"),
        pytest.param(lambda t: t[:10] + "." + t[10:], id="stray ."),
    ],
)
def test_stray_characters_the_sdk_skips_are_refused_here(ours, signing_key, mangle):
    sdk = SdkSessionManager(secret_key=signing_key)
    token = mangle(sdk.generate_token(FUNCTION, "call-1"))
    assert sdk.validate_token("call-1", FUNCTION, token) is True  # urlsafe_b64decode skips it
    assert ours.check_token("call-1", FUNCTION, token) == tokens.Refusal.MALFORMED


@pytest.mark.parametrize(
    "rewrite",
    [
        pytest.param(lambda e: "+" + e, id="+expiry"),
        pytest.param(lambda e: " " + e, id="space"),
        pytest.param(lambda e: f"{e[:5]}_{e[5:]}", id="underscore"),
    ],
)
def test_expiry_spellings_the_sdk_accepts_are_refused_here(ours, signing_key, rewrite):
    # Correctly signed over the odd spelling: the SDK int()s it and accepts.
    expiry = rewrite(str(int(time.time()) + 600))
    message = f"call-1:{FUNCTION}:{expiry}:{NONCE}"
    token = b64(f"call-1.{FUNCTION}.{expiry}.{NONCE}.{sign(signing_key, message)}")
    assert SdkSessionManager(secret_key=signing_key).validate_token("call-1", FUNCTION, token)
    assert ours.check_token("call-1", FUNCTION, token) == tokens.Refusal.MALFORMED


def test_typescript_style_token_validates_here(ours, signing_key):
    expiry = int(time.time()) + 600
    nonce = secrets.token_hex(16)
    message = f"root.2:{FUNCTION}:{expiry}:{nonce}"
    token = b64(f"root.2.{FUNCTION}.{expiry}.{nonce}.{sign(signing_key, message)}").rstrip("=")
    assert ours.check_token("root.2", FUNCTION, token) is None


def test_debug_token_has_the_sdks_shape(ours, signing_key):
    sdk = SdkSessionManager(secret_key=signing_key)
    sdk._debug_mode = ours._debug_mode = True  # both answer only in debug mode
    token = sdk.generate_token(FUNCTION, "c1")
    theirs, mine = sdk.debug_token(token), ours.debug_token(token)
    assert mine.keys() == theirs.keys()
    assert mine["components"].keys() == theirs["components"].keys()
    assert mine["status"].keys() == theirs["status"].keys()
    assert mine["components"]["signature"] == theirs["components"]["signature"]
