"""SignalWire SDK tool tokens: mint, parse and verify, with no I/O.

Wire format (the SDK's, byte for byte):
    urlsafe_b64("{call_id}.{function_name}.{expiry}.{nonce}.{hex_hmac_sha256}")
signed over "{call_id}:{function_name}:{expiry}:{nonce}". The call id may contain dots
("root.2"), so the fields are matched from the right.

This is the hot path of every tool call, so it is written for speed (see `make bench`):
the keyed HMAC state is built once per key and copied per token, a token is decoded and
checked by one base64 round trip and one regex, and nothing here raises on bad input.
"""

from __future__ import annotations

import binascii
import hashlib
import hmac
import os
import re
from collections import deque
from collections.abc import Iterable
from enum import StrEnum
from typing import TYPE_CHECKING, NamedTuple

from .validation import FUNCTION_NAME

if TYPE_CHECKING:
    from _hashlib import HASH  # what hashlib.sha256() returns, named in the stubs only

MAX_TOKEN_CHARS = 1024
# The latest expiry a token may carry: 11 digits (year 5138). 12 can pass year 9999, where
# debug_token's datetime would raise. A manager refuses a lifetime that could mint past it.
MAX_EXPIRY = 99_999_999_999
# The longest token lifetime a manager accepts (and the template's TokenExpirySecs MaxValue):
# a year. Tool tokens live minutes; a year keeps now + lifetime far inside MAX_EXPIRY.
MAX_LIFETIME_SECS = 365 * 24 * 3600

# The decoded token in one pass, stricter than the SDK (which int()s the expiry, so "+1_0"
# parses, and takes any nonce): every field has exactly the shape we mint or the token is
# malformed. No leading zero in the expiry: the signed message is rebuilt from the parsed
# fields, and "0123" must not pass as "123". Nonce: 16 hex (Python SDK) to 32 (TypeScript
# SDK) and a little more. Only the call id may hold dots, and it comes first, so the
# anchored match splits exactly as rsplit(".", 4) would.
# The call id is validation.SESSION_ID's alphabet, spelled as runs between dots: taken a
# run at a time (possessive, lazy) the match costs a fifth of `[A-Za-z0-9._-]{1,128}`'s,
# which backtracks through the whole token. Its length (1 to 128) is checked after the
# match; test_tokens.py checks the two spellings agree.
_CALL_ID = r"(?:[A-Za-z0-9_-]++|\.)+?"
_MAX_CALL_ID = 128
_TOKEN = re.compile(
    rf"({_CALL_ID})\.({FUNCTION_NAME.pattern})\.([1-9][0-9]{{0,10}})"
    r"\.([0-9a-f]{16,64})\.([0-9a-f]{64})"
)
# base64url -> standard base64 for binascii's C codec, which then decodes in strict mode.
# Standard base64's own "+" and "/" become "!", which strict mode refuses like any stray
# character: only the base64url alphabet gets through.
_FROM_URLSAFE = bytes.maketrans(b"-_+/", b"+/!!")
_TO_URLSAFE = bytes.maketrans(b"+/", b"-_")
_PADDING = (b"", b"===", b"==", b"=")  # by the number of data characters in the last group
# Strict decoding accepts any value in the unused low bits of the last data character
# ("QR==" decodes as "QQ==" does); a canonical encoder writes zeros. By the number of data
# characters in the last group: 2 leave 4 unused bits, 3 leave 2.
_ZERO_UNUSED_BITS = {2: frozenset("AQgw"), 3: frozenset("AEIMQUYcgkosw048")}
_new_tuple = tuple.__new__


class Refusal(StrEnum):
    """Why a token is refused; also the `reason` codes of POST /tokens/validate. A str:
    json.dumps, f-strings and == "expired" see the plain code."""

    MALFORMED = "malformed"
    MISSING_CALL_ID = "missing_call_id"
    WRONG_FUNCTION = "wrong_function"
    WRONG_CALL = "wrong_call"
    EXPIRED = "expired"
    BAD_SIGNATURE = "bad_signature"
    REVOKED = "revoked"  # its call has ended (TOKEN_REVOCATION)
    REPLAYED = "replayed"  # already validated once (SINGLE_USE_TOKENS)


class ParsedToken(NamedTuple):
    # A NamedTuple, not a frozen dataclass: as immutable, and several times cheaper to build.
    call_id: str
    function_name: str
    expiry: int
    nonce: str
    signature: str

    def message(self) -> bytes:
        return f"{self.call_id}:{self.function_name}:{self.expiry}:{self.nonce}".encode()


# HMAC-SHA256 (RFC 2104) with the keyed states kept: hashing the key into the inner and
# outer pads is half of an HMAC's cost, so it is done once per key, and each message only
# copies the two states (C calls; hmac.HMAC.copy() adds Python frames and runs at half the
# speed). Keys change only on rotation; the bound keeps a long-lived process from
# collecting them. tests/session_manager/test_tokens.py checks it against hmac.new.
_BLOCK = hashlib.sha256().block_size
_IPAD = bytes(b ^ 0x36 for b in range(256))
_OPAD = bytes(b ^ 0x5C for b in range(256))
_KEYED: dict[bytes, tuple[HASH, HASH]] = {}
_MAX_KEYED = 8


def _keyed(key: bytes) -> tuple[HASH, HASH]:
    states = _KEYED.get(key)
    if states is None:
        if len(_KEYED) >= _MAX_KEYED:
            _KEYED.clear()
        block = (hashlib.sha256(key).digest() if len(key) > _BLOCK else key).ljust(_BLOCK, b"\0")
        states = hashlib.sha256(block.translate(_IPAD)), hashlib.sha256(block.translate(_OPAD))
        _KEYED[key] = states
    return states


