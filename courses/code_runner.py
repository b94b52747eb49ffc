"""Runs a code question's tests inside the sandbox. Standard library only; Django never imports it.

``courses.code_questions`` copies this file into the job as its entrypoint, beside the student's
``solution.py``, the instructor's ``tests.py`` and a run file (``.topdown-run.json``) holding a
nonce, the time budget and the names of the tests to run, in order. It then:

1. reads the run file and deletes it, before any of the student's code runs;
2. imports ``solution`` and executes ``tests.py`` in a module that starts with the solution's
   public names (as after ``from solution import *``); plain ``assert a == b`` statements are
   rewritten to say what both sides were when they fail;
3. runs each test under a timer (SIGALRM): a test may use the time the earlier ones left, split
   evenly among the tests still to run, so one infinite loop cannot take every test down with it;
4. writes one line, ``@@topdown-code-result <nonce> <json>``, with ``{"results": [{name, passed,
   message, timed_out}], "error": ...}`` (``error``: why no test could run), then ends the
   process at once (``os._exit``), so nothing of the student's (atexit handlers, threads) can
   print after it.

The trusted side accepts that line only as the last line of the output and only with the nonce
it generated for this job. The student's code can print anything, but it runs after the nonce
left the disk, and cannot guess it: a printed, forged result is refused (see
``courses.code_questions`` for what this does and does not protect against).
"""

from __future__ import annotations

import ast
import contextlib
import importlib
import json
import os
import signal
import sys
import time
import traceback
import types
from typing import Any

RUN_FILE = ".topdown-run.json"
RESULT_PREFIX = "@@topdown-code-result"
SOLUTION_MODULE = "solution"
TESTS_MODULE = "tests"
TESTS_FILE = "tests.py"
OWN_FILES = ("solution.py", TESTS_FILE)
MESSAGE_MAX_CHARS = 500
ERROR_MAX_CHARS = 3000
REPR_MAX_CHARS = 200
LINE_MAX_BYTES = 60_000  # the worker splits longer lines


class OutOfTime(BaseException):
    """Raised by the timer. Not an ``Exception``: ``except Exception`` in a solution lets it by."""


_timer = {"fired": False}


def _on_alarm(_signum: int, _frame: Any) -> None:
    _timer["fired"] = True
    raise OutOfTime


def _arm(seconds: float) -> None:
    _timer["fired"] = False
    signal.setitimer(signal.ITIMER_REAL, max(seconds, 0.001))


def _disarm() -> None:
    signal.setitimer(signal.ITIMER_REAL, 0)


def _seconds(value: float) -> str:
    return f"{value:.0f}" if value >= 10 or float(value).is_integer() else f"{value:.1f}"


def _truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def safe_repr(value: object) -> str:
    try:
        text = repr(value)
    except OutOfTime:
        raise
    except BaseException:
        text = f"<{type(value).__name__} that cannot be printed>"
    return _truncate(text, REPR_MAX_CHARS)


# Assertion messages ------------------------------------------------------------------------------


def explain(source: str, left: object, right: object) -> str:
    """The message of a failed ``assert left <op> right``: the statement and both values."""
    return f"{source}\n  left:  {safe_repr(left)}\n  right: {safe_repr(right)}"


class ExplainAsserts(ast.NodeTransformer):
    """``assert f(x) == 3`` without a message becomes: evaluate both sides once, in the same
    order as before, then assert with a message built from the source and both values."""

    def __init__(self, source: str) -> None:
        self.source = source

    def visit_Assert(self, node: ast.Assert) -> Any:
        if node.msg is not None:
            return node
        text = ast.get_source_segment(self.source, node) or "assert ..."
        text = _truncate(" ".join(text.split()), 300)
        test = node.test
        if not (isinstance(test, ast.Compare) and len(test.ops) == 1):
            node.msg = ast.copy_location(ast.Constant(text), node)
            return node
        left = ast.Name("_topdown_left", ast.Store())
        right = ast.Name("_topdown_right", ast.Store())
        statements = [
            ast.Assign(targets=[left], value=test.left),
            ast.Assign(targets=[right], value=test.comparators[0]),
            ast.Assert(
                test=ast.Compare(
                    left=ast.Name("_topdown_left", ast.Load()),
                    ops=test.ops,
                    comparators=[ast.Name("_topdown_right", ast.Load())],
                ),
                msg=ast.Call(
                    func=ast.Name("_topdown_explain", ast.Load()),
                    args=[
                        ast.Constant(text),
                        ast.Name("_topdown_left", ast.Load()),
                        ast.Name("_topdown_right", ast.Load()),
                    ],
                    keywords=[],
                ),
            ),
        ]
        for statement in statements:
            ast.copy_location(statement, node)
            ast.fix_missing_locations(statement)
        return statements


# Loading and running -----------------------------------------------------------------------------


def _short_file(filename: str) -> str:
    return os.path.basename(filename)


def describe_error(error: BaseException) -> str:
    """A traceback through the solution and the tests only (not this runner, not importlib)."""
    frames = [
        frame
        for frame in traceback.extract_tb(error.__traceback__)
        if _short_file(frame.filename) in OWN_FILES
    ]
    for frame in frames:
        frame.filename = _short_file(frame.filename)
    if isinstance(error, SyntaxError) and error.filename:
        error.filename = _short_file(error.filename)
    lines = []
    if frames:
        lines = ["Traceback (most recent call last):\n", *traceback.format_list(frames)]
    try:
        lines += traceback.format_exception_only(type(error), error)
    except OutOfTime:
        raise
    except BaseException:
        lines.append(f"{type(error).__name__}\n")
    text = "".join(lines).rstrip()
    return text if len(text) <= ERROR_MAX_CHARS else "…" + text[-(ERROR_MAX_CHARS - 1) :]


