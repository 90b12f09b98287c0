"""Where the contract suite sends its requests, and how it signs them.

Locally: `python -m local_api` on 127.0.0.1, no auth. Deployed (`make e2e`): API_URL, with
AUTH=iam (SigV4 for execute-api, credentials from botocore's default chain, resolved once
before the suite starts) or AUTH=jwt (`Authorization: Bearer $E2E_JWT`).

Every problem with that input is a TargetError whose message is one line for a person.
"""

from __future__ import annotations

import json
import os
import re
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

TIMEOUT_SECS = 10
AUTH_MODES = ("iam", "jwt")
JWT_VARIABLE = "E2E_JWT"
# execute-api's own host names carry the region: abc123.execute-api.eu-west-1.amazonaws.com
_REGION_IN_HOST = re.compile(r"\.execute-api\.([a-z0-9-]+)\.amazonaws\.com$")

Signer = Callable[[str, str, dict[str, str], bytes | None], dict[str, str]]


class TargetError(Exception):
    """The deployed stack cannot be tested as asked; the message says why, in one line."""


@dataclass
class Reply:
    status: int
    headers: Any  # email.message.Message: case-insensitive get()
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def error_code(self) -> str:
        """The error envelope's code; fails the test when the body is not the envelope."""
        envelope = self.json
        assert set(envelope) == {"error"}, envelope
        assert set(envelope["error"]) == {"code", "message"}, envelope
        assert isinstance(envelope["error"]["message"], str)
        return str(envelope["error"]["code"])


@dataclass
class Target:
    """A base URL and the headers each request needs to be let in."""

    base_url: str
    auth: str = "none"  # none (local), iam or jwt
    signer: Signer | None = field(default=None, repr=False)

    @property
    def local(self) -> bool:
        return self.auth == "none"

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        raw: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Reply:
        data = raw if raw is not None else None if body is None else json.dumps(body).encode()
        url = self.base_url + path
        sent = dict(headers or {})
        if data is not None and not any(name.lower() == "content-type" for name in sent):
            sent["Content-Type"] = "application/json"
        if self.signer is not None:
            sent = self.signer(method, url, sent, data)
        request = urllib.request.Request(url, data=data, method=method, headers=sent)  # noqa: S310 - http(s) only, checked
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT_SECS) as response:  # noqa: S310
                return Reply(response.status, response.headers, response.read())
        except urllib.error.HTTPError as error:
            with error:
                return Reply(error.code, error.headers, error.read())

    def get(self, path: str) -> Reply:
        return self.request("GET", path)

    def patch(self, path: str, body: Any) -> Reply:
        return self.request("PATCH", path, body)

    def put(self, path: str, body: Any) -> Reply:
        return self.request("PUT", path, body)

    def post(self, path: str, body: Any) -> Reply:
        return self.request("POST", path, body)

    def delete(self, path: str) -> Reply:
        return self.request("DELETE", path)


def deployed(environ: Mapping[str, str] = os.environ) -> Target:
    """The target API_URL and AUTH name; TargetError when either, or the credentials that
    AUTH needs, are missing."""
    url = (environ.get("API_URL") or "").strip().rstrip("/")
    if not url:
        raise TargetError(
            "API_URL is not set: make e2e API_URL=https://<id>.execute-api.<region>."
            "amazonaws.com [AUTH=iam|jwt] (the stack's ApiUrl output)"
        )
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise TargetError(f"API_URL must be an http(s) URL, not {url!r}")
    auth = (environ.get("AUTH") or "iam").strip().lower()
    if auth == "iam":
        return Target(url, "iam", _sigv4_signer(parts.hostname, environ))
    if auth == "jwt":
        token = (environ.get(JWT_VARIABLE) or "").strip()
        if not token:
            raise TargetError(f"AUTH=jwt needs a bearer token in {JWT_VARIABLE}")
        return Target(url, "jwt", _bearer_signer(token))
    raise TargetError(f"AUTH must be one of {', '.join(AUTH_MODES)}, not {auth!r}")


def _bearer_signer(token: str) -> Signer:
    def sign(method: str, url: str, headers: dict[str, str], body: bytes | None) -> dict[str, str]:
        return {**headers, "Authorization": f"Bearer {token}"}

    return sign


def _sigv4_signer(host: str, environ: Mapping[str, str]) -> Signer:
    """SigV4 for execute-api with credentials resolved now, frozen for the run."""
    import botocore.session
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.exceptions import BotoCoreError

    found = _REGION_IN_HOST.search(host)
    region = (
        found.group(1) if found else environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION")
    )
    if not region:
        raise TargetError("AUTH=iam: no region in API_URL's host; set AWS_REGION")
    try:
        credentials = botocore.session.Session().get_credentials()
        frozen = credentials.get_frozen_credentials() if credentials is not None else None
    except BotoCoreError as error:
        raise TargetError(f"AUTH=iam: the AWS credentials cannot be loaded: {error}") from None
    if frozen is None or not frozen.access_key:
        raise TargetError(
            "AUTH=iam: no AWS credentials found (environment, profile, SSO or instance role)"
        )
    auth = SigV4Auth(frozen, "execute-api", region)

    def sign(method: str, url: str, headers: dict[str, str], body: bytes | None) -> dict[str, str]:
        request = AWSRequest(method=method, url=url, data=body or b"", headers=headers)
        auth.add_auth(request)
        return dict(request.headers.items())

    return sign


def probe(target: Target) -> None:
    """One read of a session nobody has: TargetError when the API refuses our credentials
    (401, 403) or cannot be reached, so the suite stops at once with one line."""
    path = f"/sessions/e2e-probe-{uuid.uuid4().hex}/metadata"
    try:
        reply = target.get(path)
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise TargetError(f"{target.base_url} cannot be reached: {reason}") from None
    if reply.status in (401, 403):
        raise TargetError(
            f"{target.base_url} refused the {target.auth.upper()} credentials "
            f"({reply.status}): {_message(reply.body)}"
        )


def _message(body: bytes) -> str:
    try:
        document = json.loads(body)
    except ValueError:
        return body[:200].decode("utf-8", "replace") or "no body"
    if isinstance(document, dict):
        return str(document.get("message") or document.get("Message") or document)[:200]
    return str(document)[:200]


# Set by the e2e runner before pytest starts: the suite's conftest (and tests/conftest.py,
# which replaces the shell's AWS credentials with fake ones) runs after the credentials
# were resolved.
DEPLOYED: Target | None = None
