"""The commands of docs/local.md and of the README's quick start run as written, in a
second shell while `make serve` runs, and print what the page shows them printing.

Each page gets a fresh `python -m local_api` (what `make serve` runs) on a free port; the
page's `3000` is that port. Its runnable ```sh blocks run in order in one bash, as a
reader pastes them into one terminal. Blocks marked `<!-- not-run: why -->` are left out.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
from pathlib import Path

import pytest
from doc_pages import ROOT, Block, Command, blocks, commands, expected, matches

from devtools import template
from local_api.process import serving

PAGES = [ROOT / "README.md", ROOT / "docs" / "local.md"]
DOC_PORT = "3000"
RUN_SECS = 60
_DONE = re.compile(r"\n@@ran (\d+) (\d+)@@\n")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def on_port(text: str, port: int) -> str:
    return re.sub(rf"(?<=127\.0\.0\.1:|localhost:){DOC_PORT}\b", str(port), text)


def runnable(page: Path) -> list[Block]:
    return [block for block in blocks(page) if block.run and block.language in ("sh", "bash")]


def run(script: list[Command], port: int) -> list[tuple[Command, int, str]]:
    """Each command's exit status and output, from one bash running them all in order."""
    lines = []
    for index, command in enumerate(script):
        lines += [on_port(command.text, port), f"printf '\\n@@ran {index} %d@@\\n' $?"]
    # Its own process group: whatever a command leaves running is stopped with it.
    with subprocess.Popen(
        ["bash", "--noprofile", "--norc"],  # noqa: S607
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        start_new_session=True,
    ) as shell:
        try:
            stdout, stderr = shell.communicate("\n".join(lines) + "\n", timeout=RUN_SECS)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(shell.pid, signal.SIGKILL)
    # split() with two groups: [output, index, status, output, index, status, ..., rest]
    parts = _DONE.split(stdout)
    ends = zip(parts[0:-1:3], parts[1::3], parts[2::3], strict=True)
    outputs = {int(index): (int(status), out) for out, index, status in ends}
    assert len(outputs) == len(script), stderr
    return [(command, *outputs[index]) for index, command in enumerate(script)]


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_a_page_that_shows_commands_runs_some(page: Path):
    assert [c for block in runnable(page) for c in commands(block.text)], page


@pytest.mark.slow  # a server per page
@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_every_command_runs_and_prints_what_the_page_shows(page: Path):
    script = [command for block in runnable(page) for command in commands(block.text)]
    forever = [c.text for c in script if re.search(r"\bmake serve\b", c.text)]
    assert not forever, f"{page.name}: mark these blocks <!-- not-run: ... -->: {forever}"
    port = free_port()
    with serving(port):
        ran = run(script, port)
    checked = 0
    for command, status, output in ran:
        assert status == 0, f"{page.name}: `{command.text}` exited {status}: {output}"
        if command.shown is not None:
            shown = json.loads(on_port(json.dumps(expected(command.shown)), port))
            assert matches(json.loads(output), shown), (command.text, output, command.shown)
            checked += 1
    assert checked >= 5, f"{page.name} shows the output of only {checked} commands"


@pytest.mark.slow  # a server
def test_the_banner_local_md_shows_is_the_one_printed(monkeypatch):
    """The ```text block after "At start it prints" is what `make serve` prints, from a
    shell that sets none of the template's variables (the suite's own would show)."""
    for function in template.functions():
        for name in function.environment:
            monkeypatch.delenv(name, raising=False)
    page = ROOT / "docs" / "local.md"
    source = page.read_text(encoding="utf-8")
    shown = next(b.text for b in blocks(page) if b.language == "text" and "Local API on" in b.text)
    assert source.index("At start it prints") < source.index(shown)
    port = free_port()
    with serving(port) as process:
        pass
    printed, _ = process.communicate()
    assert on_port(shown, port).rstrip() in printed
