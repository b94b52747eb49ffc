"""Per-job control groups: a memory cap that the kernel enforces and a process count cap.

For every job the parent creates ``topdown-<job>`` below its own cgroup (cgroup v1: in the
memory and pids hierarchies; cgroup v2: one group with both controllers) before the job starts;
the launcher moves itself in before it executes anything of the job, so every process of the
job is born inside. The job cannot leave: moving a process needs write access to
``cgroup.procs``, which belongs to root. After the job the parent reads the OOM-kill counter,
kills whatever is still inside and removes the groups.

cgroup v2 forbids processes in a group whose children use controllers, so under v2 the parent
group must be delegated to us: ``TOPDOWN_CGROUP_PARENT`` (a path below ``/sys/fs/cgroup``) names
it; without it we try our own group, which works when the worker runs alone in a delegated one.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
PREFIX = "topdown-"


@dataclass
class JobCgroups:
    version: int
    memory: Path | None
    pids: Path | None
    cpu: Path | None = None  # accounting only: how much CPU time the whole job used

    @property
    def dirs(self) -> list[Path]:
        unique: list[Path] = []
        for folder in (self.memory, self.pids, self.cpu):
            if folder is not None and folder not in unique:
                unique.append(folder)
        return unique

    def procs_files(self) -> list[str]:
        return [str(folder / "cgroup.procs") for folder in self.dirs]

    def pids_inside(self) -> set[int]:
        found: set[int] = set()
        for folder in self.dirs:
            try:
                text = (folder / "cgroup.procs").read_text()
            except OSError:
                continue
            found.update(int(line) for line in text.split() if line.isdigit())
        return found

    def oom_kills(self) -> int:
        if self.memory is None:
            return 0
        name = "memory.oom_control" if self.version == 1 else "memory.events"
        try:
            text = (self.memory / name).read_text()
        except OSError:
            return 0
        for line in text.splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill" and value.strip().isdigit():
                return int(value)
        return 0

    def peak_memory_bytes(self) -> int | None:
        if self.memory is None:
            return None
        name = "memory.max_usage_in_bytes" if self.version == 1 else "memory.peak"
        try:
            return int((self.memory / name).read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def cpu_seconds(self) -> float | None:
        if self.cpu is None:
            return None
        try:
            if self.version == 1:
                return int((self.cpu / "cpuacct.usage").read_text()) / 1e9
            for line in (self.cpu / "cpu.stat").read_text().splitlines():
                key, _, value = line.partition(" ")
                if key == "usage_usec":
                    return int(value) / 1e6
        except (OSError, ValueError):
            return None
        return None

    def kill_all(self, *, timeout: float = 5.0) -> bool:
        """SIGKILL every process inside until none is left; True when the groups are empty.

        The pids cap bounds how many processes a fork loop can add between two sweeps.
        """
        if self.version == 2:
            for folder in self.dirs:
                with contextlib.suppress(OSError):
                    (folder / "cgroup.kill").write_text("1")
        deadline = time.monotonic() + timeout
        while True:
            pids = self.pids_inside()
            if not pids:
                return True
            if time.monotonic() > deadline:
                return False
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.002)

    def remove(self, *, timeout: float = 2.0) -> list[str]:
        """rmdir the groups (retrying while the last processes finish exiting); errors, if any."""
        errors = []
        for folder in self.dirs:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    folder.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError as error:
                    if error.errno != errno.EBUSY or time.monotonic() > deadline:
                        errors.append(f"could not remove {folder}: {error.strerror}")
                        break
                    time.sleep(0.01)
        return errors


def _own_cgroup_paths(proc_self_cgroup: str) -> dict[str, str]:
    """``{"memory": "/a/b", "pids": "/", "": "/unified/path"}`` from /proc/self/cgroup."""
    paths: dict[str, str] = {}
    for line in proc_self_cgroup.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        for controller in controllers.split(",") if controllers else [""]:
            paths[controller] = path
    return paths


def _v1_mounts(mountinfo: str) -> dict[str, tuple[Path, str]]:
    """``{"memory": (mount point, mount root)}`` for the cgroup v1 hierarchies."""
    mounts: dict[str, tuple[Path, str]] = {}
    for line in mountinfo.splitlines():
        left, _, right = line.partition(" - ")
        fields, tail = left.split(), right.split()
        if len(fields) < 5 or len(tail) < 3 or tail[0] != "cgroup":
            continue
        root, mount_point = fields[3], fields[4]
        for option in tail[2].split(","):
            mounts.setdefault(option, (Path(mount_point), root))
    return mounts


def _v2_mounts(mountinfo: str) -> list[tuple[Path, str]]:
    """``[(mount point, mount root)]`` of the cgroup2 mounts."""
    mounts = []
    for line in mountinfo.splitlines():
        left, _, right = line.partition(" - ")
        fields, tail = left.split(), right.split()
        if len(fields) >= 5 and tail and tail[0] == "cgroup2":
            mounts.append((Path(fields[4]), fields[3]))
    return mounts


def _join(mount_point: Path, mount_root: str, path: str) -> Path:
    if mount_root != "/" and (path == mount_root or path.startswith(mount_root + "/")):
        path = path[len(mount_root) :]
    return mount_point / path.lstrip("/")


def _write(path: Path, value: str) -> None:
    with open(path, "w") as handle:
        handle.write(value)


def _make_child(parent: Path, name: str) -> Path:
    child = parent / f"{PREFIX}{name}"
    child.mkdir()
    return child


def _remove_quietly(folders: Iterable[Path]) -> None:
    for folder in folders:
        with contextlib.suppress(OSError):
            folder.rmdir()


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def create_job_cgroups(
    name: str,
    *,
    memory_bytes: int | None,
    pids_max: int,
    root: Path = CGROUP_ROOT,
    proc_self_cgroup: str | None = None,
    mountinfo: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> tuple[JobCgroups | None, list[str]]:
    """Create the job's groups. Returns them (None when none could be made) and, for the
    operator, a warning for each limit that could not be put in place."""
    own_text = _read(Path("/proc/self/cgroup")) if proc_self_cgroup is None else proc_self_cgroup
    own = _own_cgroup_paths(own_text)
    env = os.environ if environ is None else environ
    info = _read(Path("/proc/self/mountinfo")) if mountinfo is None else mountinfo
    if (root / "cgroup.controllers").exists():
        mount_root = next(
            (mount_root for point, mount_root in _v2_mounts(info) if point == root), "/"
        )
        own_dir = _join(root, mount_root, own.get("", "/"))
        return _create_v2(name, memory_bytes, pids_max, own_dir, env)
    return _create_v1(name, memory_bytes, pids_max, own, _v1_mounts(info))


def remove_job_cgroups(
    name: str,
    *,
    root: Path = CGROUP_ROOT,
    proc_self_cgroup: str | None = None,
    mountinfo: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> list[str]:
    """Remove the groups ``create_job_cgroups(name)`` made, after killing anything left in them:
    those of a job whose worker died before it could (``sweep_stale_job_folders``). Returns the
    problems, if any; groups that do not exist are fine."""
    own = _own_cgroup_paths(
        _read(Path("/proc/self/cgroup")) if proc_self_cgroup is None else proc_self_cgroup
    )
    info = _read(Path("/proc/self/mountinfo")) if mountinfo is None else mountinfo
    child = f"{PREFIX}{name}"
    if (root / "cgroup.controllers").exists():
        env = os.environ if environ is None else environ
        delegated = env.get("TOPDOWN_CGROUP_PARENT")
        mount_root = next((m for point, m in _v2_mounts(info) if point == root), "/")
        parent = Path(delegated) if delegated else _join(root, mount_root, own.get("", "/"))
        folder = parent / child
        groups = JobCgroups(version=2, memory=folder, pids=folder, cpu=folder)
    else:
        found: dict[str, Path] = {}
        for controller, (mount_point, mount_root) in _v1_mounts(info).items():
            if controller in ("memory", "pids", "cpuacct") and controller in own:
                found[controller] = _join(mount_point, mount_root, own[controller]) / child
        groups = JobCgroups(
            version=1, memory=found.get("memory"), pids=found.get("pids"), cpu=found.get("cpuacct")
        )
    groups.memory, groups.pids, groups.cpu = (
        path if path is not None and path.is_dir() else None
        for path in (groups.memory, groups.pids, groups.cpu)
    )
    if not groups.dirs:
        return []
    groups.kill_all()
    return groups.remove()


def _create_v1(
    name: str,
    memory_bytes: int | None,
    pids_max: int,
    own: dict[str, str],
    mounts: dict[str, tuple[Path, str]],
) -> tuple[JobCgroups | None, list[str]]:
    warnings: list[str] = []
    made: dict[str, Path] = {}
    controllers = ("memory", "pids", "cpuacct") if memory_bytes is not None else ("pids", "cpuacct")
    for controller in controllers:
        if controller not in mounts or controller not in own:
            if controller != "cpuacct":
                warnings.append(f"no {controller} cgroup hierarchy is mounted")
            continue
        mount_point, mount_root = mounts[controller]
        parent = _join(mount_point, mount_root, own[controller])
        try:
            folder = _make_child(parent, name)
        except OSError as error:
            if controller != "cpuacct":
                warnings.append(
                    f"cannot create a {controller} cgroup in {parent}: {error.strerror}"
                )
            continue
        try:
            if controller == "memory":
                assert memory_bytes is not None
                _write(folder / "memory.limit_in_bytes", str(memory_bytes))
                if (folder / "memory.memsw.limit_in_bytes").exists():
                    with contextlib.suppress(OSError):  # no swapping past the limit either
                        _write(folder / "memory.memsw.limit_in_bytes", str(memory_bytes))
            elif controller == "pids":
                _write(folder / "pids.max", str(pids_max))
        except OSError as error:
            _remove_quietly([folder])
            warnings.append(f"cannot set the {controller} cgroup limit: {error.strerror}")
            continue
        made[controller] = folder
    if "memory" not in made and "pids" not in made:
        _remove_quietly(made.values())
        return None, warnings
    groups = JobCgroups(
        version=1, memory=made.get("memory"), pids=made.get("pids"), cpu=made.get("cpuacct")
    )
    return groups, warnings


def _create_v2(
    name: str,
    memory_bytes: int | None,
    pids_max: int,
    own_dir: Path,
    env: Mapping[str, str],
) -> tuple[JobCgroups | None, list[str]]:
    delegated = env.get("TOPDOWN_CGROUP_PARENT")
    parent = Path(delegated) if delegated else own_dir
    wanted = ["memory", "pids"] if memory_bytes is not None else ["pids"]
    enabled = _read(parent / "cgroup.subtree_control").split()
    missing = [controller for controller in wanted if controller not in enabled]
    if missing:
        try:
            _write(parent / "cgroup.subtree_control", " ".join(f"+{c}" for c in missing))
        except OSError as error:
            return None, [
                f"cannot enable the {', '.join(missing)} controller(s) in {parent} "
                f"({error.strerror}); delegate a cgroup and name it in TOPDOWN_CGROUP_PARENT"
            ]
    try:
        folder = _make_child(parent, name)
    except OSError as error:
        return None, [f"cannot create a cgroup in {parent}: {error.strerror}"]
    try:
        if memory_bytes is not None:
            _write(folder / "memory.max", str(memory_bytes))
            if (folder / "memory.swap.max").exists():
                _write(folder / "memory.swap.max", "0")
            if (folder / "memory.oom.group").exists():
                # One OOM kill takes the whole job down: no half-dead job limping on.
                _write(folder / "memory.oom.group", "1")
        _write(folder / "pids.max", str(pids_max))
    except OSError as error:
        _remove_quietly([folder])
        return None, [f"cannot set the cgroup limits in {folder}: {error.strerror}"]
    memory = folder if memory_bytes is not None else None
    return JobCgroups(version=2, memory=memory, pids=folder, cpu=folder), []
