"""The course folder format (docs/course-format.md): read and validate a folder, write one.

Reading gives a ``CourseSpec``, a plain description of the course that touches no database;
``courses.course_folder`` imports it and builds one from a course for export. Every file is
checked against ``courses/schemas/course-format.schema.json`` and then by the rules a schema
cannot express (exactly one correct choice, tests that parse, ids unique...). All problems of the
whole folder are collected, each naming its file and field, before anything is written.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError as SchemaError

from courses.code_questions import code_problem, tests_problem

SCHEMA_PATH = Path(__file__).resolve().parent / "schemas" / "course-format.schema.json"
# A YAML, markdown or code file larger than this is refused before parsing: it also bounds what
# a hostile file can cost (aliases, which could multiply it, are refused outright).
FILE_MAX_BYTES = 1024 * 1024
FRONT_MATTER_RE = re.compile(r"\A---[ \t]*\n(.*?)^---[ \t]*(?:\n|\Z)", re.DOTALL | re.MULTILINE)

COURSE_FILE = "course.yaml"
CHAPTER_FILE = "chapter.md"
QUESTIONNAIRE_FILE = "questionnaire.yaml"
ASSIGNMENT_FILE = "assignment.yaml"
STARTER_FILE = "starter.py"

# What each field of a question is for; a field of another kind is an error, not ignored.
KIND_FIELDS = {
    "single": {"choices"},
    "multiple": {"choices"},
    "true_false": {"answer"},
    "numeric": {"answer", "tolerance", "tolerance_mode"},
    "short_text": {"accepted", "regex"},
    "free_text": {"reference", "rubric"},
    "code": {"starter", "tests", "hidden_tests", "time_limit"},
}
COMMON_QUESTION_FIELDS = {"id", "kind", "prompt", "explanation", "points"}

QUESTIONNAIRE_DEFAULT_TITLE = "Check your understanding"
CENTS = Decimal("0.01")


class CourseFolderError(Exception):
    """The folder is not a valid course. ``errors`` lists every problem, each naming its file."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("\n".join(errors))
        self.errors = errors


# --- What a folder describes ------------------------------------------------------------------


@dataclass
class ChoiceSpec:
    text: str
    correct: bool = False


@dataclass
class RubricItemSpec:
    text: str
    points: Decimal = Decimal("1")


@dataclass
class QuestionSpec:
    key: str
    kind: str
    prompt: str
    explanation: str = ""
    points: Decimal = Decimal("1")
    choices: list[ChoiceSpec] = field(default_factory=list)
    correct_boolean: bool | None = None
    numeric_answer: float | None = None
    tolerance: float = 0.0
    tolerance_mode: str = "absolute"
    accepted_answers: list[str] = field(default_factory=list)
    answer_regex: str = ""
    reference_answer: str = ""
    rubric: list[RubricItemSpec] = field(default_factory=list)
    starter_code: str = ""
    visible_tests: str = ""
    hidden_tests: str = ""
    time_limit_seconds: int = 10


@dataclass
class QuestionnaireSpec:
    title: str = QUESTIONNAIRE_DEFAULT_TITLE
    max_attempts: int = 0
    counts: str = "best"
    reveal: str = "after_each_attempt"
    late: str = "refuse"
    due_at: datetime | None = None
    questions: list[QuestionSpec] = field(default_factory=list)


@dataclass
class ChapterSpec:
    uid: str
    slug: str
    title: str
    body: str = ""
    published: bool = True
    questionnaire: QuestionnaireSpec | None = None


@dataclass
class BaselineSpec:
    name: str
    filename: str
    code: str
    description: str = ""


