"""Turn a Jupyter notebook into a plain Python script the sandbox can run.

Code cells run in order. IPython syntax that plain Python does not understand is translated when
its meaning is clear (``%%time`` keeps the cell's code, ``%timeit x`` runs ``x`` once,
``%%writefile`` writes the file) and removed otherwise (``!pip install``, ``%matplotlib``,
``%%bash``). Every change is reported so the student's log says what did not run.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

MAX_CELLS = 2000

# Cell magics whose body is still Python to run.
KEEP_BODY_CELL_MAGICS = {"time", "timeit", "capture", "prun", "debug"}
# Line magics whose argument is a Python statement to run once.
STATEMENT_LINE_MAGICS = {"time", "timeit", "prun"}

LINE_MAGIC = re.compile(r"^(?P<indent>\s*)%(?P<name>[A-Za-z_]\w*)(?P<rest>.*)$")
SHELL_LINE = re.compile(r"^(?P<indent>\s*)!(?P<command>.*)$")
SHELL_ASSIGN = re.compile(r"^(?P<indent>\s*)(?P<target>[A-Za-z_]\w*)\s*=\s*[!%](?P<command>.*)$")
HELP_LINE = re.compile(r"^\s*(\?\??\s*[\w.]+|[\w.]+\s*\?\??)\s*$")


class NotebookError(ValueError):
    """The file is not a notebook we can run; the message says why."""


@dataclass
class ConvertedNotebook:
    script: str
    notes: list[str] = field(default_factory=list)
    code_cells: int = 0


def _cell_source(cell: dict[str, object]) -> str:
    source = cell.get("source", "")
    if isinstance(source, list):
        return "".join(str(part) for part in source)
    if isinstance(source, str):
        return source
    raise NotebookError("a cell's source must be text")


def _convert_cell_magic(number: int, lines: list[str], notes: list[str]) -> list[str]:
    header = lines[0].strip()[2:]
    name, _, argument = header.partition(" ")
    body = lines[1:]
    if name in KEEP_BODY_CELL_MAGICS:
        notes.append(f"cell {number}: %%{name} removed, the cell's code still runs")
        return body
    if name == "writefile":
        parts = argument.split()
        append = "-a" in parts or "--append" in parts
        paths = [p for p in parts if not p.startswith("-")]
        if len(paths) != 1:
            notes.append(f"cell {number}: %%writefile without one file name was skipped")
            return []
        notes.append(f"cell {number}: %%writefile {paths[0]} became Python that writes the file")
        mode = "a" if append else "w"
        content = "".join(f"{line}\n" for line in body)
        return [
            f"with open({paths[0]!r}, {mode!r}) as _topdown_file:",
            f"    _topdown_file.write({content!r})",
        ]
    notes.append(f"cell {number}: %%{name} cell skipped (it is not Python)")
    return []


def _convert_line(number: int, line: str, notes: list[str]) -> str:
    if match := SHELL_ASSIGN.match(line):
        notes.append(f"cell {number}: shell or magic assignment to {match['target']} removed")
        return f"{match['indent']}{match['target']} = []"
    if match := SHELL_LINE.match(line):
        notes.append(f"cell {number}: shell command removed: !{match['command'].strip()[:80]}")
        return f"{match['indent']}pass"
    if match := LINE_MAGIC.match(line):
        name, rest = match["name"], match["rest"].strip()
        if name in STATEMENT_LINE_MAGICS and rest:
            # Drop the magic's own options (e.g. %timeit -n 10 x): keep what follows them.
            statement = re.sub(r"^(-\w+(\s+\S+)?\s+)*", "", rest)
            notes.append(f"cell {number}: %{name} removed, its statement runs once")
            return f"{match['indent']}{statement}"
        notes.append(f"cell {number}: %{name} removed")
        return f"{match['indent']}pass"
    if HELP_LINE.match(line) and "?" in line:
        notes.append(f"cell {number}: help request {line.strip()} removed")
        return ""
    return line


def notebook_to_script(source: bytes | str) -> ConvertedNotebook:
    """Convert notebook JSON to a script; raise ``NotebookError`` if it is not a notebook."""
    try:
        notebook = json.loads(source)
    except (ValueError, UnicodeDecodeError) as error:
        raise NotebookError(f"this is not a Jupyter notebook (invalid JSON: {error})") from None
    if not isinstance(notebook, dict) or not isinstance(notebook.get("cells"), list):
        raise NotebookError("this is not a Jupyter notebook (no list of cells)")
    if int(notebook.get("nbformat", 4)) < 4:
        raise NotebookError(
            "notebooks older than format 4 are not supported; re-save it in Jupyter"
        )
    cells = notebook["cells"]
    if len(cells) > MAX_CELLS:
        raise NotebookError(f"the notebook has {len(cells)} cells; the limit is {MAX_CELLS}")

    converted = ConvertedNotebook(script="")
    parts: list[str] = []
    for cell in cells:
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        converted.code_cells += 1
        number = converted.code_cells
        lines = _cell_source(cell).splitlines()
        first = next((line for line in lines if line.strip()), "")
        if first.lstrip().startswith("%%"):
            lines = lines[lines.index(first) :]
            lines = _convert_cell_magic(number, lines, converted.notes)
        else:
            lines = [_convert_line(number, line, converted.notes) for line in lines]
        parts.append(f"# %% cell {number}\n" + "\n".join(lines) + "\n")
    converted.script = "\n".join(parts)
    return converted
