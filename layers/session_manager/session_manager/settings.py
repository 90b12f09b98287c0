"""The deployment's settings, read from the environment in one place.

The five HTTP functions (through SessionManager) and the rotation function read the same
variables with the same parsers, defaults and errors: a value one of them refuses, all
refuse, at start (ConfigurationError), never halfway through a request or a rotation.

Booleans take the usual spellings, case-insensitive and stripped: true/false, yes/no,
on/off, 1/0, enabled/disabled; empty is false. SINGLE_USE_TOKENS may instead name the
functions it covers; a list that holds a boolean word or "all", "none", "*" is refused as
ambiguous (does "yes,refund" mean every function?). template.yaml's AllowedPattern for
SingleUseTokens implements the same rule.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from .errors import ConfigurationError
from .validation import FUNCTION_NAME

TRUE_WORDS = frozenset({"true", "yes", "on", "1", "enabled"})
FALSE_WORDS = frozenset({"false", "no", "off", "0", "disabled", ""})
# Not function names, though some are shaped like one: each could be read as "every
# function" or "none".
AMBIGUOUS_NAMES = TRUE_WORDS | FALSE_WORDS | {"all", "none", "*"}


def parse_flag(name: str, value: bool | str) -> bool:
    """A boolean setting, from a bool or one of the usual spellings."""
    if isinstance(value, bool):
        return value
    word = value.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ConfigurationError(
        f"{name} must be true or false (or yes/no, on/off, 1/0, enabled/disabled), not {value!r}"
    )


def parse_single_use(
    value: bool | str | Iterable[str], name: str = "SINGLE_USE_TOKENS"
) -> bool | frozenset[str]:
    """True (every function), False, or the function names single-use tokens cover."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        if value.strip().lower() in TRUE_WORDS | FALSE_WORDS:
            return parse_flag(name, value)
        value = value.split(",")
    items = list(value)
    if not all(isinstance(item, str) for item in items):
        raise ConfigurationError(f"{name}: function names are strings")
    names = [item.strip() for item in items]
    ambiguous = [n for n in names if n and n.lower() in AMBIGUOUS_NAMES]
    if ambiguous:
        raise ConfigurationError(
            f"{name}: {', '.join(map(repr, ambiguous))} in a list of function names is "
            "ambiguous; set true (every function), false, or only function names"
        )
    if not names or not all(FUNCTION_NAME.fullmatch(n) for n in names):
        raise ConfigurationError(
            f"{name} must be true, false or comma-separated function names, not {value!r}"
        )
    return frozenset(names)


def parse_seconds(name: str, value: str | None, default: int) -> int:
    """A positive whole number of seconds; unset or empty means the default."""
    if value is None or value == "":
        return default
    try:
        seconds = int(value)
    except ValueError:
        raise ConfigurationError(
            f"{name} must be a whole number of seconds, not {value!r}"
        ) from None
    if seconds <= 0:
        raise ConfigurationError(f"{name} must be positive, not {seconds}")
    return seconds


@dataclass(frozen=True)
class Settings:
    """What the environment configures (the README's table); the defaults are the
    template's."""

    table_name: str | None = None
    secret_id: str | None = None
    token_expiry_secs: int = 900
    session_ttl_secs: int = 3600
    secret_cache_secs: int = 300
    token_revocation: bool = False
    single_use_tokens: bool | frozenset[str] = False

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Every variable read and checked now; ConfigurationError names a bad one."""
        env = os.environ if environ is None else environ
        return cls(
            table_name=env.get("SESSIONS_TABLE") or None,
            secret_id=env.get("SIGNING_SECRET_ID") or None,
            token_expiry_secs=parse_seconds(
                "TOKEN_EXPIRY_SECS", env.get("TOKEN_EXPIRY_SECS"), cls.token_expiry_secs
            ),
            session_ttl_secs=parse_seconds(
                "SESSION_TTL_SECS", env.get("SESSION_TTL_SECS"), cls.session_ttl_secs
            ),
            secret_cache_secs=parse_seconds(
                "SECRET_CACHE_SECS", env.get("SECRET_CACHE_SECS"), cls.secret_cache_secs
            ),
            token_revocation=parse_flag("TOKEN_REVOCATION", env.get("TOKEN_REVOCATION", "")),
            single_use_tokens=parse_single_use(env.get("SINGLE_USE_TOKENS", "")),
        )
