"""`python -m local_api` as a child process, as a developer runs it with `make serve`: for
the tests and the benchmarks that need the real process (its signals, its console, its
own interpreter). Started, waited for until it listens, and always stopped.

    with serving(port, signing_key=key) as process:
        ...  # requests to http://127.0.0.1:{port}
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COMMAND = (sys.executable, "-m", "local_api")
START_SECS = 30.0  # a cold interpreter importing boto3 and moto
STOP_SECS = 20.0
# The shell's own names and endpoints would point the server elsewhere than the embedded
# moto with the template's names.
_NOT_INHERITED = ("SESSIONS_TABLE", "SIGNING_SECRET_ID", "SIGNING_SECRET")


def environment(
    port: int, signing_key: str | None = None, environ: Mapping[str, str] = os.environ
) -> dict[str, str]:
    """What the server process gets: this one's environment without the variables that
    would send it elsewhere, its PORT, and SIGNING_SECRET when a key is given."""
    env = {
        name: value
        for name, value in environ.items()
        if name not in _NOT_INHERITED and not name.startswith("AWS_ENDPOINT_URL")
    }
    env.update(PORT=str(port), PYTHONUNBUFFERED="1")
    if signing_key is not None:
        env["SIGNING_SECRET"] = signing_key
    return env


def wait_until_listening(
    process: subprocess.Popen[str], port: int, timeout: float = START_SECS
) -> None:
    """Return once 127.0.0.1:`port` accepts a connection (the server loads the handlers
    before it listens); raise when the process exits or `timeout` passes first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the local API exited with {process.returncode} before serving")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"the local API did not listen on port {port} within {timeout:g} s")


@contextmanager
def serving(
    port: int,
    *,
    signing_key: str | None = None,
    args: Sequence[str] = (),
    capture: bool = True,
    start_secs: float = START_SECS,
    settings: Mapping[str, str] | None = None,
) -> Iterator[subprocess.Popen[str]]:
    """The server on 127.0.0.1:`port` while the block runs, with `settings` added to its
    environment (TOKEN_REVOCATION=true, as a shell would set it). Its stdout and stderr are
    pipes (read them with `communicate()` after stopping it) unless `capture` is False.
    On leaving, a server still running gets SIGINT (Ctrl-C), then is killed if it has
    not stopped within STOP_SECS."""
    output = subprocess.PIPE if capture else subprocess.DEVNULL
    process = subprocess.Popen(  # noqa: S603 - this interpreter, a fixed module
        [*COMMAND, *args],
        cwd=ROOT,
        env={**environment(port, signing_key), **(settings or {})},
        stdout=output,
        stderr=output,
        text=True,
    )
    try:
        wait_until_listening(process, port, start_secs)
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.communicate(timeout=STOP_SECS)
            except subprocess.TimeoutExpired:
                process.kill()
                process.communicate()