def sign(key: bytes, message: bytes) -> str:
    """The hex HMAC-SHA256 of `message` under `key`: the one HMAC of minting and
    verifying."""
    inner, outer = _KEYED.get(key) or _keyed(key)
    inner = inner.copy()
    inner.update(message)
    outer = outer.copy()
    outer.update(inner.digest())
    return outer.hexdigest()


# Nonces: 8 bytes of os.urandom each, as secrets.token_hex(8) makes them, drawn 512 at a
# time: one getrandom syscall per token was a fifth of minting's cost. The batch becomes
# 512 hex strings in two C calls (hex with a separator every 8 bytes, then split): a
# Python loop slicing it cost more per token than the syscall saved. deque.popleft is
# atomic, so threads never share a nonce; a forked child drops its parent's unused ones.
_NONCES: deque[str] = deque()
_NONCE_BYTES = 8
_NONCE_BATCH = 512
if hasattr(os, "register_at_fork"):  # POSIX only; Windows has no fork
    os.register_at_fork(after_in_child=_NONCES.clear)


def _refill_nonces() -> str:
    _NONCES.extend(os.urandom(_NONCE_BYTES * _NONCE_BATCH).hex(" ", _NONCE_BYTES).split())
    return _NONCES.popleft()


def mint(key: bytes, call_id: str, function_name: str, expiry: int) -> str:
    """A token in the SDK's format; the caller has validated call id and function name."""
    try:
        nonce = _NONCES.popleft()
    except IndexError:
        nonce = _refill_nonces()
    message = f"{call_id}:{function_name}:{expiry}:{nonce}".encode()
    # The token's fields are the message's with dots: neither a call id nor a function
    # name can hold a ":" (validation.py), so every ":" in the message is a separator.
    raw = message.replace(b":", b".") + b"." + sign(key, message).encode()
    return binascii.b2a_base64(raw, newline=False).translate(_TO_URLSAFE).decode("ascii")


# Tokens parsed lately. A SignalWire agent mints one token per function per call and the
# platform sends that same token with every invocation of the function, and the SDK's
# handler parses it twice (debug_token, then validate_tool_token): most parses repeat one.
# Parsing is a pure function of the token and a ParsedToken is immutable, so a hit skips
# only the decoding; the signature is still checked against every key on every call.
# Only well-formed tokens are kept (garbage cannot evict them), at most _MAX_PARSED of them
# (about 700 bytes each), cleared when full.
_PARSED: dict[str, ParsedToken] = {}
_MAX_PARSED = 256


def parse(token: object) -> ParsedToken | None:
    """Decode a token without checking its signature; None when it is not well formed.

    Exactly two spellings are accepted: canonical base64url with its padding (the Python
    SDK's) and the same without padding (the TypeScript SDK's). Proved without re-encoding:
    the padding, when present, is exactly what the length calls for; strict decoding refuses
    any other character (standard base64's "+" and "/", a stray "=", whitespace); and the
    unused low bits of the last data character are zero. A lenient decoder would accept
    each of these variants as the same token.
    """
    if type(token) is not str:
        return None
    parsed = _PARSED.get(token)
    if parsed is not None:
        return parsed
    if len(token) > MAX_TOKEN_CHARS:
        return None
    body = token.rstrip("=")
    tail = len(body) & 3  # data characters in the last group: 0, 2 or 3 (1 never decodes)
    if body is token:  # unpadded (rstrip returns the very object when there is nothing to strip)
        padding = _PADDING[tail]
    elif len(token) - len(body) == len(_PADDING[tail]):  # exactly the padding it needs
        padding = b""
    else:
        return None
    if tail and body[-1] not in _ZERO_UNUSED_BITS.get(tail, ()):
        return None
    try:
        # Not ASCII: UnicodeEncodeError for a lone surrogate, else bytes strict mode refuses.
        raw = binascii.a2b_base64(
            token.encode().translate(_FROM_URLSAFE) + padding, strict_mode=True
        )
    except ValueError:  # binascii.Error and UnicodeEncodeError are ValueErrors
        return None
    # latin-1 never fails; a byte over 0x7f matches no character class of the pattern.
    match = _TOKEN.fullmatch(raw.decode("latin-1"))
    if match is None:
        return None
    call_id, function_name, expiry, nonce, signature = match.groups()
    if len(call_id) > _MAX_CALL_ID:
        return None
    # tuple.__new__: NamedTuple's own __new__ is a Python function, a tenth of parse's time.
    parsed = _new_tuple(ParsedToken, (call_id, function_name, int(expiry), nonce, signature))
    if len(_PARSED) >= _MAX_PARSED:
        _PARSED.clear()
    _PARSED[token] = parsed
    return parsed


def check_claims(
    parsed: ParsedToken | None, call_id: object, function_name: object, now: float
) -> Refusal | None:
    """The reason a token's claims do not fit this call, or None; signature not checked."""
    if not call_id:
        return Refusal.MISSING_CALL_ID
    if parsed is None:
        return Refusal.MALFORMED
    if parsed.function_name != function_name:
        return Refusal.WRONG_FUNCTION
    if parsed.call_id != call_id:
        return Refusal.WRONG_CALL
    if parsed.expiry < now:
        return Refusal.EXPIRED
    return None


def signed_by(parsed: ParsedToken, keys: Iterable[bytes]) -> bool:
    """True when one of the keys signed the token; every comparison is constant-time."""
    message = parsed.message()
    signature = parsed.signature
    matched = False
    for key in keys:  # no early exit: the time taken does not tell which key matched
        matched |= hmac.compare_digest(sign(key, message), signature)
    return matched
