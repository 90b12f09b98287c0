"""The user's documentation as data: README.md and docs/*.md, their links, the `make`
targets they name, their shell blocks with the output each command is shown to print.

A fenced block preceded by `<!-- not-run: why -->` is not run (a server that runs until
Ctrl-C, Docker, an AWS account); every other ```sh block of a page that is run is."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

_FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```[ \t]*$", re.M | re.S)
_NOT_RUN = re.compile(r"<!--\s*not-run:[^>]*-->\s*\Z")
_LINK = re.compile(r"!?\[(?:[^\]\\]|\\.)*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_CODE_SPAN = re.compile(r"(`+)(.+?)\1", re.S)
_MAKE = re.compile(r"(?<![\w./-])make\s+([a-z][\w.-]*)")


@dataclass(frozen=True)
class Block:
    language: str
    text: str
    run: bool  # False when a not-run marker precedes it


def blocks(page: Path) -> list[Block]:
    source = page.read_text(encoding="utf-8")
    return [
        Block(m.group(1), m.group(2), not _NOT_RUN.search(source[: m.start()]))
        for m in _FENCE.finditer(source)
    ]


def prose(page: Path) -> str:
    """The page without its fenced blocks (whose `#` lines are shell comments, and whose
    brackets are code)."""
    return _FENCE.sub("", page.read_text(encoding="utf-8"))


def links(page: Path) -> list[str]:
    """Every link and image target outside code."""
    return _LINK.findall(_CODE_SPAN.sub("", prose(page)))


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = _CODE_SPAN.sub(lambda m: m.group(2), heading.strip().lower())
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    seen: dict[str, int] = {}
    result = set()
    for line in prose(page).splitlines():
        if match := re.match(r"#{1,6}\s+(.*?)\s*#*\s*$", line):
            base = slug(match.group(1))
            count = seen.get(base, 0)
            seen[base] = count + 1
            result.add(base if count == 0 else f"{base}-{count}")
    return result


def make_targets_named(page: Path) -> set[str]:
    """`make X` in the page's code: fenced blocks and `code spans`."""
    source = page.read_text(encoding="utf-8")
    code = [m.group(2) for m in _FENCE.finditer(source)]
    code += [m.group(2) for m in _CODE_SPAN.finditer(prose(page))]
    return {target for text in code for target in _MAKE.findall(text)}


def makefile_targets(makefile: Path = ROOT / "Makefile") -> set[str]:
    targets = set()
    for line in makefile.read_text(encoding="utf-8").splitlines():
        match = re.match(r"([A-Za-z0-9_.%/ -]+?)\s*::?(?!=)", line)
        if match and not line.startswith(("\t", "#")):
            targets.update(match.group(1).split())
    return targets


# -- shell blocks as commands with their shown output ------------------------------------------


@dataclass(frozen=True)
class Command:
    text: str  # one shell command, continuation lines joined
    shown: str | None  # the output the page shows for it (a `# {...}` line), if any


def commands(script: str) -> list[Command]:
    """A block's commands, each with the JSON output the page shows in the comment line
    right after it (a comment that is not JSON is just a comment)."""
    result: list[Command] = []
    lines = iter(script.splitlines())
    for line in lines:
        if not line.strip():
            continue
        if line.lstrip().startswith("#"):
            shown = line.lstrip()[1:].strip()
            if result and result[-1].shown is None and expected(shown) is not None:
                result[-1] = Command(result[-1].text, shown)
            continue
        text = line
        while text.endswith("\\"):
            text += "\n" + next(lines)
        result.append(Command(text, None))
    return result


_ANY = "\x00any"  # `...` where a page shows a value that differs on every run
_ELIDED_VALUE = re.compile(r"(?<=[:\[,])\s*\.\.\.(?=\s*[,}\]])")


def expected(shown: str) -> Any:
    """The shown output as JSON, `...` standing for any value; None when it is not JSON."""
    if not shown.startswith(("{", "[")):
        return None
    try:
        return json.loads(_ELIDED_VALUE.sub(lambda _: json.dumps(_ANY), shown))
    except ValueError:
        return None


def matches(actual: Any, shown: Any) -> bool:
    """`actual` is what `shown` shows: equal, except that `...` is any value and a string
    ending in `...` is any string that starts with what precedes it."""
    if shown == _ANY:
        return True
    if isinstance(shown, str) and shown.endswith("...") and isinstance(actual, str):
        return actual.startswith(shown[:-3])
    if isinstance(shown, dict) and isinstance(actual, dict):
        return shown.keys() == actual.keys() and all(matches(actual[k], shown[k]) for k in shown)
    if isinstance(shown, list) and isinstance(actual, list):
        return len(shown) == len(actual) and all(map(matches, actual, shown))
    return type(actual) is type(shown) and actual == shown
