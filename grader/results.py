"""How a finished run reads to a student: margins over the baselines, the pass rule, the classes
it confuses, the curves it logged, and for a failure, the traceback and a hint in plain words.

Pure functions of a run's stored fields (no queries), so the result page, the forum's "ask about
this run" and the tests share them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from grader.metrics import Direction, Metric
from grader.models import Assignment, FailureReason, GradedRun, RunStatus
from grader.pipeline import SCRIPT_NAME

# Metrics between 0 and 1 read best as percentages, and their margins as points.
SHARE_METRICS = {"accuracy", "top5_accuracy", "macro_f1"}
CURVE_AXES = ("epoch", "step", "iteration", "batch")
MAX_CURVES = 6
TRACEBACK_START = "Traceback (most recent call last):"
FRAME = re.compile(r'^\s*File "(?P<path>[^"]+)", line (?P<line>\d+)(?:, in (?P<where>.+))?$')


def format_duration(start: datetime | None, end: datetime | None) -> str:
    """ "4.2 s", "3 min 5 s", "1 h 2 min"; empty when the run has not both started and ended."""
    if start is None or end is None:
        return ""
    seconds = max((end - start).total_seconds(), 0.0)
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, seconds = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {seconds} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


@dataclass(frozen=True)
class Margin:
    name: str
    score: float
    margin: float  # the student's score minus the baseline's
    beaten: bool
    text: str  # "+14.2 points over pixel similarity"


def format_score(metric: Metric, value: float | None) -> str:
    if value is None:
        return "\u2013"
    if metric.name in SHARE_METRICS:
        return f"{value * 100:.2f}%"
    return f"{value:.4g}"


def margin_text(metric: Metric, margin: float, baseline: str) -> str:
    if metric.name in SHARE_METRICS:
        points = margin * 100
        amount = f"{abs(points):.1f} point{'s' if round(abs(points), 1) != 1 else ''}"
    else:
        amount = f"{abs(margin):.4g}"
    if margin == 0:
        return f"level with {baseline}"
    better = metric.better(margin, than=0)
    sign = "+" if margin > 0 else "\u2212"
    return f"{sign}{amount} {'over' if better else 'behind'} {baseline}"


def baseline_margins(
    *, metric: Metric, score: float | None, baselines: Sequence[tuple[str, float]]
) -> list[Margin]:
    if score is None:
        return []
    return [
        Margin(
            name=name,
            score=value,
            margin=score - value,
            beaten=metric.better(score, than=value),
            text=margin_text(metric, score - value, name),
        )
        for name, value in baselines
    ]


@dataclass(frozen=True)
class PassVerdict:
    passed: bool
    rule: str  # "beat linear model (91.20%)"


def pass_verdict(
    *, assignment: Assignment, score: float | None, baselines: Sequence[tuple[str, float]]
) -> PassVerdict | None:
    """``None`` when the assignment has no pass mark, or the rule's baseline has no score yet."""
    metric = assignment.metric_spec
    if score is None:
        return None
    if (
        assignment.pass_rule == Assignment.PassRule.THRESHOLD
        and assignment.pass_threshold is not None
    ):
        threshold = assignment.pass_threshold
        reached = score == threshold or metric.better(score, than=threshold)
        word = "at least" if metric.direction == Direction.HIGHER_IS_BETTER else "at most"
        return PassVerdict(reached, f"reach {word} {format_score(metric, threshold)}")
    if assignment.pass_rule == Assignment.PassRule.BEAT_BASELINE and assignment.pass_baseline_id:
        name = assignment.pass_baseline.name if assignment.pass_baseline else ""
        scores = dict(baselines)
        if name not in scores:
            return None
        return PassVerdict(
            metric.better(score, than=scores[name]),
            f"beat {name} ({format_score(metric, scores[name])})",
        )
    return None


@dataclass(frozen=True)
class ConfusedPair:
    true: str
    predicted: str
    count: int
    share: float  # of the true class's test images


def most_confused_pairs(
    matrix: Sequence[Sequence[int]], class_names: Sequence[str], *, top: int = 5
) -> list[ConfusedPair]:
    pairs = []
    for i, row in enumerate(matrix):
        total = sum(row)
        for j, count in enumerate(row):
            if i != j and count > 0:
                pairs.append(ConfusedPair(class_names[i], class_names[j], count, count / total))
    pairs.sort(key=lambda pair: (-pair.count, -pair.share, pair.true, pair.predicted))
    return pairs[:top]


@dataclass(frozen=True)
class Curve:
    name: str  # the metric's name, e.g. "loss"
    x_name: str  # what it is plotted against: an epoch, a step, or the point's number
    points: list[tuple[float, float]]


