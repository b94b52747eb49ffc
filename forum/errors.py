"""What a failed run's error looks like on the forum, and its signature for grouping.

Pure functions of a submission's stored fields (no queries). The signature is the same for two
runs that failed the same way, whoever wrote them: numbers, addresses, paths and line numbers are
normalised away, and the student's own frames count as one ("<submission>") because every student
names their functions differently. Library frames stay, so a shape error inside ``torch.nn.Linear``
and one inside ``numpy.dot`` are different errors.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import platform
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from grader.models import FailureReason, GradedRun, RunStatus
from grader.results import (
    FRAME,
    TRACEBACK_START,
    TracebackLine,
    exception_line,
    last_traceback,
)

SIGNATURE_LENGTH = 20
EXCEPTION_MAX = 500
LIBRARIES = ("numpy", "torch", "torchvision")
REQUIREMENTS = Path(__file__).resolve().parent.parent / "requirements"

_HEX = re.compile(r"\b0x[0-9a-fA-F]+\b")
_NUMBER = re.compile(r"\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")
_PATH = re.compile(r"(?:/[^\s'\"/:,()\[\]]+)+/([^\s'\"/:,()\[\]]+)")
_SPACES = re.compile(r"\s+")
_LIBRARY_ROOTS = re.compile(r".*/(?:site-packages|dist-packages|lib/python\d+(?:\.\d+)?)/")


@dataclass(frozen=True)
class RunError:
    """The parts of a run a forum post may show: never the code, the log or any data."""

    status: str
    failure_reason: str
    failure_label: str
    summary: str
    traceback: str
    exception: str
    signature: str
    device: str
    libraries: dict[str, str] = field(default_factory=dict)

    @property
    def failed(self) -> bool:
        return self.status == RunStatus.FAILED


def normalise_message(text: str) -> str:
    """An error message with what differs from run to run taken out."""
    text = _HEX.sub("<address>", text)
    text = _PATH.sub(r"\1", text)
    text = _NUMBER.sub("N", text)
    return _SPACES.sub(" ", text).strip()


def _frame_key(line: TracebackLine) -> str:
    match = FRAME.match(line.text)
    if match is None:
        return ""
    if line.mine:
        return "<submission>"
    path = _LIBRARY_ROOTS.sub("", match["path"])
    if path == match["path"]:
        path = path.rsplit("/", 1)[-1]
    return f"{path}:{match['where'] or ''}"


def error_signature(
    *, failure_reason: str, lines: list[TracebackLine], exception: str, message: str
) -> str:
    """The same text for the same kind of failure; empty when the run did not fail."""
    if not failure_reason:
        return ""
    parts = [failure_reason]
    if exception:
        frames: list[str] = []
        for line in lines:
            key = _frame_key(line)
            if key and not (frames and frames[-1] == key == "<submission>"):
                frames.append(key)
        parts += [normalise_message(exception), *frames]
    else:
        first_line = message.split(TRACEBACK_START)[0].strip().splitlines()[:1]
        parts.append(normalise_message(first_line[0]) if first_line else "")
    digest = hashlib.sha256("\n".join(parts).encode()).hexdigest()
    return digest[:SIGNATURE_LENGTH]


@lru_cache(maxsize=1)
def grader_libraries() -> dict[str, str]:
    """The versions student code runs with: the grader's pinned requirements, then what this
    process has installed for any library they do not pin, and the Python version."""
    pinned: dict[str, str] = {}
    for name in ("worker.txt", "base.txt"):
        try:
            text = (REQUIREMENTS / name).read_text()
        except OSError:
            continue
        for line in text.splitlines():
            package, _, version = line.split("#")[0].strip().partition("==")
            if package.lower() in LIBRARIES and version:
                pinned.setdefault(package.lower(), version.strip())
    for package in LIBRARIES:
        if package not in pinned:
            try:
                pinned[package] = importlib.metadata.version(package)
            except importlib.metadata.PackageNotFoundError:
                continue
    return {"python": platform.python_version(), **dict(sorted(pinned.items()))}


def run_error_of(run: GradedRun) -> RunError:
    """What "Ask on the forum" attaches of a finished run. The log is left out (it may print
    anything, data included); only its last traceback is kept."""
    message = run.message or ""
    lines = last_traceback(f"{run.log}\n{message}") if run.status == RunStatus.FAILED else []
    exception = exception_line(lines)[:EXCEPTION_MAX]
    return RunError(
        status=run.status,
        failure_reason=run.failure_reason,
        failure_label=FailureReason(run.failure_reason).label if run.failure_reason else "",
        summary=message.split(TRACEBACK_START)[0].strip(),
        traceback="\n".join(line.text for line in lines),
        exception=exception,
        signature=error_signature(
            failure_reason=run.failure_reason if run.status == RunStatus.FAILED else "",
            lines=lines,
            exception=exception,
            message=message,
        ),
        device=run.device,
        libraries=grader_libraries(),
    )
