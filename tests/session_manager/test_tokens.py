"""Tool tokens: the SDK's wire format, and validation at least as strict as the SDK's.

Tokens here are built by hand with hmac where a test needs a field the manager would never
mint, each signed correctly over its own fields: a refusal then proves the field's shape
was checked, not merely that the signature failed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re

import pytest

from session_manager import ConfigurationError, InvalidInputError, SessionManager, tokens

KEY = "token-tests-key-0123456789abcdefghij"  # 36 characters
OTHER_KEY = "another-key-entirely-0123456789abcdef"
NONCE = "0123456789abcdef"  # the Python SDK's shape: 16 lowercase hex
TS_NONCE = "0123456789abcdef0123456789abcdef"  # the TypeScript SDK's: 32 hex
ARABIC_INDIC_DIGITS = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")
CALL = "call-1"
FUNCTION = "lookup_order"


def sign(key: str, call_id: str, function: str, expiry: str, nonce: str) -> str:
    message = f"{call_id}:{function}:{expiry}:{nonce}"
    return hmac.new(key.encode(), message.encode(), hashlib.sha256).hexdigest()


def encode(raw: str | bytes, padded: bool = True) -> str:
    data = raw.encode() if isinstance(raw, str) else raw
    token = base64.urlsafe_b64encode(data).decode()
    return token if padded else token.rstrip("=")


def decode(token: str) -> str:
    return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()


def build(
    call_id: str = CALL,
    function: str = FUNCTION,
    expiry: str | int = 9_999_999_999,  # year 2286: valid unless a test says otherwise
    nonce: str = NONCE,
    key: str = KEY,
    signature: str | None = None,
    padded: bool = True,
) -> str:
    """A token in the SDK's format with any field as given, signed over those fields."""
    expiry = str(expiry)
    if signature is None:
        signature = sign(key, call_id, function, expiry, nonce)
    return encode(f"{call_id}.{function}.{expiry}.{nonce}.{signature}", padded)


def minted_fields(sm: SessionManager) -> list[str]:
    """call id, function, expiry, nonce, signature of a token sm mints for CALL/FUNCTION."""
    return decode(sm.generate_token(FUNCTION, CALL)).split(".")


@pytest.fixture
def sm(clock) -> SessionManager:
    # A key in code: token logic needs no AWS (keys from Secrets Manager: test_keys.py).
    return SessionManager(secret_key=KEY, clock=clock)


@pytest.fixture
def future(clock) -> int:
    return int(clock()) + 600


# -- minting -------------------------------------------------------------------------------


def test_token_is_the_sdk_wire_format(sm, clock):
    token = sm.generate_token(FUNCTION, CALL)

    # Padded urlsafe base64, as Python's urlsafe_b64encode writes it.
    assert re.fullmatch(r"[A-Za-z0-9_-]+={0,2}", token)
    assert len(token) % 4 == 0
    call_id, function, expiry, nonce, signature = decode(token).split(".")
    assert (call_id, function) == (CALL, FUNCTION)
    assert expiry == str(int(clock()) + sm.token_expiry_secs)
    assert re.fullmatch(r"[0-9a-f]{16}", nonce)
    assert signature == sign(KEY, call_id, function, expiry, nonce)


def test_each_token_has_a_fresh_nonce(sm):
    assert sm.generate_token(FUNCTION, CALL) != sm.generate_token(FUNCTION, CALL)


def test_issue_token_reports_the_expiry_it_signed(sm, clock):
    token, expires_at = sm.issue_token(FUNCTION, CALL)
    assert expires_at == int(clock()) + 900
    assert decode(token).split(".")[2] == str(expires_at)


def test_token_expiry_follows_token_expiry_secs(clock):
    sm = SessionManager(token_expiry_secs=60, secret_key=KEY, clock=clock)
    assert sm.issue_token(FUNCTION, CALL)[1] == int(clock()) + 60