def failure_message(error: BaseException) -> str:
    """What a failed test says: the assertion's message, or the exception and where it came from."""
    if isinstance(error, AssertionError):
        try:
            text = str(error)
        except OutOfTime:
            raise
        except BaseException:
            text = ""
        return _truncate(text or "assert failed", MESSAGE_MAX_CHARS)
    try:
        detail = str(error)
    except OutOfTime:
        raise
    except BaseException:
        detail = ""
    text = f"{type(error).__name__}: {detail}" if detail else type(error).__name__
    frames = [
        frame
        for frame in traceback.extract_tb(error.__traceback__)
        if _short_file(frame.filename) in OWN_FILES
    ]
    if frames:
        text += f" ({_short_file(frames[-1].filename)}, line {frames[-1].lineno})"
    return _truncate(text, MESSAGE_MAX_CHARS)


def load_tests() -> types.ModuleType:
    solution = importlib.import_module(SOLUTION_MODULE)
    module = types.ModuleType(TESTS_MODULE)
    module.__file__ = TESTS_FILE
    exported = getattr(solution, "__all__", None)
    if isinstance(exported, list | tuple):
        names = [name for name in exported if isinstance(name, str)]
    else:
        names = [name for name in vars(solution) if not name.startswith("_")]
    for name in names:
        if hasattr(solution, name):
            setattr(module, name, getattr(solution, name))
    module.solution = solution  # type: ignore[attr-defined]
    module._topdown_explain = explain  # type: ignore[attr-defined]
    sys.modules[TESTS_MODULE] = module
    with open(TESTS_FILE, encoding="utf-8") as handle:
        source = handle.read()
    tree = ast.fix_missing_locations(ExplainAsserts(source).visit(ast.parse(source, TESTS_FILE)))
    exec(compile(tree, TESTS_FILE, "exec"), module.__dict__)  # noqa: S102 - the course's tests
    return module


def run_tests(
    module: types.ModuleType, names: list[str], deadline: float, limit: float
) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    for index, name in enumerate(names):
        share = (deadline - time.monotonic()) / (len(names) - index)
        function = module.__dict__.get(name)
        if not callable(function):
            message = "This test was not found."
            results.append({"name": name, "passed": False, "message": message, "timed_out": False})
            continue
        if share < 0.01:
            message = f"Not run: the {_seconds(limit)} s time limit was used up."
            results.append({"name": name, "passed": False, "message": message, "timed_out": True})
            continue
        passed, message, timed_out = False, "", False
        try:
            _arm(share)
            try:
                function()
                passed = True
            except OutOfTime:
                raise
            except BaseException as error:  # a test may fail any way it likes, SystemExit too
                message = failure_message(error)
            finally:
                _disarm()
        except OutOfTime:
            _disarm()
        if _timer["fired"]:  # also when the solution caught the timer's exception
            passed, timed_out = False, True
            message = (
                f"Your code took longer than {_seconds(share)} s on this test "
                f"(the {_seconds(limit)} s time limit is shared by all the tests)."
            )
        results.append({"name": name, "passed": passed, "message": message, "timed_out": timed_out})
    return results


def encode_report(nonce: str, report: dict[str, Any]) -> bytes:
    """The result line, kept under the worker's line length by shortening messages if needed."""
    for cap in (None, 100, 0):
        if cap is not None:
            for result in report["results"]:
                result["message"] = _truncate(result["message"], cap) if cap else ""
            if report.get("error"):
                report["error"] = _truncate(report["error"], 1000 if cap else 200)
        line = f"\n{RESULT_PREFIX} {nonce} {json.dumps(report)}\n".encode()
        if len(line) <= LINE_MAX_BYTES:
            break
    return line


def main() -> None:
    started = time.monotonic()
    write, exit_now = os.write, os._exit  # ours, before the solution can replace them
    with open(RUN_FILE, encoding="utf-8") as handle:
        run = json.load(handle)
    os.unlink(RUN_FILE)
    nonce, names = str(run["nonce"]), [str(name) for name in run["tests"]]
    limit = float(run["limit_seconds"])
    deadline = started + float(run["budget_seconds"])
    signal.signal(signal.SIGALRM, _on_alarm)
    report: dict[str, Any] = {"results": [], "error": None}
    try:
        try:
            _arm(deadline - time.monotonic())
            try:
                module = load_tests()
            finally:
                _disarm()
        except OutOfTime:
            report["error"] = f"Your code took longer than {_seconds(limit)} s to load."
        except BaseException as error:  # whatever the solution raised while loading
            report["error"] = "Your code could not be loaded:\n\n" + describe_error(error)
        else:
            report["results"] = run_tests(module, names, deadline, limit)
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):  # a stream the solution broke; ours is fd 1
                stream.flush()
    except OutOfTime:  # a timer that went off between two of our own steps
        report["error"] = report["error"] or "The tests were interrupted by the time limit."
    line = encode_report(nonce, report)
    while line:
        line = line[write(1, line) :]
    exit_now(0)


if __name__ == "__main__":
    main()
