"""Import further-research assignments from a folder (git-friendly, like course folders).

    <slug>/assignment.toml     settings and the markdown description
    <slug>/starter.py          optional starter code
    <slug>/baselines/*.py      baseline code, each named in assignment.toml:
                               [[baselines]] name = "...", file = "baselines/x.py", description

Idempotent: assignments match by slug, baselines by name; only changed fields are written.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from django.db import transaction

from courses.models import Chapter
from grader.models import Assignment, Baseline, Dataset


class AssignmentFolderError(Exception):
    """The folder is not a valid assignment; the message names the file and the problem."""


def _update(instance: Any, values: dict[str, Any]) -> bool:
    changed = [k for k, v in values.items() if getattr(instance, k) != v]
    for key in changed:
        setattr(instance, key, values[key])
    if changed:
        instance.full_clean()
        instance.save()
    return bool(changed)


@transaction.atomic
def assignment_folder_import(folder: Path) -> tuple[Assignment, bool]:
    """Create or update one assignment and its baselines; say whether anything changed."""
    try:
        config = tomllib.loads((folder / "assignment.toml").read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise AssignmentFolderError(f"{folder / 'assignment.toml'}: {error}") from None
    try:
        chapter = Chapter.objects.get(course__slug=config["course"], slug=config["chapter"])
        dataset = Dataset.objects.filter(slug=config["dataset"]).latest("version")
    except (KeyError, Chapter.DoesNotExist, Dataset.DoesNotExist) as error:
        raise AssignmentFolderError(
            f"{folder}: course, chapter or dataset not found ({error})"
        ) from None
    starter = folder / "starter.py"
    values = {
        "chapter": chapter,
        "title": config["title"],
        "description": config.get("description", "").strip(),
        "starter_code": starter.read_text(encoding="utf-8") if starter.exists() else "",
        "dataset": dataset,
        "metric": config.get("metric", "accuracy"),
        "wall_seconds": int(config.get("wall_seconds", 600)),
        "memory_mb": int(config.get("memory_mb", 4096)),
        "needs_gpu": bool(config.get("needs_gpu", False)),
        "submissions_per_day": int(config.get("submissions_per_day", 0)),
    }
    assignment = Assignment.objects.filter(slug=config["slug"]).first()
    created = assignment is None
    if assignment is None:
        assignment = Assignment(slug=config["slug"], **values)
        assignment.full_clean()
        assignment.save()
        changed = True
    else:
        changed = _update(assignment, values)

    for entry in config.get("baselines", []):
        path = folder / entry["file"]
        try:
            code = path.read_text(encoding="utf-8")
        except OSError as error:
            raise AssignmentFolderError(f"{path}: {error}") from None
        fields = {
            "code": code,
            "filename": path.name,
            "description": entry.get("description", ""),
        }
        baseline = Baseline.objects.filter(assignment=assignment, name=entry["name"]).first()
        if baseline is None:
            Baseline.objects.create(assignment=assignment, name=entry["name"], **fields)
            changed = True
        else:
            changed |= _update(baseline, fields)

    rule = {
        "pass_rule": config.get("pass_rule", "none"),
        "pass_threshold": config.get("pass_threshold"),
    }
    rule["pass_baseline"] = (
        Baseline.objects.get(assignment=assignment, name=config["pass_baseline"])
        if config.get("pass_baseline")
        else None
    )
    changed |= _update(assignment, rule)
    return assignment, changed or created
