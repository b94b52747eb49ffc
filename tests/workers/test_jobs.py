"""Job specs refuse what could escape the work folder; results serialise to JSON."""

from __future__ import annotations

import pytest

from workers.jobs import JobSpec, Limits


@pytest.mark.parametrize("name", ["../escape.py", "/etc/passwd", "a/../../b.py", "", "a\x00b"])
def test_file_names_must_stay_inside_the_work_folder(name):
    with pytest.raises(ValueError, match="plain relative path"):
        JobSpec(job_id="j", files={name: b"", "main.py": b""})


def test_the_entrypoint_must_be_one_of_the_files():
    with pytest.raises(ValueError, match="not one of the files"):
        JobSpec(job_id="j", files={"train.py": b""}, entrypoint="main.py")


def test_task_file_names_are_plain_names():
    with pytest.raises(ValueError, match="must not contain"):
        JobSpec(job_id="j", files={"main.py": b""}, task_files={"sub/train.npz": "x"})  # type: ignore[dict-item]


def test_the_cpu_limit_defaults_to_twice_the_wall_clock():
    assert Limits(wall_seconds=30).cpu_limit_seconds == 60
    assert Limits(wall_seconds=30, cpu_seconds=5).cpu_limit_seconds == 5


def test_limits_too_small_to_start_python_are_refused():
    with pytest.raises(ValueError, match="open_files"):
        Limits(open_files=3)