@dataclass
class AssignmentSpec:
    uid: str
    slug: str
    title: str
    chapter: str  # the chapter's id
    position: int = 0
    published: bool = True
    description: str = ""
    starter_code: str = ""
    dataset: str | None = None
    dataset_version: int | None = None  # None: the latest version at import time
    metric: str = "accuracy"
    public_fraction: float = 0.5
    split_seed: int | None = None  # None: a new assignment draws one; an old one keeps its own
    wall_seconds: int = 600
    memory_mb: int = 4096
    needs_gpu: bool = False
    submissions_per_day: int = 5
    gpu_seconds_per_day: int = 0
    pass_rule: str = "none"  # noqa: S105 - a rule, not a password
    pass_baseline: str | None = None  # a baseline's name
    pass_threshold: float | None = None
    due_at: datetime | None = None
    baselines: list[BaselineSpec] = field(default_factory=list)


@dataclass
class CourseSpec:
    slug: str
    title: str
    description: str = ""
    enrolment: str = "open"
    invite_code: str = ""
    chapters: list[ChapterSpec] = field(default_factory=list)
    assignments: list[AssignmentSpec] = field(default_factory=list)


# --- YAML: safe, without timestamps or aliases, written deterministically ---------------------

_TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"


def _without_timestamps(resolvers: dict[Any, list[Any]]) -> dict[Any, list[Any]]:
    # Dates stay strings, as in YAML 1.2 and JSON Schema; the importer parses them itself.
    return {
        first: [(tag, regexp) for tag, regexp in entries if tag != _TIMESTAMP_TAG]
        for first, entries in resolvers.items()
    }


class _Loader(yaml.SafeLoader):
    yaml_implicit_resolvers = _without_timestamps(yaml.SafeLoader.yaml_implicit_resolvers)

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(
                None, None, "aliases (*name) are not allowed", event.start_mark
            )
        return super().compose_node(parent, index)

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, str) and key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


class _Dumper(yaml.SafeDumper):
    yaml_implicit_resolvers = _without_timestamps(yaml.SafeDumper.yaml_implicit_resolvers)

    def ignore_aliases(self, data: Any) -> bool:
        return True

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        # Indent list items under their key, as people write YAML by hand.
        super().increase_indent(flow, False)