@pytest.mark.parametrize(
    # "é" and "\u017f" are Python identifiers: the check is for ASCII ones.
    "function_name",
    ["", "1st", "a:b", "a.b", "a-b", "a b", "x" * 65, None, 7, "é", "\u017f"],
)
def test_minting_refuses_a_bad_function_name(sm, function_name):
    with pytest.raises(InvalidInputError):
        sm.generate_token(function_name, CALL)


@pytest.mark.parametrize("call_id", ["", "x:y", "a/b", "é", "c" * 129, None])
def test_minting_refuses_a_bad_call_id(sm, call_id):
    with pytest.raises(InvalidInputError):
        sm.generate_token(FUNCTION, call_id)


# -- what validates -------------------------------------------------------------------------


def test_own_token_validates(sm):
    token = sm.generate_token(FUNCTION, CALL)
    assert sm.check_token(CALL, FUNCTION, token) is None
    assert sm.validate_token(CALL, FUNCTION, token) is True


@pytest.mark.parametrize("call_id", ["root.2", "a.b.c.d.e.f", ".", "..", "x."])
def test_call_ids_with_dots_validate(sm, call_id):
    # The token splits from the right: only the call id may hold dots.
    token = sm.generate_token(FUNCTION, call_id)
    assert sm.validate_token(call_id, FUNCTION, token)
    assert not sm.validate_token(call_id.split(".")[0] or "z", FUNCTION, token)


def test_longest_call_id_and_function_name_validate(sm):
    call_id, function = "c" * 128, "f" * 64
    assert sm.validate_token(call_id, function, sm.generate_token(function, call_id))


def test_latest_expiry_validates(sm):
    # 11 digits: year 5138. A 12th digit is refused (see the malformed cases).
    assert sm.check_token(CALL, FUNCTION, build(expiry="9" * 11)) is None


@pytest.mark.parametrize("padded", [True, False])
def test_padded_and_unpadded_both_validate(sm, padded):
    # Call ids of three lengths so the encoding needs 0, 1 and 2 padding characters.
    paddings = set()
    for call_id in ("c", "ca", "cal"):
        token = sm.generate_token(FUNCTION, call_id)
        paddings.add(len(token) - len(token.rstrip("=")))
        if not padded:
            token = token.rstrip("=")
        assert sm.validate_token(call_id, FUNCTION, token), token
    assert paddings == {0, 1, 2}


@pytest.mark.parametrize("call_id", ["c", "ca", "cal", "root.2"])  # 0, 2, 1, 1 "=" dropped
def test_typescript_sdk_tokens_validate(sm, future, call_id):
    # @signalwire/sdk mints the same string with a 32-hex nonce, base64url without padding.
    token = build(call_id, expiry=future, nonce=TS_NONCE, padded=False)
    assert sm.check_token(call_id, FUNCTION, token) is None


def test_validate_tool_token_takes_the_sdk_argument_order(sm):
    token = sm.create_tool_token(FUNCTION, CALL)  # (function_name, call_id)
    assert sm.validate_tool_token(FUNCTION, token, CALL)  # (function_name, token, call_id)
    assert not sm.validate_tool_token(CALL, token, FUNCTION)


# -- what is refused, and why ---------------------------------------------------------------


def test_expired_token_is_refused(sm, clock):
    token = sm.generate_token(FUNCTION, CALL)
    clock.advance(sm.token_expiry_secs)
    assert sm.check_token(CALL, FUNCTION, token) is None  # the last valid second, as the SDK
    clock.advance(1)
    assert sm.check_token(CALL, FUNCTION, token) == tokens.Refusal.EXPIRED
    assert sm.validate_token(CALL, FUNCTION, token) is False


def test_token_for_another_call_is_refused(sm):
    token = sm.generate_token(FUNCTION, CALL)
    assert sm.check_token("call-2", FUNCTION, token) == tokens.Refusal.WRONG_CALL
    assert sm.validate_token("call-2", FUNCTION, token) is False


