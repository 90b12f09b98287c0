"""SignalWire SDK tool tokens: mint, parse and verify, with no I/O.

Wire format (the SDK's, byte for byte):
    urlsafe_b64("{call_id}.{function_name}.{expiry}.{nonce}.{hex_hmac_sha256}")
signed over "{call_id}:{function_name}:{expiry}:{nonce}". The call id may contain dots
("root.2"), so the token splits from the right.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass

from .validation import FUNCTION_NAME, SESSION_ID

MAX_TOKEN_CHARS = 1024
_BASE64URL = re.compile(r"[A-Za-z0-9_-]+={0,2}")
# Stricter than the SDK, which int()s the expiry (so "+1_0" parses) and takes any nonce:
# a field either has exactly the shape we mint or the token is malformed. No leading zero:
# the signed message is rebuilt from int(expiry), so "0123" would pass as "123". At most 11
# digits (year 5138): 12 can pass year 9999, where debug_token's datetime would raise.
_EXPIRY = re.compile(r"[1-9][0-9]{0,10}")
_NONCE = re.compile(r"[0-9a-f]{16,64}")  # Python SDK: 16 hex, TypeScript SDK: 32 hex
_SIGNATURE = re.compile(r"[0-9a-f]{64}")

# Reasons a token is refused; also the `reason` codes of POST /tokens/validate.
MALFORMED = "malformed"
MISSING_CALL_ID = "missing_call_id"
WRONG_FUNCTION = "wrong_function"
WRONG_CALL = "wrong_call"
EXPIRED = "expired"
BAD_SIGNATURE = "bad_signature"
REVOKED = "revoked"  # its call has ended (TOKEN_REVOCATION)
REPLAYED = "replayed"  # already validated once (SINGLE_USE_TOKENS)


@dataclass(frozen=True)
class ParsedToken:
    call_id: str
    function_name: str
    expiry: int
    nonce: str
    signature: str

    def message(self) -> bytes:
        return f"{self.call_id}:{self.function_name}:{self.expiry}:{self.nonce}".encode()


def sign(key: bytes, message: bytes) -> str:
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def mint(key: bytes, call_id: str, function_name: str, expiry: int) -> str:
    """A token in the SDK's format; the caller has validated call id and function name."""
    nonce = secrets.token_hex(8)
    message = f"{call_id}:{function_name}:{expiry}:{nonce}".encode()
    raw = f"{call_id}.{function_name}.{expiry}.{nonce}.{sign(key, message)}"
    return base64.urlsafe_b64encode(raw.encode()).decode()


def parse(token: object) -> ParsedToken | None:
    """Decode a token without checking its signature; None when it is not well formed."""
    if not isinstance(token, str) or len(token) > MAX_TOKEN_CHARS:
        return None
    if not _BASE64URL.fullmatch(token):
        return None
    try:
        # validate=True refuses stray characters that urlsafe_b64decode would skip;
        # restoring the padding accepts the TypeScript SDK's unpadded tokens.
        unpadded = token.rstrip("=")
        raw = base64.b64decode(
            unpadded + "=" * (-len(unpadded) % 4), altchars=b"-_", validate=True
        ).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    parts = raw.rsplit(".", 4)
    if len(parts) != 5:
        return None
    call_id, function_name, expiry, nonce, signature = parts
    if not (
        SESSION_ID.fullmatch(call_id)
        and FUNCTION_NAME.fullmatch(function_name)
        and _EXPIRY.fullmatch(expiry)
        and _NONCE.fullmatch(nonce)
        and _SIGNATURE.fullmatch(signature)
    ):
        return None
    return ParsedToken(call_id, function_name, int(expiry), nonce, signature)


def check_claims(
    parsed: ParsedToken | None, call_id: object, function_name: object, now: float
) -> str | None:
    """The reason a token's claims do not fit this call, or None; signature not checked."""
    if not call_id:
        return MISSING_CALL_ID
    if parsed is None:
        return MALFORMED
    if parsed.function_name != function_name:
        return WRONG_FUNCTION
    if parsed.call_id != call_id:
        return WRONG_CALL
    if parsed.expiry < now:
        return EXPIRED
    return None


def signed_by(parsed: ParsedToken, keys: Iterable[bytes]) -> bool:
    """True when one of the keys signed the token; every comparison is constant-time."""
    message = parsed.message()
    matched = False
    for key in keys:
        # No early exit: the time taken does not tell which key matched.
        matched |= hmac.compare_digest(sign(key, message), parsed.signature)
    return matched
