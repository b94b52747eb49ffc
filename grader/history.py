"""A student's submissions to one assignment over time, and the difference between two of them."""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from datetime import datetime

from accounts.models import User
from grader.leaderboards import private_split_revealed
from grader.models import Assignment, CodeKind, Submission
from grader.pipeline import CodeInvalid, script_for

HISTORY_FIELDS = (
    "id",
    "user_id",
    "assignment_id",
    "status",
    "failure_reason",
    "public_score",
    "created_at",
    "filename",
    "code_kind",
)
CONTEXT_LINES = 3
# difflib is quadratic at worst; past this many lines a page would take seconds to build.
MAX_DIFF_LINES = 20_000


def submissions_for_history(
    *, assignment: Assignment, student: User, now: datetime
) -> list[Submission]:
    """Every submission of ``student`` to ``assignment``, newest first, without code or logs.

    The private score is loaded only once the private split is revealed (after the due date),
    so a page cannot show it by mistake before then.
    """
    fields = list(HISTORY_FIELDS)
    if private_split_revealed(assignment=assignment, now=now):
        fields.append("private_score")
    return list(
        Submission.objects.filter(assignment=assignment, user=student)
        .only(*fields)
        .order_by("-created_at", "-id")
    )


# --- Diff ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DiffLine:
    kind: str  # "context", "added" or "removed"
    text: str
    old_number: int | None = None
    new_number: int | None = None


@dataclass(frozen=True)
class DiffRow:
    """One row of the side-by-side view; a side is None where the other added or removed."""

    old: DiffLine | None
    new: DiffLine | None


@dataclass(frozen=True)
class DiffHunk:
    header: str
    lines: list[DiffLine]  # unified order: removed lines before the added ones replacing them
    rows: list[DiffRow]


@dataclass
class CodeDiff:
    hunks: list[DiffHunk] = field(default_factory=list)
    added: int = 0
    removed: int = 0
    notes: list[str] = field(default_factory=list)
    too_large: bool = False

    @property
    def identical(self) -> bool:
        return not self.too_large and not self.hunks


def _compared_text(submission: Submission) -> tuple[str, str | None]:
    """The code the grader runs (a notebook's script), with a note when it is not the upload."""
    if submission.code_kind != CodeKind.IPYNB:
        return submission.code, None
    try:
        script, _ = script_for(code=submission.code, kind=submission.code_kind)
    except CodeInvalid as error:
        return submission.code, f"Submission {submission.pk}: {error} Comparing the file as is."
    return script, f"Submission {submission.pk} is a notebook: compared as the script it runs."


def _hunk(
    opcodes: list[tuple[str, int, int, int, int]], old: list[str], new: list[str]
) -> DiffHunk:
    first, last = opcodes[0], opcodes[-1]
    old_start, old_end, new_start, new_end = first[1], last[2], first[3], last[4]
    header = f"@@ -{old_start + 1},{old_end - old_start} +{new_start + 1},{new_end - new_start} @@"
    lines: list[DiffLine] = []
    rows: list[DiffRow] = []
    for tag, i1, i2, j1, j2 in opcodes:
        if tag == "equal":
            for offset in range(i2 - i1):
                line = DiffLine("context", old[i1 + offset], i1 + offset + 1, j1 + offset + 1)
                lines.append(line)
                rows.append(DiffRow(line, line))
            continue
        removed = [DiffLine("removed", old[i], old_number=i + 1) for i in range(i1, i2)]
        added = [DiffLine("added", new[j], new_number=j + 1) for j in range(j1, j2)]
        lines += removed + added
        for index in range(max(len(removed), len(added))):
            rows.append(
                DiffRow(
                    removed[index] if index < len(removed) else None,
                    added[index] if index < len(added) else None,
                )
            )
    return DiffHunk(header=header, lines=lines, rows=rows)


def code_diff(*, old: Submission, new: Submission, context: int = CONTEXT_LINES) -> CodeDiff:
    """What changed from ``old``'s code to ``new``'s, in hunks with ``context`` lines around.

    Notebooks are compared as the script the grader runs, so outputs and cell metadata do not
    drown the change in code.
    """
    diff = CodeDiff()
    old_text, old_note = _compared_text(old)
    new_text, new_note = _compared_text(new)
    diff.notes = [note for note in (old_note, new_note) if note]
    old_lines, new_lines = old_text.splitlines(), new_text.splitlines()
    if max(len(old_lines), len(new_lines)) > MAX_DIFF_LINES:
        diff.too_large = True
        return diff
    matcher = difflib.SequenceMatcher(a=old_lines, b=new_lines, autojunk=False)
    for group in matcher.get_grouped_opcodes(context):
        hunk = _hunk(group, old_lines, new_lines)
        diff.hunks.append(hunk)
        diff.added += sum(1 for line in hunk.lines if line.kind == "added")
        diff.removed += sum(1 for line in hunk.lines if line.kind == "removed")
    return diff