def test_token_for_another_function_is_refused(sm):
    token = sm.generate_token(FUNCTION, CALL)
    assert sm.check_token(CALL, "transfer_call", token) == tokens.Refusal.WRONG_FUNCTION
    assert sm.validate_token(CALL, "transfer_call", token) is False


@pytest.mark.parametrize("call_id", ["", None])
def test_empty_call_id_is_refused(sm, call_id):
    token = sm.generate_token(FUNCTION, CALL)
    assert sm.check_token(call_id, FUNCTION, token) == tokens.Refusal.MISSING_CALL_ID
    assert sm.validate_token(call_id, FUNCTION, token) is False


def test_forged_token_is_refused(sm, future):
    forged = build(expiry=future, key=OTHER_KEY)
    assert sm.check_token(CALL, FUNCTION, forged) == tokens.Refusal.BAD_SIGNATURE


def flip_hex(char: str) -> str:
    return "0" if char != "0" else "1"


@pytest.mark.parametrize("position", [0, 31, 63])
def test_token_with_a_flipped_signature_character_is_refused(sm, position):
    call_id, function, expiry, nonce, signature = minted_fields(sm)
    tampered = signature[:position] + flip_hex(signature[position]) + signature[position + 1 :]
    token = build(call_id, function, expiry, nonce, signature=tampered)
    assert sm.check_token(CALL, FUNCTION, token) == tokens.Refusal.BAD_SIGNATURE


def test_token_with_a_later_expiry_is_refused(sm):
    call_id, function, expiry, nonce, signature = minted_fields(sm)
    token = build(call_id, function, int(expiry) + 3600, nonce, signature=signature)
    assert sm.check_token(CALL, FUNCTION, token) == tokens.Refusal.BAD_SIGNATURE


def test_token_with_another_nonce_is_refused(sm):
    call_id, function, expiry, _, signature = minted_fields(sm)
    token = build(call_id, function, expiry, "f" * 16, signature=signature)
    assert sm.check_token(CALL, FUNCTION, token) == tokens.Refusal.BAD_SIGNATURE


def test_expiry_with_a_leading_zero_is_refused(sm):
    # The same claims with the expiry written "0123..." is not a token we minted; the SDK
    # signs the expiry as written, so it refuses this re-encoding too.
    call_id, function, expiry, nonce, signature = minted_fields(sm)
    token = build(call_id, function, "0" + expiry, nonce, signature=signature)
    assert sm.check_token(CALL, FUNCTION, token) == tokens.Refusal.MALFORMED


def malformed_fields(future: int) -> dict[str, dict[str, str]]:
    """Fields the SDK's int()/split would accept or choke on; each must be refused."""
    expiry = str(future)
    return {
        # expiry: int() reads all of these as the same number; we do not.
        "expiry with +": {"expiry": "+" + expiry},
        "expiry with a space": {"expiry": " " + expiry},
        "expiry with _": {"expiry": f"{expiry[:4]}_{expiry[4:]}"},
        "expiry in Arabic-Indic digits": {"expiry": expiry.translate(ARABIC_INDIC_DIGITS)},
        "expiry negative": {"expiry": "-" + expiry},
        "expiry empty": {"expiry": ""},
        "expiry 12 digits (past year 9999)": {"expiry": "9" * 12},
        "expiry a float": {"expiry": expiry + ".0"},
        # nonce
        "nonce empty": {"nonce": ""},
        "nonce too short": {"nonce": NONCE[:15]},
        "nonce too long": {"nonce": "a" * 65},
        "nonce uppercase": {"nonce": NONCE.upper()},
        "nonce not hex": {"nonce": "g" * 16},
        # call id and function as they appear inside the token
        "call id empty": {"call_id": ""},
        "call id with :": {"call_id": "x:y"},
        "function with :": {"function": "y:z"},
        "function starting with a digit": {"function": "1f"},
        "function empty": {"function": ""},
    }


