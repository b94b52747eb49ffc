"""Code questions: run a student's function against the instructor's tests in the sandbox.

No database here: strings in, a ``CodeGrade`` out. ``courses.services`` decides when to grade and
saves the result. Each answer costs at most two sandbox jobs (``workers.sandbox.run_job``):

- the **visible** tests, whose results (name, passed, message) the student sees;
- the **hidden** tests, in a job of their own, whose output is thrown away but for how many
  passed. The visible job never contains the hidden tests, so the student's code cannot read
  them there; in the hidden job it can read them, but nothing it prints or raises, and no
  message of a hidden test, ever leaves this module: only a count and a generic reason.

The in-sandbox side is ``courses/code_runner.py`` (standard library only).

Trusting the result line. The student's code runs in the same process as the tests, so it could
print a line that looks like the runner's report. Each job therefore gets a fresh random nonce
(128 bits) in a file the runner reads and deletes before it imports the student's code; the nonce
is never in the job's environment or command line, which stay readable in ``/proc``. This side
accepts a report only if it is the *last* line of the output, carries this job's nonce, the job
completed normally, and it lists exactly the tests we asked for, in order; anything else counts
as "the tests did not report" and earns nothing. The runner writes its line and ends the process
at once, so nothing the student scheduled (atexit, threads) can print after it in a correct
solution. A student cannot know the nonce in advance: it exists only for this job.

What this does not claim: code that deliberately inspects the runner's memory (its frames) could
find the nonce, just as it could patch the tests it runs beside. In-process tests cannot be made
tamper-proof; such code is visible to staff on the attempt page, and the hidden tests, which
decide most marks, never reveal anything but a count.
"""

from __future__ import annotations

import ast
import hmac
import json
import secrets
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

from django.conf import settings

from workers.jobs import JobResult, JobSpec, Limits, Outcome
from workers.sandbox import SandboxError, run_job

RUNNER_FILE = "_topdown_runner.py"
RUN_FILE = ".topdown-run.json"  # the runner's RUN_FILE
RESULT_PREFIX = "@@topdown-code-result"  # the runner's RESULT_PREFIX
SOLUTION_FILE = "solution.py"
TESTS_FILE = "tests.py"
RUNNER_SOURCE = (Path(__file__).resolve().parent / "code_runner.py").read_bytes()

CODE_MAX_LENGTH = 20_000
MEMORY_MB = 512
PROCESSES = 16
LOG_BYTES = 1_000_000
MESSAGE_MAX_CHARS = 500
ERROR_MAX_CHARS = 4000
TIME_LIMIT_MIN, TIME_LIMIT_MAX = 1, 60
RUNNING_FEEDBACK = "Running your code…"


class CodeRunUnavailable(Exception):
    """The sandbox could not run the job (the platform's fault, not the student's): try later."""


@dataclass(frozen=True)
class TestResult:
    __test__ = False  # not a pytest test class

    name: str
    passed: bool
    message: str = ""
    timed_out: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "passed": self.passed, "message": self.message}


@dataclass(frozen=True)
class TestRun:
    """One job's verdict: a result per expected test, and why the run failed as a whole."""

    __test__ = False

    results: list[TestResult]
    message: str = ""  # empty when the tests ran and reported
    reason: str = ""  # "", "timeout", "memory", "load", "crashed", "no_report"

    @property
    def reported(self) -> bool:
        return not self.reason

    @property
    def passed(self) -> int:
        return sum(result.passed for result in self.results)

    @property
    def timed_out(self) -> int:
        return sum(result.timed_out for result in self.results)


@dataclass(frozen=True)
class CodeGrade:
    visible: list[TestResult]
    hidden_passed: int = 0
    hidden_total: int = 0
    message: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def passed(self) -> int:
        return sum(result.passed for result in self.visible) + self.hidden_passed

    @property
    def total(self) -> int:
        return len(self.visible) + self.hidden_total

    @property
    def fraction(self) -> Decimal:
        if not self.total:
            return Decimal(0)
        fraction = Decimal(self.passed) / Decimal(self.total)
        return fraction.quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP)

    @property
    def is_correct(self) -> bool:
        return self.total > 0 and self.passed == self.total

    @property
    def feedback(self) -> str:
        if self.is_correct:
            summary = f"All {self.total} tests passed."
        else:
            summary = f"{self.passed} of {self.total} tests passed."
        if self.message:
            summary += " " + self.message.splitlines()[0]
        return summary

    def details(self) -> dict[str, Any]:
        """What ``Answer.details`` stores: nothing of the hidden tests but their count."""
        return {
            "visible": [result.to_dict() for result in self.visible],
            "hidden": {"passed": self.hidden_passed, "total": self.hidden_total},
            "message": "\n\n".join(part for part in [self.message, *self.notes] if part),
        }


