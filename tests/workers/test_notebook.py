"""Notebook submissions become scripts; IPython-only syntax is translated or removed, and said."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from workers.notebook import NotebookError, notebook_to_script


def notebook(*cells: str | tuple[str, str]) -> str:
    def cell(item):
        kind, source = item if isinstance(item, tuple) else ("code", item)
        return {"cell_type": kind, "metadata": {}, "source": source.splitlines(keepends=True)}

    return json.dumps(
        {"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [cell(c) for c in cells]}
    )


def run(script: str, cwd) -> str:
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=cwd, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_code_cells_run_in_order_and_markdown_is_skipped(tmp_path):
    converted = notebook_to_script(
        notebook("x = 1", ("markdown", "# Title\n\nprint('not code')"), "x += 1\nprint(x)")
    )
    assert converted.code_cells == 2 and converted.notes == []
    assert run(converted.script, tmp_path) == "2\n"


def test_time_cell_magic_keeps_the_code(tmp_path):
    converted = notebook_to_script(notebook("%%time\ny = 21 * 2\nprint(y)"))
    assert run(converted.script, tmp_path) == "42\n"
    assert converted.notes == ["cell 1: %%time removed, the cell's code still runs"]


def test_timeit_line_magic_runs_its_statement_once(tmp_path):
    converted = notebook_to_script(
        notebook("calls = []\n%timeit -n 10 calls.append(1)\nprint(len(calls))")
    )
    assert run(converted.script, tmp_path) == "1\n"
    assert "%timeit removed" in converted.notes[0]


def test_shell_commands_and_setup_magics_are_removed_and_reported(tmp_path):
    converted = notebook_to_script(
        notebook("!pip install torch\n%matplotlib inline\nif True:\n    !ls\nprint('ok')")
    )
    assert run(converted.script, tmp_path) == "ok\n"
    assert converted.notes == [
        "cell 1: shell command removed: !pip install torch",
        "cell 1: %matplotlib removed",
        "cell 1: shell command removed: !ls",
    ]


def test_shell_capture_becomes_an_empty_list(tmp_path):
    converted = notebook_to_script(notebook("files = !ls\nprint(files)"))
    assert run(converted.script, tmp_path) == "[]\n"


def test_non_python_cells_are_skipped(tmp_path):
    converted = notebook_to_script(notebook("%%bash\nrm -rf /\n", "print('still here')"))
    assert run(converted.script, tmp_path) == "still here\n"
    assert converted.notes == ["cell 1: %%bash cell skipped (it is not Python)"]


def test_writefile_writes_the_file(tmp_path):
    converted = notebook_to_script(
        notebook(
            '%%writefile helper.py\ndef f():\n    return "it\'s \\"quoted\\""\n',
            "import helper\nprint(helper.f())",
        )
    )
    assert run(converted.script, tmp_path) == 'it\'s "quoted"\n'
    assert (tmp_path / "helper.py").exists()


def test_help_requests_are_removed(tmp_path):
    converted = notebook_to_script(notebook("len?\nprint('fine')"))
    assert run(converted.script, tmp_path) == "fine\n"


def test_percent_inside_python_is_left_alone(tmp_path):
    converted = notebook_to_script(notebook("print(7 % 3)\nprint('%d%%' % 5)"))
    assert run(converted.script, tmp_path) == "1\n5%\n"
    assert converted.notes == []


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("not json at all", "invalid JSON"),
        ('{"cells": "nope"}', "no list of cells"),
        ('{"nbformat": 3, "cells": []}', "older than format 4"),
        ("[1, 2]", "no list of cells"),
    ],
)
def test_files_that_are_not_notebooks_are_refused_clearly(source, message):
    with pytest.raises(NotebookError, match=message):
        notebook_to_script(source)