@pytest.mark.parametrize("case", list(malformed_fields(0)))
def test_malformed_field_is_refused(sm, future, case):
    fields = {"call_id": CALL, "function": FUNCTION, "expiry": str(future), "nonce": NONCE}
    fields.update(malformed_fields(future)[case])
    token = build(**fields)
    # Asked for exactly the call and function the token names, so only its shape can fail.
    reason = sm.check_token(fields["call_id"] or CALL, fields["function"], token)
    assert reason == tokens.Refusal.MALFORMED
    assert tokens.parse(token) is None


@pytest.mark.parametrize(
    "signature",
    [
        pytest.param(lambda s: s.upper(), id="uppercase hex"),
        pytest.param(lambda s: s[:-1], id="63 characters"),
        pytest.param(lambda s: s + "0", id="65 characters"),
        pytest.param(lambda s: s[:32], id="truncated to 32"),
        pytest.param(lambda s: "", id="empty"),
        pytest.param(lambda s: "z" * 64, id="not hex"),
    ],
)
def test_malformed_signature_is_refused(sm, future, signature):
    good = sign(KEY, CALL, FUNCTION, str(future), NONCE)
    token = build(expiry=future, signature=signature(good))
    assert sm.check_token(CALL, FUNCTION, token) == tokens.Refusal.MALFORMED


@pytest.mark.parametrize(
    "mangle",
    [
        pytest.param(lambda t: t[:8] + "+" + t[8:], id="standard-alphabet +"),
        pytest.param(lambda t: t[:8] + "/" + t[8:], id="standard-alphabet /"),
        pytest.param(lambda t: t + "\n", id="trailing newline"),
        pytest.param(lambda t: " " + t, id="leading space"),
        pytest.param(lambda t: t[:8] + "!" + t[8:], id="stray !"),
        pytest.param(lambda t: t[:8] + "." + t[8:], id="stray ."),
        pytest.param(lambda t: t.rstrip("=") + "===", id="three padding characters"),
        pytest.param(lambda t: t[:8] + "=" + t[8:], id="padding in the middle"),
        pytest.param(lambda t: t.rstrip("=")[:-1], id="one character short"),
    ],
)
def test_token_that_is_not_clean_base64url_is_refused(sm, mangle):
    assert sm.check_token(CALL, FUNCTION, build()) is None  # before mangling
    token = mangle(build())
    assert sm.check_token(CALL, FUNCTION, token) == tokens.Refusal.MALFORMED


def test_base64_of_non_utf8_bytes_is_refused(sm):
    token = encode(b"\xff\xfe" + decode(build()).encode())
    assert sm.check_token(CALL, FUNCTION, token) == tokens.Refusal.MALFORMED


@pytest.mark.parametrize(
    "token",
    [
        pytest.param("", id="empty"),
        pytest.param(None, id="None"),
        pytest.param(12345, id="int"),
        pytest.param(b"bytes", id="bytes"),
        pytest.param("A" * (tokens.MAX_TOKEN_CHARS + 4), id="too long"),
        pytest.param(encode("a.b.c.d"), id="four fields"),
        pytest.param(encode("no dots at all"), id="one field"),
    ],
)
def test_garbage_is_refused_without_raising(sm, token):
    assert sm.check_token(CALL, FUNCTION, token) == tokens.Refusal.MALFORMED
    assert sm.validate_token(CALL, FUNCTION, token) is False


def test_colon_resplit_is_refused(sm, future):
    # Signed over "x:y:z:<expiry>:<nonce>": the same message for call "x:y" / function "z"
    # and call "x" / function "y:z". Neither split is a shape we accept.
    expiry = str(future)
    signature = sign(KEY, "x:y", "z", expiry, NONCE)
    as_minted = build("x:y", "z", expiry, NONCE, signature=signature)
    resplit = build("x", "y:z", expiry, NONCE, signature=signature)
    assert sm.check_token("x:y", "z", as_minted) == tokens.Refusal.MALFORMED
    assert sm.check_token("x", "y:z", resplit) == tokens.Refusal.MALFORMED