# Authoring -------------------------------------------------------------------------------------


def collect_test_names(source: str) -> list[str]:
    """The test functions of ``source`` (top-level ``def test_...``), in definition order.

    Raises ``SyntaxError`` when the source is not valid Python.
    """
    tree = ast.parse(source, TESTS_FILE)
    names = [
        node.name
        for node in tree.body
        if isinstance(node, ast.FunctionDef) and node.name.startswith("test_")
    ]
    return list(dict.fromkeys(names))


def tests_problem(source: str) -> str:
    """Why ``source`` cannot serve as a question's tests, or ``""`` when it can."""
    try:
        compile(source, TESTS_FILE, "exec", dont_inherit=True)
        tree = ast.parse(source, TESTS_FILE)
    except SyntaxError as error:
        return f"is not valid Python: {error.msg} (line {error.lineno})"
    tests = [
        node
        for node in tree.body
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.name.startswith("test_")
    ]
    if not tests:
        return "defines no test function (def test_...():)"
    for node in tests:
        if isinstance(node, ast.AsyncFunctionDef):
            return f"{node.name} is async; test functions must be plain functions"
        arguments = node.args
        required = len(arguments.posonlyargs) + len(arguments.args) - len(arguments.defaults)
        required += sum(default is None for default in arguments.kw_defaults)
        if required:
            return f"{node.name} takes arguments; test functions take none (no fixtures)"
    return ""


def code_problem(source: str, what: str = "the starter code") -> str:
    """Why author-written code is not valid Python, or ``""``."""
    try:
        compile(source, SOLUTION_FILE, "exec", dont_inherit=True)
    except SyntaxError as error:
        return f"{what} is not valid Python: {error.msg} (line {error.lineno})"
    return ""


# Running -----------------------------------------------------------------------------------------


def _sandbox_options() -> dict[str, Any]:
    jobs_dir = getattr(settings, "GRADER_JOBS_DIR", "")
    return {
        "backend": getattr(settings, "GRADER_SANDBOX", "auto"),
        "allow_degraded": getattr(settings, "GRADER_ALLOW_DEGRADED", settings.DEBUG),
        "jobs_root": Path(jobs_dir) if jobs_dir else None,
    }


def _seconds(value: float) -> str:
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.1f}"


# The job's wall clock beyond the tests' time limit: starting the sandbox and Python, loading the
# runner, and reporting. Counting that against a 1 s limit failed every test of a busy worker
# with "took longer than 1 s" before the student's code had run at all.
STARTUP_SECONDS = 2.0


def budget_seconds(time_limit: float) -> float:
    """What the tests may use, from the runner's start: the whole time limit."""
    return float(time_limit)


def _parse_report(log: str, nonce: str, names: list[str]) -> dict[str, Any] | None:
    """The runner's report if the output's last line is one for this job, else ``None``."""
    lines = [line for line in log.split("\n") if line.strip()]
    if not lines:
        return None
    prefix, _, rest = lines[-1].partition(" ")
    given, _, payload = rest.partition(" ")
    if prefix != RESULT_PREFIX or not hmac.compare_digest(given.encode(), nonce.encode()):
        return None
    try:
        report = json.loads(payload)
    except ValueError:
        return None
    if not isinstance(report, dict):
        return None
    error, results = report.get("error"), report.get("results")
    if error is not None and not isinstance(error, str):
        return None
    if not isinstance(results, list) or (error is None and len(results) != len(names)):
        return None
    for result, name in zip(results, names, strict=False):
        if not (
            isinstance(result, dict)
            and result.get("name") == name
            and isinstance(result.get("passed"), bool)
            and isinstance(result.get("message"), str)
            and isinstance(result.get("timed_out"), bool)
        ):
            return None
    return report


def _not_run(names: list[str]) -> list[TestResult]:
    return [TestResult(name, False, "Not run.") for name in names]