def _represent_str(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    # Multi-line text (markdown, Python) as a literal block, as it reads in an editor.
    style = "|" if "\n" in data else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_Dumper.add_representer(str, _represent_str)


def yaml_load(text: str) -> Any:
    return yaml.load(text, Loader=_Loader)  # noqa: S506 - _Loader is a SafeLoader


def yaml_dump(data: Any) -> str:
    return yaml.dump(
        data,
        Dumper=_Dumper,
        sort_keys=False,
        allow_unicode=True,
        width=1_000_000,
        default_flow_style=False,
    )


# --- Schema validation -------------------------------------------------------------------------


@cache
def course_format_schema() -> dict[str, Any]:
    schema: dict[str, Any] = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    return schema


@cache
def _validator(kind: str) -> Draft202012Validator:
    schema = {**course_format_schema(), "$ref": f"#/$defs/{kind}"}
    return Draft202012Validator(schema)


def _field_path(parts: Iterator[Any] | list[Any]) -> str:
    path = ""
    for part in parts:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


def _schema_message(error: SchemaError) -> tuple[str, str]:
    """The field path and a plain-words message for one schema error."""
    where = list(error.absolute_path)
    custom = error.schema.get("x-message") if isinstance(error.schema, dict) else None
    validator, value = error.validator, error.validator_value
    if validator == "required":
        missing = re.search(r"'(.+?)' is a required property", error.message)
        return _field_path([*where, missing.group(1) if missing else "?"]), "required"
    if validator == "additionalProperties":
        extra = sorted(set(error.instance) - set(error.schema.get("properties", {})))
        return _field_path([*where, extra[0]]), "unknown field" + (
            f" (also {', '.join(extra[1:])})" if extra[1:] else ""
        )
    if custom:
        message = str(custom)
    elif validator == "type":
        types = value if isinstance(value, list) else [value]
        message = f"must be {' or '.join(_TYPE_WORDS.get(str(t), str(t)) for t in types)}"
    elif validator in ("enum", "const"):
        options = value if validator == "enum" else [value]
        message = f"must be one of: {', '.join(str(o) for o in options)}"
    elif validator == "minItems":
        message = f"at least {value} item{'s' if value != 1 else ''} required"
    elif validator == "minLength":
        message = "must not be empty" if value == 1 else f"at least {value} characters"
    elif validator == "maxLength":
        message = f"at most {value} characters"
    elif validator == "minimum":
        message = f"must be at least {value}"
    elif validator == "maximum":
        message = f"must be at most {value}"
    else:
        message = error.message
    return _field_path(where) or "(file)", message


_TYPE_WORDS = {
    "string": "text",
    "integer": "a whole number",
    "number": "a number",
    "boolean": "true or false",
    "array": "a list",
    "object": "a mapping (key: value lines)",
}


def schema_errors(data: Any, kind: str) -> list[tuple[str, str]]:
    """(field path, message) for every way ``data`` breaks the schema's ``$defs/<kind>``."""
    errors = sorted(_validator(kind).iter_errors(data), key=lambda e: list(e.absolute_path))
    # A failed "if/then" also reports the branch; its inner errors say more, keep them only.
    found = [_schema_message(e) for e in errors if e.validator not in ("if", "allOf")]
    return list(dict.fromkeys(found))


# --- Reading a folder --------------------------------------------------------------------------


class _Problems:
    """Collects problems; each is 'file: field: message'."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.items: list[str] = []

    def name(self, path: Path) -> str:
        try:
            return path.relative_to(self.root).as_posix()
        except ValueError:
            return str(path)

    def add(self, path: Path, where: str, message: str) -> None:
        self.items.append(f"{self.name(path)}: {where + ': ' if where else ''}{message}")


def _read_text(path: Path, problems: _Problems) -> str | None:
    try:
        if path.is_symlink() or not path.is_file():
            problems.add(path, "", "file not found" if not path.exists() else "not a plain file")
            return None
        if path.stat().st_size > FILE_MAX_BYTES:
            problems.add(path, "", f"larger than {FILE_MAX_BYTES // 1024} KB")
            return None
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        problems.add(path, "", "not UTF-8 text")
    except OSError as error:
        problems.add(path, "", error.strerror or str(error))
    return None


def _parse_yaml(text: str, path: Path, problems: _Problems, *, where: str = "") -> Any:
    try:
        data = yaml_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        at = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(error, "problem", None) or str(error)
        problems.add(path, where, f"not valid YAML: {at}{problem}")
        return None
    return {} if data is None else data


def _load_checked(
    text: str, path: Path, kind: str, problems: _Problems, *, where: str = ""
) -> dict[str, Any] | None:
    data = _parse_yaml(text, path, problems, where=where)
    if data is None:
        return None
    found = schema_errors(data, kind)
    for field_path, message in found:
        problems.add(path, f"{where}{field_path}" if where else field_path, message)
    return None if found else data


def _parse_due(value: str | None) -> datetime | None:
    # The schema's pattern guarantees an offset; fromisoformat reads "Z" from Python 3.11 on.
    return datetime.fromisoformat(value) if value else None


def _decimal(value: float | int) -> Decimal:
    return Decimal(str(value)).quantize(CENTS)


def _question(data: dict[str, Any], path: Path, index: int, problems: _Problems) -> QuestionSpec:
    where = f"questions[{index}]"
    kind = data["kind"]
    for name in sorted(set(data) - COMMON_QUESTION_FIELDS - KIND_FIELDS[kind]):
        problems.add(path, f"{where}.{name}", f"does not apply to a {kind} question")
    spec = QuestionSpec(
        key=data["id"],
        kind=kind,
        prompt=data["prompt"],
        explanation=data.get("explanation", ""),
        points=_decimal(data.get("points", 1)),
    )
    if kind in ("single", "multiple"):
        spec.choices = [ChoiceSpec(c["text"], c.get("correct", False)) for c in data["choices"]]
        correct = sum(c.correct for c in spec.choices)
        if kind == "single" and correct != 1:
            problems.add(
                path,
                f"{where}.choices",
                f"a single choice question needs exactly one correct choice (has {correct})",
            )
        if kind == "multiple" and correct < 1:
            problems.add(path, f"{where}.choices", "mark at least one choice correct: true")
    elif kind == "true_false":
        spec.correct_boolean = data["answer"]
    elif kind == "numeric":
        spec.numeric_answer = float(data["answer"])
        spec.tolerance = float(data.get("tolerance", 0))
        spec.tolerance_mode = data.get("tolerance_mode", "absolute")
    elif kind == "short_text":
        spec.accepted_answers = list(data.get("accepted", []))
        spec.answer_regex = data.get("regex", "")
        if spec.answer_regex:
            try:
                re.compile(spec.answer_regex)
            except re.error as error:
                problems.add(path, f"{where}.regex", f"does not compile: {error}")
        if not spec.accepted_answers and not spec.answer_regex:
            problems.add(path, where, "a short_text question needs 'accepted' or 'regex'")
    elif kind == "free_text":
        spec.reference_answer = data.get("reference", "")
        spec.rubric = [
            RubricItemSpec(item["text"], _decimal(item.get("points", 1)))
            for item in data.get("rubric", [])
        ]
    elif kind == "code":
        spec.starter_code = data.get("starter", "")
        spec.visible_tests = data.get("tests", "")
        spec.hidden_tests = data.get("hidden_tests", "")
        spec.time_limit_seconds = int(data.get("time_limit", 10))
        if not spec.visible_tests.strip() and not spec.hidden_tests.strip():
            problems.add(path, where, "a code question needs 'tests' or 'hidden_tests'")
        for name, source in (("tests", spec.visible_tests), ("hidden_tests", spec.hidden_tests)):
            problem = tests_problem(source) if source.strip() else ""
            if problem:
                problems.add(path, f"{where}.{name}", problem)
        problem = code_problem(spec.starter_code, "").strip()
        if problem:
            problems.add(path, f"{where}.starter", problem)
    return spec


def _questionnaire(path: Path, problems: _Problems) -> QuestionnaireSpec | None:
    text = _read_text(path, problems)
    data = None if text is None else _load_checked(text, path, "questionnaire", problems)
    if data is None:
        return None
    questions = [_question(q, path, i, problems) for i, q in enumerate(data.get("questions", []))]
    _no_duplicates([q.key for q in questions], path, "questions", "questions have the id", problems)
    return QuestionnaireSpec(
        title=data.get("title", QUESTIONNAIRE_DEFAULT_TITLE),
        max_attempts=data.get("max_attempts", 0),
        counts=data.get("counts", "best"),
        reveal=data.get("reveal", "after_each_attempt"),
        late=data.get("late", "refuse"),
        due_at=_parse_due(data.get("due")),
        questions=questions,
    )


def _no_duplicates(
    values: list[str], path: Path, where: str, what: str, problems: _Problems
) -> None:
    for value in sorted({v for v in values if values.count(v) > 1}):
        problems.add(path, where, f"two {what} {value!r}")


def split_front_matter(text: str) -> tuple[str, str] | None:
    """(front matter, body) of a chapter.md, or None when it has no --- front matter."""
    match = FRONT_MATTER_RE.match(text.removeprefix("\ufeff"))
    if not match:
        return None
    return match.group(1), text.removeprefix("\ufeff")[match.end() :]


def normalise_body(body: str) -> str:
    """Markdown as stored: no leading blank lines, one final newline (none when empty)."""
    body = body.lstrip("\n").rstrip()
    return body + "\n" if body else ""


def _chapter(folder: Path, problems: _Problems) -> ChapterSpec | None:
    path = folder / CHAPTER_FILE
    text = _read_text(path, problems)
    if text is None:
        return None
    parts = split_front_matter(text)
    if parts is None:
        problems.add(path, "", "must start with YAML front matter between --- lines")
        return None
    data = _load_checked(parts[0], path, "chapter", problems)
    questionnaire_path = folder / QUESTIONNAIRE_FILE
    questionnaire = (
        _questionnaire(questionnaire_path, problems)
        if questionnaire_path.exists() or questionnaire_path.is_symlink()
        else None
    )
    if data is None:
        return None
    return ChapterSpec(
        uid=data["id"],
        slug=data.get("slug", data["id"]),
        title=data["title"],
        body=normalise_body(parts[1]),
        published=data.get("published", True),
        questionnaire=questionnaire,
    )


def _assignment(folder: Path, problems: _Problems) -> AssignmentSpec | None:
    path = folder / ASSIGNMENT_FILE
    text = _read_text(path, problems)
    data = None if text is None else _load_checked(text, path, "assignment", problems)
    if data is None:
        return None
    starter_path = folder / STARTER_FILE
    starter = ""
    if starter_path.exists() or starter_path.is_symlink():
        starter = _read_text(starter_path, problems) or ""
    baselines = []
    for index, entry in enumerate(data.get("baselines", [])):
        baseline_path = folder / entry["file"]
        if not baseline_path.exists() and not baseline_path.is_symlink():
            problems.add(path, f"baselines[{index}].file", f"no file {entry['file']}")
            continue
        code = _read_text(baseline_path, problems)
        if code is not None:
            baselines.append(
                BaselineSpec(
                    name=entry["name"],
                    filename=baseline_path.name,
                    code=code,
                    description=entry.get("description", ""),
                )
            )
    names = [b["name"] for b in data.get("baselines", [])]
    _no_duplicates(names, path, "baselines", "baselines have the name", problems)
    _no_duplicates(
        [b["file"] for b in data.get("baselines", [])],
        path,
        "baselines",
        "baselines have the file",
        problems,
    )
    rule = data.get("pass_rule", "none")
    if rule == "beat_baseline" and data["pass_baseline"] not in names:
        problems.add(path, "pass_baseline", "must be the name of one of the baselines")
    if rule != "beat_baseline" and "pass_baseline" in data:
        problems.add(path, "pass_baseline", "only applies with pass_rule: beat_baseline")
    if rule != "threshold" and "pass_threshold" in data:
        problems.add(path, "pass_threshold", "only applies with pass_rule: threshold")
    published = data.get("published", True)
    if published and "dataset" not in data:
        problems.add(path, "dataset", "required for a published assignment (or published: false)")
    if "dataset_version" in data and "dataset" not in data:
        problems.add(path, "dataset_version", "only applies with a dataset")
    return AssignmentSpec(
        uid=data["id"],
        slug=data.get("slug", data["id"]),
        title=data["title"],
        chapter=data["chapter"],
        position=data.get("position", 0),
        published=published,
        description=data.get("description", ""),
        starter_code=starter,
        dataset=data.get("dataset"),
        dataset_version=data.get("dataset_version"),
        metric=data.get("metric", "accuracy"),
        public_fraction=float(data.get("public_fraction", 0.5)),
        split_seed=data.get("split_seed"),
        wall_seconds=data.get("wall_seconds", 600),
        memory_mb=data.get("memory_mb", 4096),
        needs_gpu=data.get("needs_gpu", False),
        submissions_per_day=data.get("submissions_per_day", 5),
        gpu_seconds_per_day=data.get("gpu_seconds_per_day", 0),
        pass_rule=rule,
        pass_baseline=data.get("pass_baseline"),
        pass_threshold=(
            float(data["pass_threshold"]) if data.get("pass_threshold") is not None else None
        ),
        due_at=_parse_due(data.get("due")),
        baselines=baselines,
    )


def _subfolders(path: Path) -> list[Path]:
    if not path.is_dir():
        return []
    # Skip what editors and archivers leave behind: .git, __MACOSX and the like.
    return sorted(
        p
        for p in path.iterdir()
        if p.is_dir() and not p.is_symlink() and not p.name.startswith((".", "_"))
    )


def course_folder_parse(root: Path) -> CourseSpec:
    """Read and check the whole folder; raise ``CourseFolderError`` listing every problem."""
    problems = _Problems(root)
    course_path = root / COURSE_FILE
    if not root.is_dir():
        raise CourseFolderError([f"{root}: not a folder"])
    text = _read_text(course_path, problems)
    data = None if text is None else _load_checked(text, course_path, "course", problems)
    if data is not None and data.get("enrolment") == "invite" and not data.get("invite_code"):
        problems.add(course_path, "invite_code", "required when enrolment is invite")
    chapters = [c for f in _subfolders(root / "chapters") if (c := _chapter(f, problems))]
    chapters_dir = root / "chapters"
    _no_duplicates([c.uid for c in chapters], chapters_dir, "", "chapters have the id", problems)
    _no_duplicates([c.slug for c in chapters], chapters_dir, "", "chapters have the slug", problems)
    assignments_dir = root / "assignments"
    found = [(f, a) for f in _subfolders(assignments_dir) if (a := _assignment(f, problems))]
    assignments = [a for _, a in found]
    _no_duplicates(
        [a.uid for a in assignments], assignments_dir, "", "assignments have the id", problems
    )
    _no_duplicates(
        [a.slug for a in assignments], assignments_dir, "", "assignments have the slug", problems
    )
    chapter_ids = {c.uid for c in chapters}
    for folder, assignment in found:
        if assignment.chapter not in chapter_ids:
            problems.add(
                folder / ASSIGNMENT_FILE, "chapter", f"no chapter has the id {assignment.chapter!r}"
            )
    if problems.items or data is None:
        raise CourseFolderError(problems.items)
    return CourseSpec(
        slug=data["slug"],
        title=data["title"],
        description=data.get("description", ""),
        enrolment=data.get("enrolment", "open"),
        invite_code=data.get("invite_code", ""),
        chapters=chapters,
        assignments=assignments,
    )


# --- Writing a folder --------------------------------------------------------------------------


def _number(value: Decimal | float) -> int | float:
    """A number as YAML should show it: 2, not 2.00 or 2.0."""
    number = float(value)
    return int(number) if number.is_integer() and abs(number) < 2**53 else number


def _put(data: dict[str, Any], key: str, value: Any, default: Any) -> None:
    # Fields at their default are left out, always, so exports of equal courses are equal.
    if value != default:
        data[key] = value


def _question_data(q: QuestionSpec) -> dict[str, Any]:
    data: dict[str, Any] = {"id": q.key, "kind": q.kind}
    _put(data, "points", _number(q.points), 1)
    data["prompt"] = q.prompt
    _put(data, "explanation", q.explanation, "")
    if q.kind in ("single", "multiple"):
        data["choices"] = [
            {"text": c.text, "correct": True} if c.correct else {"text": c.text} for c in q.choices
        ]
    elif q.kind == "true_false":
        data["answer"] = bool(q.correct_boolean)
    elif q.kind == "numeric":
        data["answer"] = _number(q.numeric_answer or 0.0)
        _put(data, "tolerance", _number(q.tolerance), 0)
        _put(data, "tolerance_mode", q.tolerance_mode, "absolute")
    elif q.kind == "short_text":
        _put(data, "accepted", list(q.accepted_answers), [])
        _put(data, "regex", q.answer_regex, "")
    elif q.kind == "free_text":
        _put(data, "reference", q.reference_answer, "")
        rubric = []
        for item in q.rubric:
            entry: dict[str, Any] = {"text": item.text}
            _put(entry, "points", _number(item.points), 1)
            rubric.append(entry)
        _put(data, "rubric", rubric, [])
    elif q.kind == "code":
        _put(data, "time_limit", q.time_limit_seconds, 10)
        _put(data, "starter", q.starter_code, "")
        _put(data, "tests", q.visible_tests, "")
        _put(data, "hidden_tests", q.hidden_tests, "")
    return data


def _due(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def questionnaire_data(q: QuestionnaireSpec) -> dict[str, Any]:
    data: dict[str, Any] = {}
    _put(data, "title", q.title, QUESTIONNAIRE_DEFAULT_TITLE)
    _put(data, "max_attempts", q.max_attempts, 0)
    _put(data, "counts", q.counts, "best")
    _put(data, "reveal", q.reveal, "after_each_attempt")
    _put(data, "late", q.late, "refuse")
    _put(data, "due", _due(q.due_at), None)
    _put(data, "questions", [_question_data(question) for question in q.questions], [])
    return data


def assignment_data(a: AssignmentSpec) -> dict[str, Any]:
    data: dict[str, Any] = {"id": a.uid}
    _put(data, "slug", a.slug, a.uid)
    data["title"] = a.title
    data["chapter"] = a.chapter
    _put(data, "position", a.position, 0)
    _put(data, "published", a.published, True)
    _put(data, "dataset", a.dataset, None)
    _put(data, "dataset_version", a.dataset_version, None)
    _put(data, "metric", a.metric, "accuracy")
    _put(data, "public_fraction", _number(a.public_fraction), 0.5)
    _put(data, "split_seed", a.split_seed, None)
    _put(data, "wall_seconds", a.wall_seconds, 600)
    _put(data, "memory_mb", a.memory_mb, 4096)
    _put(data, "needs_gpu", a.needs_gpu, False)
    _put(data, "submissions_per_day", a.submissions_per_day, 5)
    _put(data, "gpu_seconds_per_day", a.gpu_seconds_per_day, 0)
    _put(data, "pass_rule", a.pass_rule, "none")
    _put(data, "pass_baseline", a.pass_baseline, None)
    _put(
        data,
        "pass_threshold",
        _number(a.pass_threshold) if a.pass_threshold is not None else None,
        None,
    )
    _put(data, "due", _due(a.due_at), None)
    _put(data, "description", a.description, "")
    baselines = []
    for baseline in a.baselines:
        entry = {"name": baseline.name, "file": f"baselines/{baseline.filename}"}
        _put(entry, "description", baseline.description, "")
        baselines.append(entry)
    _put(data, "baselines", baselines, [])
    return data


def course_folder_files(spec: CourseSpec) -> dict[str, str]:
    """Every file of the folder for ``spec``: relative path -> text."""
    course: dict[str, Any] = {"slug": spec.slug, "title": spec.title}
    _put(course, "description", spec.description, "")
    _put(course, "enrolment", spec.enrolment, "open")
    _put(course, "invite_code", spec.invite_code, "")
    files = {COURSE_FILE: yaml_dump(course)}
    width = max(2, len(str(len(spec.chapters))))
    for position, chapter in enumerate(spec.chapters, start=1):
        folder = f"chapters/{position:0{width}d}-{chapter.slug}"
        meta: dict[str, Any] = {"id": chapter.uid}
        _put(meta, "slug", chapter.slug, chapter.uid)
        meta["title"] = chapter.title
        _put(meta, "published", chapter.published, True)
        body = normalise_body(chapter.body)
        files[f"{folder}/{CHAPTER_FILE}"] = f"---\n{yaml_dump(meta)}---\n" + (
            f"\n{body}" if body else ""
        )
        if chapter.questionnaire is not None:
            files[f"{folder}/{QUESTIONNAIRE_FILE}"] = yaml_dump(
                questionnaire_data(chapter.questionnaire)
            )
    for assignment in spec.assignments:
        folder = f"assignments/{assignment.slug}"
        files[f"{folder}/{ASSIGNMENT_FILE}"] = yaml_dump(assignment_data(assignment))
        if assignment.starter_code:
            files[f"{folder}/{STARTER_FILE}"] = assignment.starter_code
        for baseline in assignment.baselines:
            files[f"{folder}/baselines/{baseline.filename}"] = baseline.code
    return files


def course_folder_write(spec: CourseSpec, target: Path) -> list[str]:
    """Write the folder for ``spec`` under ``target``; return the files written, sorted."""
    files = course_folder_files(spec)
    for name, text in files.items():
        path = target / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8", newline="\n")
    return sorted(files)