def test_missing_call_id_is_reported_before_anything_else(sm):
    assert sm.check_token("", FUNCTION, "garbage") == tokens.Refusal.MISSING_CALL_ID


def test_signed_by_tries_every_key():
    parsed = tokens.parse(build())
    assert parsed is not None
    assert tokens.signed_by(parsed, [OTHER_KEY.encode(), KEY.encode()])
    assert tokens.signed_by(parsed, [KEY.encode(), OTHER_KEY.encode()])
    assert not tokens.signed_by(parsed, [OTHER_KEY.encode()])
    assert not tokens.signed_by(parsed, [])


# -- debug_token (its gating and the SDK's shapes: test_manager.py, test_sdk_parity.py) ------


@pytest.fixture
def debug_sm(sm) -> SessionManager:
    sm._debug_mode = True  # as in the SDK, debug_token decodes only in debug mode
    return sm


def test_debug_token_decodes_without_validating(debug_sm, clock):
    token = SessionManager(secret_key=OTHER_KEY, clock=clock).generate_token(FUNCTION, "root.2")
    info = debug_sm.debug_token(token)  # signed with another key: decoded all the same

    _, _, expiry, nonce, signature = decode(token).rsplit(".", 4)
    assert info["valid_format"] is True
    assert info["components"]["call_id"] == "root.2"
    assert info["components"]["function"] == FUNCTION
    assert info["components"]["expiry"] == expiry
    assert info["components"]["nonce"] == nonce
    assert info["status"] == {
        "current_time": int(clock()),
        "is_expired": False,
        "expires_in_seconds": 900,
    }
    assert signature not in json.dumps(info)
    assert signature[:8] in info["components"]["signature"]


def test_debug_token_reports_expiry(debug_sm, clock):
    token = debug_sm.generate_token(FUNCTION, CALL)
    clock.advance(901)
    status = debug_sm.debug_token(token)["status"]
    assert status["is_expired"] is True
    assert status["expires_in_seconds"] == 0


@pytest.mark.parametrize(
    "token", ["", "garbage", None, 42, encode("a.b.c.d.e"), "A" * 2000, encode(b"\xff" * 9)]
)
def test_debug_token_answers_invalid_format_for_garbage(debug_sm, token):
    info = debug_sm.debug_token(token)
    assert info["valid_format"] is False
    assert set(info) == {"valid_format", "error", "token_length"}


def test_debug_token_of_an_expiry_past_year_9999_is_invalid_format(debug_sm):
    # A well-shaped token whose expiry no datetime can hold must not raise in a log line.
    assert debug_sm.debug_token(build(expiry=253_402_300_800))["valid_format"] is False


# -- spellings: exactly the canonical padded and unpadded forms ------------------------------


def test_canonical_padded_and_unpadded_spellings_validate(sm):
    # A call id whose token needs padding: the Python SDK pads, the TypeScript SDK does not.
    token = build(call_id="c")
    assert token.endswith("=")
    assert sm.check_token("c", FUNCTION, token) is None
    assert sm.check_token("c", FUNCTION, token.rstrip("=")) is None


@pytest.mark.parametrize("call_id", ["c", "cc", "ccc"], ids=["no =", "one =", "two ="])
def test_an_extra_padding_character_is_malformed(sm, call_id):
    token = build(call_id=call_id)
    assert sm.check_token(call_id, FUNCTION, token) is None
    assert sm.check_token(call_id, FUNCTION, token + "=") == tokens.Refusal.MALFORMED
    assert (
        sm.check_token(call_id, FUNCTION, token.rstrip("=") + "=" * 3) == tokens.Refusal.MALFORMED
    )


def test_half_padding_is_malformed(sm):
    token = build(call_id="ccc")
    assert token.endswith("==")
    assert sm.check_token("ccc", FUNCTION, token[:-1]) == tokens.Refusal.MALFORMED