def _verdict(result: JobResult, *, nonce: str, names: list[str], time_limit: int) -> TestRun:
    if result.outcome is Outcome.INFRASTRUCTURE:
        raise CodeRunUnavailable(result.message)
    if result.outcome is Outcome.TIMEOUT:
        message = f"Your code took longer than {_seconds(time_limit)} s."
        return TestRun(_not_run(names), message, "timeout")
    if result.outcome is Outcome.MEMORY:
        message = f"Your code ran out of memory (the limit is {MEMORY_MB} MB)."
        return TestRun(_not_run(names), message, "memory")
    if result.outcome is Outcome.CRASHED:
        message = "Your code stopped the tests before they finished. " + result.message
        return TestRun(_not_run(names), message[:ERROR_MAX_CHARS], "crashed")
    report = _parse_report(result.log, nonce, names)
    if report is None:
        if result.log_dropped_bytes:
            message = (
                f"Your code printed more than {LOG_BYTES // 1000} KB of output, and the test "
                "results were lost with it. Print less."
            )
        else:
            message = (
                "The tests did not report their results: did your code end the program "
                "(exit) or print after the tests ran?"
            )
        return TestRun(_not_run(names), message, "no_report")
    if report["error"] is not None:
        return TestRun(_not_run(names), report["error"][:ERROR_MAX_CHARS], "load")
    results = [
        TestResult(r["name"], r["passed"], r["message"][:MESSAGE_MAX_CHARS], r["timed_out"])
        for r in report["results"]
    ]
    return TestRun(results)


def run_tests(*, code: str, tests: str, time_limit: int, job_id: str) -> TestRun:
    """Run ``tests`` against ``code`` in one sandbox job. Raises ``CodeRunUnavailable``."""
    names = collect_test_names(tests)
    nonce = secrets.token_hex(16)
    run_file = {
        "nonce": nonce,
        "tests": names,
        "limit_seconds": time_limit,
        "budget_seconds": budget_seconds(time_limit),
    }
    spec = JobSpec(
        job_id=job_id,
        files={
            RUNNER_FILE: RUNNER_SOURCE,
            RUN_FILE: json.dumps(run_file).encode(),
            SOLUTION_FILE: code.encode("utf-8", "replace"),
            TESTS_FILE: tests.encode(),
        },
        entrypoint=RUNNER_FILE,
        limits=Limits(
            wall_seconds=time_limit + STARTUP_SECONDS,
            memory_mb=MEMORY_MB,
            processes=PROCESSES,
            log_bytes=LOG_BYTES,
        ),
    )
    try:
        result = run_job(spec, **_sandbox_options())
    except SandboxError as error:
        raise CodeRunUnavailable(str(error)) from error
    try:
        return _verdict(result, nonce=nonce, names=names, time_limit=time_limit)
    finally:
        result.cleanup()


HIDDEN_REASONS = {
    "timeout": "Your code took longer than {limit} s on the hidden tests.",
    "memory": "Your code ran out of memory on the hidden tests.",
}
HIDDEN_FAILED = "Your code failed on the hidden tests before they could report."


def grade_code(
    *, code: str, visible_tests: str, hidden_tests: str, time_limit: int, job_id: str
) -> CodeGrade:
    """Grade one answer: the visible tests, then (if they could run) the hidden ones.

    The grade keeps the visible tests' results and only the number of hidden tests that passed.
    Raises ``CodeRunUnavailable`` when the sandbox cannot run a job.
    """
    visible_names = collect_test_names(visible_tests) if visible_tests.strip() else []
    hidden_names = collect_test_names(hidden_tests) if hidden_tests.strip() else []
    visible = TestRun([])
    if visible_names:
        visible = run_tests(
            code=code, tests=visible_tests, time_limit=time_limit, job_id=f"{job_id}-visible"
        )
    limit = _seconds(time_limit)
    message = visible.message
    if visible.timed_out:
        message = (
            f"Your code took longer than its share of the {limit} s time limit on "
            f"{visible.timed_out} of {len(visible_names)} tests: is there a loop that never ends?"
        )
    notes = []
    hidden_passed = 0
    if hidden_names and visible.reported:
        hidden = run_tests(
            code=code, tests=hidden_tests, time_limit=time_limit, job_id=f"{job_id}-hidden"
        )
        hidden_passed = hidden.passed
        if not hidden.reported:
            notes.append(HIDDEN_REASONS.get(hidden.reason, HIDDEN_FAILED).format(limit=limit))
        elif hidden.timed_out:
            notes.append(
                f"Your code took longer than its share of the time limit on {hidden.timed_out} "
                f"of {len(hidden_names)} hidden tests."
            )
    elif hidden_names:
        notes.append("The hidden tests were not run, because the tests above could not run.")
    return CodeGrade(
        visible=visible.results,
        hidden_passed=hidden_passed,
        hidden_total=len(hidden_names),
        message=message,
        notes=notes,
    )
