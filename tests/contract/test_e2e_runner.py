"""`make e2e`: bad input is one clear line and a non-zero exit, never a traceback; with
good input the suite runs against the URL it is given (here a local server, as a
deployed stack would be reached)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from local_api.process import serving
from tests.contract import target as targets
from tests.contract.conftest import LOCAL_KEY, PLAIN, _free_port

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(targets.DEPLOYED is not None, reason="tests the runner, not the stack"),
]

ROOT = Path(__file__).resolve().parents[2]
RUN_SECS = 300


def clean_environment(**variables: str) -> dict[str, str]:
    """No AWS credentials of any kind reachable (nor the instance metadata service)."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("AWS_", "E2E_")) and name not in ("API_URL", "AUTH")
    }
    env.update(
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        AWS_EC2_METADATA_DISABLED="true",
    )
    env.update(variables)
    return env


def run_e2e(*args: str, **variables: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - this interpreter, our own module
        [sys.executable, "-m", "tests.contract.e2e", *args],
        cwd=ROOT,
        env=clean_environment(**variables),
        capture_output=True,
        text=True,
        timeout=RUN_SECS,
        check=False,
    )


def assert_one_line(result: subprocess.CompletedProcess[str], *expected: str) -> None:
    assert result.returncode == 2, result
    assert result.stdout == "", result.stdout
    (line,) = result.stderr.splitlines()
    assert line.startswith("make e2e: "), line
    assert "Traceback" not in line
    for words in expected:
        assert words in line, line


class _Refusing(BaseHTTPRequestHandler):
    """API Gateway's answer to a caller it does not let in."""

    def do_GET(self) -> None:
        status = 401 if "Bearer" in (self.headers.get("Authorization") or "") else 403
        body = json.dumps({"message": "Forbidden" if status == 403 else "Unauthorized"})
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def refusing_api() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Refusing)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_no_url():
    assert_one_line(run_e2e(), "API_URL is not set", "make e2e API_URL=")


def test_not_a_url():
    assert_one_line(run_e2e(API_URL="execute-api.example"), "http(s) URL")


def test_unknown_auth_mode():
    assert_one_line(run_e2e(API_URL="https://x.example", AUTH="basic"), "AUTH must be one of")


def test_jwt_without_a_token():
    assert_one_line(run_e2e(API_URL="https://x.example", AUTH="jwt"), "E2E_JWT")


def test_iam_without_credentials():
    result = run_e2e(API_URL="https://abc.execute-api.eu-west-1.amazonaws.com", AUTH="iam")
    assert_one_line(result, "no AWS credentials found")


def test_iam_without_a_region():
    result = run_e2e(
        API_URL="https://api.example.com",
        AUTH="iam",
        AWS_ACCESS_KEY_ID="AKIDEXAMPLE",
        AWS_SECRET_ACCESS_KEY="secret",
    )
    assert_one_line(result, "set AWS_REGION")


def test_a_refused_bearer_token_is_one_line(refusing_api):
    result = run_e2e(API_URL=refusing_api, AUTH="jwt", E2E_JWT="expired")
    assert_one_line(result, "refused the JWT credentials (401): Unauthorized")


def test_refused_iam_credentials_are_one_line(refusing_api):
    result = run_e2e(
        API_URL=refusing_api,
        AUTH="iam",
        AWS_REGION="eu-west-1",
        AWS_ACCESS_KEY_ID="AKIDEXAMPLE",
        AWS_SECRET_ACCESS_KEY="secret",
    )
    assert_one_line(result, "refused the IAM credentials (403): Forbidden")


def test_an_unreachable_url_is_one_line():
    result = run_e2e(API_URL=f"http://127.0.0.1:{_free_port()}", AUTH="jwt", E2E_JWT="t")
    assert_one_line(result, "cannot be reached")


def test_make_e2e_without_a_url_is_one_line():
    venv = sys.prefix
    command = ["make", "-s", "-o", f"{venv}/.installed-test", "e2e", f"VENV={venv}"]
    result = subprocess.run(  # noqa: S603 - make from PATH, as a developer runs it
        command,
        cwd=ROOT,
        env=clean_environment(),
        capture_output=True,
        text=True,
        timeout=RUN_SECS,
        check=False,
    )
    assert result.returncode != 0
    assert "API_URL is not set" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_suite_passes_against_a_url_as_it_would_against_a_stack():
    """The whole contract suite, through the runner, against a server reached only by its
    URL (the local API ignores the bearer token a JWT stack would check)."""
    port = _free_port()
    with serving(port, signing_key=LOCAL_KEY, args=["--quiet"], capture=False, settings=PLAIN):
        result = run_e2e(
            "-q",
            f"--ignore={Path(__file__).resolve()}",
            API_URL=f"http://127.0.0.1:{port}",
            AUTH="jwt",
            E2E_JWT="local-server-ignores-it",
            E2E_SIGNING_KEY=LOCAL_KEY,
        )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert f"contract suite against http://127.0.0.1:{port} (AUTH=jwt)" in result.stdout
    assert " passed" in result.stdout
