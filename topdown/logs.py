"""Log records that say which graded run they belong to, and a JSON formatter.

``grading_log_context(submission_id=...)`` (or ``baseline_run_id=...``) sets a context variable
for the grading of one run; a log record factory copies it onto every record created meanwhile,
whoever logs it (our code, Celery, the sandbox), so a log collector can find every line of one
submission. Threads started during grading inherit it only when started with the context
(``contextvars.copy_context().run``), as ``grader.live.RunKeeper`` is.
"""

from __future__ import annotations

import contextvars
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

CONTEXT_FIELDS = ("submission_id", "baseline_run_id")

_grading: contextvars.ContextVar[dict[str, int] | None] = contextvars.ContextVar(
    "topdown_grading", default=None
)


@contextmanager
def grading_log_context(**ids: int) -> Iterator[None]:
    """Every record logged inside carries these ids (``submission_id``, ``baseline_run_id``)."""
    unknown = set(ids) - set(CONTEXT_FIELDS)
    if unknown:
        raise ValueError(f"unknown grading log field(s): {', '.join(sorted(unknown))}")
    token = _grading.set({**(_grading.get() or {}), **ids})
    try:
        yield
    finally:
        _grading.reset(token)


def current_grading_ids() -> dict[str, int]:
    return dict(_grading.get() or {})


_base_factory = logging.getLogRecordFactory()


def _record_factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
    record = _base_factory(*args, **kwargs)
    ids = _grading.get()
    if ids:
        for name, value in ids.items():
            setattr(record, name, value)
    return record


def install_record_factory() -> None:
    """Idempotent: the factory wraps whatever factory was in place before it."""
    if logging.getLogRecordFactory() is not _record_factory:
        logging.setLogRecordFactory(_record_factory)


install_record_factory()


class PlainFormatter(logging.Formatter):
    """The usual one-line format, with ``[submission 12]`` when the record has one."""

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        tags = [
            f"{name.removesuffix('_id').replace('_', ' ')} {getattr(record, name)}"
            for name in CONTEXT_FIELDS
            if getattr(record, name, None) is not None
        ]
        if not tags:
            return line
        first, newline, rest = line.partition("\n")
        return f"{first} [{', '.join(tags)}]{newline}{rest}"


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time (UTC, ISO 8601), level, logger, message, the grading ids
    when set, the process and thread, and the traceback as one string."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, tz=UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in CONTEXT_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                entry[name] = value
        entry["process"] = record.process
        entry["thread"] = record.threadName
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, default=str)