def metric_curves(metrics: Sequence[dict[str, Any]]) -> list[Curve]:
    """One curve per logged name, against the first axis name found in the points (``epoch``,
    ``step``...), else against the point's order. ``t`` (the harness's timestamp) is no curve."""
    points = [point for point in metrics if isinstance(point, dict)]
    x_name = next((axis for axis in CURVE_AXES if any(axis in p for p in points)), "")
    names: list[str] = []
    for point in points:
        for key in point:
            if key not in names and key != "t" and key not in CURVE_AXES:
                names.append(key)
    curves = []
    for name in names[:MAX_CURVES]:
        series = []
        for index, point in enumerate(points, start=1):
            value = point.get(name)
            x = point.get(x_name) if x_name else index
            if isinstance(value, int | float) and isinstance(x, int | float):
                series.append((float(x), float(value)))
        if series:
            curves.append(Curve(name, x_name or "logged point", series))
    return curves


@dataclass(frozen=True)
class TracebackLine:
    text: str
    mine: bool  # a frame in the student's own file
    frame: bool


def last_traceback(text: str) -> list[TracebackLine]:
    """The last Python traceback in ``text``, its frames in the student's file marked."""
    start = text.rfind(TRACEBACK_START)
    if start < 0:
        return []
    lines = text[start:].splitlines()
    block: list[str] = [lines[0]]
    for line in lines[1:]:
        block.append(line)
        if line and not line.startswith((" ", "\t")) and line != TRACEBACK_START:
            break  # the exception line ends the traceback
    result = []
    mine = False
    for line in block:
        match = FRAME.match(line)
        if match:
            mine = _is_student_file(match["path"])
            result.append(TracebackLine(line, mine, True))
        else:
            # The source line under a frame belongs to it; other lines end the frame.
            belongs = line.startswith("    ") and mine
            result.append(TracebackLine(line, belongs, False))
            if not line.startswith("    "):
                mine = False
    return result


def _is_student_file(path: str) -> bool:
    return path in (SCRIPT_NAME, f"/work/{SCRIPT_NAME}") or path.endswith(f"/work/{SCRIPT_NAME}")


def exception_line(lines: Sequence[TracebackLine]) -> str:
    return lines[-1].text if lines and not lines[-1].frame else ""


def failure_hint(*, run: GradedRun, exception: str, memory_mb: int, wall_seconds: int) -> str:
    """What to try next, in plain words, for the common ways a run fails."""
    reason, message = run.failure_reason, run.message
    if run.status != RunStatus.FAILED:
        return ""
    if reason == FailureReason.TIMEOUT:
        return (
            f"Your code ran past the time limit ({wall_seconds} s). Train for fewer epochs or on "
            "a sample of the training set first, vectorise Python loops with NumPy or PyTorch, "
            "and print progress so you can see where the time goes."
        )
    if reason == FailureReason.MEMORY:
        if "GPU" in message or "CUDA" in exception:
            return (
                "The GPU ran out of memory: use a smaller batch size or a smaller model, and "
                "wrap evaluation in torch.no_grad()."
            )
        return (
            f"Your code used more than the {memory_mb} MB it may use. Work in batches instead of "
            "all at once, use float32 instead of float64, and avoid copies of the whole dataset "
            "(for example a distance matrix between every test and every training image)."
        )
    missing = re.search(r"No module named '([^']+)'", exception)
    if missing:
        return (
            f"The package {missing[1].split('.')[0]!r} is not installed in the grader. "
            "Use NumPy, PyTorch, torchvision and the Python standard library, or implement what "
            "you need yourself."
        )
    if reason == FailureReason.INVALID_OUTPUT:
        if "no predictions" in message.lower() or "did not save" in message.lower():
            return (
                "Your code ran but saved no predictions. End it with "
                "topdown_task.save_predictions(predictions), one prediction per test input."
            )
        if "rows" in message or "shape" in message or "length" in message:
            return (
                "Your predictions have the wrong shape: save one label (or one row of class "
                "scores) per test input, in the order of topdown_task.load('test_inputs')."
            )
        return "Check what you pass to topdown_task.save_predictions: " + message
    if "CUDA" in exception and "available" in exception:
        return (
            "This run had no GPU. Use torch.device(topdown_task.device()) so your code runs on "
            "the CPU when there is no GPU."
        )
    if exception.startswith(
        ("NameError", "AttributeError", "TypeError", "ValueError", "IndexError")
    ):
        return (
            "Your code raised an error: the highlighted lines of the traceback are yours. "
            "Run it on your machine with the starter's data loading to reproduce it."
        )
    if reason == FailureReason.INFRASTRUCTURE:
        return "This was our fault, not yours: it does not count against your daily submissions."
    return ""