def _with_low_bits_set(token: str) -> str:
    """The same bytes, spelled with non-zero unused bits in the last base64 character."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    body = token.rstrip("=")
    last = alphabet.index(body[-1])
    return body[:-1] + alphabet[last | 1] + token[len(body) :]


@pytest.mark.parametrize("remainder", [1, 2], ids=["4 unused bits", "2 unused bits"])
@pytest.mark.parametrize("padded", [True, False], ids=["padded", "unpadded"])
def test_nonzero_unused_bits_are_malformed(sm, remainder, padded):
    # A call id that leaves `remainder` bytes in the last base64 group.
    call_id = next(c for c in ("c", "cc", "ccc") if len(decode(build(call_id=c))) % 3 == remainder)
    token = build(call_id=call_id, padded=padded)
    mangled = _with_low_bits_set(token)
    assert mangled != token
    assert base64.urlsafe_b64decode(mangled + "=" * (-len(mangled) % 4)) == (
        base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    ), "a lenient decoder reads both as the same token"
    assert sm.check_token(call_id, FUNCTION, token) is None
    assert sm.check_token(call_id, FUNCTION, mangled) == tokens.Refusal.MALFORMED


def test_a_repeated_token_is_parsed_the_same_and_checked_every_time(sm):
    token = build()
    assert tokens.parse(token) == tokens.parse(token)
    # Parsing is remembered; the signature is not: another key still refuses it.
    other = SessionManager(secret_key=OTHER_KEY)
    assert other.check_token(CALL, FUNCTION, token) == tokens.Refusal.BAD_SIGNATURE
    assert sm.check_token(CALL, FUNCTION, token) is None


# -- the fast paths agree with the plain ones ------------------------------------------------


@pytest.mark.parametrize("length", [1, 32, 63, 64, 65, 200], ids=lambda n: f"{n}-byte key")
def test_sign_is_hmac_sha256(length):
    key = bytes(range(1, 256))[:length] if length < 255 else bytes(length)
    for message in (b"", b"a", b"call:fn:1:nonce" * 9):
        assert tokens.sign(key, message) == hmac.new(key, message, hashlib.sha256).hexdigest()


@pytest.mark.parametrize(
    "call_id",
    ["a", "root.2", ".", "..", ".a.", "a..b", "-_.", "x" * 128, "x" * 129, "a" * 127 + "."],
)
def test_call_ids_parse_exactly_as_session_ids_validate(sm, call_id):
    from session_manager.validation import SESSION_ID

    parsed = tokens.parse(build(call_id=call_id))
    if SESSION_ID.fullmatch(call_id):
        assert parsed is not None and parsed.call_id == call_id
    else:
        assert parsed is None


# -- lifetimes: a manager never mints a token it would refuse --------------------------------


@pytest.mark.parametrize("lifetime", [0, -1, tokens.MAX_LIFETIME_SECS + 1, 10**12])
def test_a_lifetime_that_mints_refused_tokens_is_a_configuration_error(lifetime):
    with pytest.raises(ConfigurationError, match="token_expiry_secs"):
        SessionManager(token_expiry_secs=lifetime, secret_key=KEY)


@pytest.mark.parametrize("lifetime", [1, tokens.MAX_LIFETIME_SECS])
def test_the_longest_and_shortest_lifetimes_mint_valid_tokens(clock, lifetime):
    manager = SessionManager(token_expiry_secs=lifetime, secret_key=KEY, clock=clock)
    token = manager.generate_token(FUNCTION, CALL)
    assert tokens.parse(token).expiry <= tokens.MAX_EXPIRY
    assert manager.check_token(CALL, FUNCTION, token) is None


def test_nonces_never_repeat_across_batches(sm):
    nonces = [minted_fields(sm)[3] for _ in range(3 * tokens._NONCE_BATCH)]
    assert len(set(nonces)) == len(nonces)
    assert all(re.fullmatch(r"[0-9a-f]{16}", nonce) for nonce in nonces)
