"""Creating and reading per-job cgroups (v1 on this machine; v2 against a fake tree)."""

from __future__ import annotations

import pytest

from workers.cgroups import create_job_cgroups


def test_cgroup_v2_groups_get_the_memory_and_pids_limits(tmp_path):
    parent = tmp_path / "worker.slice"
    parent.mkdir()
    (tmp_path / "cgroup.controllers").write_text("cpu memory pids\n")
    (parent / "cgroup.subtree_control").write_text("")

    groups, warnings = create_job_cgroups(
        "abc",
        memory_bytes=256 * 1024 * 1024,
        pids_max=20,
        root=tmp_path,
        proc_self_cgroup="0::/worker.slice\n",
    )

    assert warnings == []
    assert groups is not None and groups.version == 2
    folder = parent / "topdown-abc"
    assert groups.memory == groups.pids == folder
    assert (folder / "memory.max").read_text() == str(256 * 1024 * 1024)
    assert (folder / "pids.max").read_text() == "20"
    assert (parent / "cgroup.subtree_control").read_text() == "+memory +pids"
    (folder / "memory.events").write_text("low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n")
    assert groups.oom_kills() == 1


def test_cgroup_v2_in_a_cgroup_namespace_uses_the_mounts_root(tmp_path):
    (tmp_path / "cgroup.controllers").write_text("memory pids\n")
    (tmp_path / "cgroup.subtree_control").write_text("memory pids\n")
    mountinfo = f"32 23 0:28 /workers/w1 {tmp_path} rw,relatime - cgroup2 cgroup2 rw\n"

    groups, warnings = create_job_cgroups(
        "abc",
        memory_bytes=1 << 20,
        pids_max=5,
        root=tmp_path,
        proc_self_cgroup="0::/workers/w1\n",
        mountinfo=mountinfo,
    )

    assert warnings == [] and groups is not None
    assert groups.memory == tmp_path / "topdown-abc"


def test_cgroup_v2_without_delegation_says_what_to_do(tmp_path):
    (tmp_path / "cgroup.controllers").write_text("memory pids\n")

    groups, warnings = create_job_cgroups(
        "abc",
        memory_bytes=1,
        pids_max=1,
        root=tmp_path,
        proc_self_cgroup="0::/missing\n",
    )

    assert groups is None
    assert "TOPDOWN_CGROUP_PARENT" in warnings[0]


def test_this_machine_gives_each_job_a_memory_and_a_pids_cgroup():
    groups, warnings = create_job_cgroups("probe-test", memory_bytes=64 * 1024 * 1024, pids_max=5)
    if groups is None:
        pytest.skip(f"no cgroups here: {warnings}")
    try:
        assert warnings == []
        assert groups.memory is not None and groups.pids is not None
        assert groups.pids_inside() == set() and groups.oom_kills() == 0
    finally:
        assert groups.remove() == []
    assert not groups.memory.exists() and not groups.pids.exists()
