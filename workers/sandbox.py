"""Run a job (a student's code) in the sandbox and say, in a student's terms, how it went.

    result = run_job(spec, on_log=store_line, on_metric=store_point)
    try:
        predictions = read_predictions(result.output_dir / "predictions.npy", ...)
    finally:
        result.cleanup()

Layers (see DESIGN.md, "Sandbox"):

- Always: a fresh job folder (random name, ``0700``) holding the code (``work/``) and what the
  job saves (``output/``); a clean environment (nothing of the worker's: no database or broker
  URL, no secret); the parent enforces the wall clock, the disk quota and the log cap, and kills
  the whole job at the end, whatever it forked. A seccomp filter (``workers.seccomp``) refuses
  new user namespaces.
- ``bwrap`` backend: bubblewrap with new pid, network, IPC and UTS namespaces, a read-only
  system (``/usr``, the parts of ``/etc`` a Python job needs, the interpreter, the venv at
  ``/opt/topdown/venv``), fresh ``/proc``, ``/dev``, ``/tmp`` and ``/dev/shm``, only ``/work``
  and ``/output`` writable, the task files read-only in ``/task``, and for GPU jobs only the
  job's own GPU device node (plus the control nodes), named by UUID in CUDA_VISIBLE_DEVICES.
  The job runs as a uid of its own (see ``workers.launcher`` for why and how).
- ``fallback`` backend (no namespaces): the same launcher, rlimits, cgroups and uid drop where
  possible, plus the process-group kill. Reported as ``degraded``; refused with
  ``allow_degraded=False``.

Limits: cgroups (memory, pids; ``workers.cgroups``) where the kernel lets us create them, else
``RLIMIT_AS`` for CPU jobs (never for CUDA jobs) and ``RLIMIT_NPROC`` with the job's own uid.
The disk quota is checked every half second (``RLIMIT_FSIZE`` bounds each file in between).
Every limit that is weaker than asked is listed in ``JobResult.warnings``.

Memory kills are detected from the memory cgroup's OOM-kill counter (v1 ``memory.oom_control``,
v2 ``memory.events``); without a cgroup, from ``MemoryError`` in the job's last output lines.
Under bubblewrap the parent sees the job's fate through bwrap's exit status, which is
``128 + signal`` for a job killed by a signal (a job that calls ``exit(137)`` looks killed).

Configuration (environment of the worker): ``TOPDOWN_JOBS_DIR`` (job folders; default
``<tmp>/topdown-jobs``), ``TOPDOWN_JOB_UIDS`` (``FIRST:COUNT``, the uids leased to jobs; default
``1900000000:10000``), ``TOPDOWN_BWRAP`` (the bubblewrap binary), ``TOPDOWN_CGROUP_PARENT``
(cgroup v2: a delegated cgroup to create job groups in).

``run_job`` blocks its thread and must be called from a thread that outlives the job
(``--die-with-parent`` watches the thread that started bubblewrap). Callbacks run on that thread
while the job runs: keep them quick, the job waits while they do.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import math
import os
import re
import secrets
import selectors
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from workers import gpu, seccomp
from workers.cgroups import JobCgroups, create_job_cgroups
from workers.joblog import LogCollector
from workers.jobs import MB, Backend, JobResult, JobSpec, Limits, Outcome, remove_tree

logger = logging.getLogger(__name__)

WORKERS_DIR = Path(__file__).resolve().parent
LAUNCHER = WORKERS_DIR / "launcher.py"
HARNESS_DIR = WORKERS_DIR / "harness"

# Where the job sees things, inside the bubblewrap sandbox.
INSIDE_WORK = "/work"
INSIDE_OUTPUT = "/output"
INSIDE_TASK = "/task"
INSIDE_OPT = "/opt/topdown"
INSIDE_VENV = f"{INSIDE_OPT}/venv"
INSIDE_HARNESS = f"{INSIDE_OPT}/harness"
INSIDE_LAUNCHER = f"{INSIDE_OPT}/launcher.py"
INSIDE_UID = 1000  # the job's uid inside a user namespace (worker not root)
SYSTEM_PATH = "/usr/local/bin:/usr/bin:/bin"
# What of /etc a Python job needs (the dynamic linker's cache, time zone, fonts...): not all of
# it, which may hold the host's configuration and secrets.
ETC_FILES = (
    "ld.so.cache",
    "ld.so.conf",
    "ld.so.conf.d",
    "localtime",
    "alternatives",
    "nsswitch.conf",
    "fonts",
    "mime.types",
)
SYSTEM_LINKS = ("bin", "sbin", "lib", "lib32", "lib64", "libx32")

DEFAULT_JOB_UIDS = (1_900_000_000, 10_000)  # first uid, how many
DISK_POLL_SECONDS = 0.5
DISK_MAX_ENTRIES = 100_000
KILL_WAIT_SECONDS = 30.0
DRAIN_SECONDS = 2.0
STATUS_MAX_BYTES = 64 * 1024
EXIT_LAUNCHER_FAILED = 71
LAUNCHER_ENV = {"PATH": SYSTEM_PATH, "LANG": "C.UTF-8"}
TRACEBACK_START = "Traceback (most recent call last):"


class SandboxError(RuntimeError):
    """The worker is misconfigured for running jobs (e.g. an unsafe jobs folder)."""


class SandboxUnavailable(SandboxError):
    """The asked-for sandbox cannot run here (e.g. only the degraded fallback is available)."""


@dataclass(frozen=True)
class SandboxStatus:
    """What ``backend="auto"`` uses on this worker, and why."""

    backend: Backend
    bwrap: str | None
    reason: str = ""

    @property
    def degraded(self) -> bool:
        return self.backend == "fallback"


_detect_lock = threading.Lock()
_detected: SandboxStatus | None = None


def bwrap_executable() -> str | None:
    configured = os.environ.get("TOPDOWN_BWRAP")
    if configured is not None:
        return configured if os.access(configured, os.X_OK) else None
    return shutil.which("bwrap")


def detect_backend(*, refresh: bool = False, jobs_root: Path | None = None) -> SandboxStatus:
    """Whether bubblewrap works here, found by a trial run; cached for the process."""
    global _detected
    with _detect_lock:
        if _detected is None or refresh:
            _detected = _probe_bwrap(jobs_root)
            if _detected.degraded:
                logger.warning("sandbox: using the degraded fallback: %s", _detected.reason)
        return _detected


def _probe_bwrap(jobs_root: Path | None) -> SandboxStatus:
    path = bwrap_executable()
    if path is None:
        return SandboxStatus("fallback", None, "bubblewrap (bwrap) is not installed")
    spec = JobSpec(
        job_id="sandbox-probe",
        files={"probe.py": b"print('topdown-sandbox-ok')\n"},
        entrypoint="probe.py",
        limits=Limits(wall_seconds=30, memory_mb=256, processes=16, disk_mb=16, log_bytes=10_000),
    )
    result = _Job(spec, backend="bwrap", bwrap=path, jobs_root=jobs_root).run()
    try:
        if result.outcome is Outcome.COMPLETED and "topdown-sandbox-ok" in result.log:
            return SandboxStatus("bwrap", path)
        details = " ".join(result.log.split()[-40:])
        return SandboxStatus(
            "fallback", path, f"a bubblewrap trial run failed: {result.message} {details}"
        )
    finally:
        result.cleanup()


def run_job(
    spec: JobSpec,
    *,
    on_log: Callable[[str], None] | None = None,
    on_metric: Callable[[dict[str, Any]], None] | None = None,
    backend: Literal["auto", "bwrap", "fallback"] = "auto",
    allow_degraded: bool = True,
    jobs_root: Path | None = None,
) -> JobResult:
    """Run ``spec`` in the sandbox; stream log lines and metrics to the callbacks as they come.

    ``backend="auto"`` takes bubblewrap when a trial run works, else the fallback. With
    ``allow_degraded=False`` the fallback is refused with ``SandboxUnavailable``. Whatever the
    job does is an outcome, not an exception (a sandbox that fails to start is
    ``Outcome.INFRASTRUCTURE``); ``SandboxError`` means the worker itself is misconfigured.
    The caller calls ``result.cleanup()`` when done with ``result.output_dir``. Only kept log
    lines are streamed: past ``log_bytes`` lines are counted, not passed on.
    """
    bwrap: str | None = None
    if backend == "auto":
        status = detect_backend(jobs_root=jobs_root)
        chosen: Backend = status.backend
        bwrap, reason = status.bwrap, status.reason
    elif backend == "bwrap":
        bwrap = bwrap_executable()
        if bwrap is None:
            raise SandboxUnavailable("bubblewrap (bwrap) is not installed on this worker")
        chosen, reason = "bwrap", ""
    elif backend == "fallback":
        chosen, reason = "fallback", "the fallback backend was asked for"
    else:
        raise ValueError(f"unknown sandbox backend {backend!r}")
    if chosen == "fallback" and not allow_degraded:
        raise SandboxUnavailable(
            f"only the degraded sandbox (no namespaces) is available here: {reason}"
        )
    return _Job(
        spec,
        backend=chosen,
        bwrap=bwrap,
        jobs_root=jobs_root,
        on_log=on_log,
        on_metric=on_metric,
        degraded_reason=reason,
    ).run()


# Job folders and uids ------------------------------------------------------------------------


def default_jobs_root() -> Path:
    configured = os.environ.get("TOPDOWN_JOBS_DIR")
    return Path(configured) if configured else Path(tempfile.gettempdir()) / "topdown-jobs"


def _prepare_jobs_root(root: Path) -> None:
    """The folder above the job folders: ours, not a symlink, writable by nobody else (in a
    shared /tmp anybody could have made it first)."""
    with contextlib.suppress(FileExistsError):
        root.mkdir(mode=0o711, parents=True)
    info = root.lstat()
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid():
        raise SandboxError(f"the jobs folder {root} must be a directory owned by this worker")
    if info.st_mode & 0o022:
        raise SandboxError(f"the jobs folder {root} must not be writable by others")
    if stat.S_IMODE(info.st_mode) != 0o711:
        root.chmod(0o711)  # others may traverse (fallback jobs reach their folder) but not list


def sweep_stale_job_folders(
    jobs_root: Path | None = None, *, older_than_seconds: float = 900
) -> list[Path]:
    """Remove job folders left behind by a worker that died mid-job; return what was removed.

    A folder is stale when no running job holds its lock and it has not changed for a while (a
    finished job's folder lives only until its caller has read the predictions). Safe to run
    while other workers share ``jobs_root``: their running jobs hold their folders' locks.
    """
    root = jobs_root or default_jobs_root()
    removed: list[Path] = []
    try:
        entries = list(os.scandir(root))
    except FileNotFoundError:
        return removed
    cutoff = time.time() - older_than_seconds
    for entry in entries:
        if entry.name.startswith(".") or not entry.is_dir(follow_symlinks=False):
            continue
        try:
            fd = os.open(entry.path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue  # a job is running in it
        try:
            if os.fstat(fd).st_mtime < cutoff:
                remove_tree(Path(entry.path))
                removed.append(Path(entry.path))
        finally:
            os.close(fd)
    return removed


def _job_uid_range() -> tuple[int, int]:
    configured = os.environ.get("TOPDOWN_JOB_UIDS", "")
    first, _, count = configured.partition(":")
    if first.isdigit() and count.isdigit() and int(first) >= 1000 and int(count) > 0:
        return int(first), int(count)
    return DEFAULT_JOB_UIDS


def _uid_has_processes(uid: int) -> bool:
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/status", "rb") as handle:
                for line in handle:
                    if line.startswith(b"Uid:"):
                        if str(uid).encode() in line.split()[1:]:
                            return True
                        break
        except OSError:
            continue
    return False


@contextlib.contextmanager
def _lease_uid(jobs_root: Path) -> Iterator[int]:
    """A uid no other job (of any worker sharing ``jobs_root``) and no process is using."""
    first, count = _job_uid_range()
    locks = jobs_root / ".uid-locks"
    with contextlib.suppress(FileExistsError):
        locks.mkdir(mode=0o700)
    start = secrets.randbelow(count)
    for step in range(min(count, 200)):
        uid = first + (start + step) % count
        fd = os.open(locks / str(uid), os.O_CREAT | os.O_RDWR | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        try:
            if _uid_has_processes(uid):  # leftovers of a worker that died mid-job
                continue
            yield uid
            return
        finally:
            os.close(fd)
    raise SandboxError("no free job uid: every uid tried is in use")


def _tree_is_world_readable(*paths: Path) -> bool:
    """Whether another uid can reach and read these (the fallback's uid drop needs it)."""
    for path in paths:
        resolved = path.resolve()
        for folder in [resolved, *resolved.parents] if resolved.is_dir() else resolved.parents:
            try:
                if not folder.stat().st_mode & stat.S_IXOTH:
                    return False
            except OSError:
                return False
    return True


def _disk_usage(folders: list[Path], max_entries: int) -> tuple[int, int]:
    """Bytes allocated and entries counted under ``folders`` (stops after ``max_entries``)."""
    used, entries = 0, 0
    stack = list(folders)
    while stack and entries <= max_entries:
        try:
            scanner = os.scandir(stack.pop())
        except OSError:
            continue
        with scanner:
            for entry in scanner:
                entries += 1
                try:
                    info = entry.stat(follow_symlinks=False)
                except OSError:
                    continue
                used += info.st_blocks * 512
                if stat.S_ISDIR(info.st_mode):
                    stack.append(Path(entry.path))
    return used, entries


def _write_file(path: Path, data: bytes, mode: int, owner: int | None) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | os.O_NOFOLLOW, mode)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    if owner is not None:
        os.chown(path, owner, owner)


def _make_dir(path: Path, mode: int, owner: int | None) -> None:
    path.mkdir(mode=mode)
    path.chmod(mode)  # whatever the umask
    if owner is not None:
        os.chown(path, owner, owner)


# One job -------------------------------------------------------------------------------------


@dataclass
class _Exit:
    code: int | None = None
    signal: int | None = None
    cpu_s: float | None = None


@dataclass
class _Plan:
    """How this job runs: decided before anything starts."""

    backend: Backend
    privileged: bool  # the worker is root: per-job uid, privileged bubblewrap
    drop_uid: bool
    device: str
    gpu_nodes: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # for the student's message
    warnings: list[str] = field(default_factory=list)  # for the operator


class _Job:
    def __init__(
        self,
        spec: JobSpec,
        *,
        backend: Backend,
        bwrap: str | None,
        jobs_root: Path | None,
        on_log: Callable[[str], None] | None = None,
        on_metric: Callable[[dict[str, Any]], None] | None = None,
        degraded_reason: str = "",
    ) -> None:
        self.spec = spec
        self.limits = spec.limits
        self.bwrap = bwrap
        self.jobs_root = jobs_root or default_jobs_root()
        self.collector = LogCollector(
            log_bytes=spec.limits.log_bytes, on_log=on_log, on_metric=on_metric
        )
        self.plan = self._plan(backend, degraded_reason)
        self.job_dir = self.jobs_root / "unused"
        self.uid: int | None = None
        self.cgroups: JobCgroups | None = None
        self.proc: subprocess.Popen[bytes] | None = None
        self.status = bytearray()
        self.task_sources: dict[str, Path] = {}

    # Planning --------------------------------------------------------------------------------

    def _plan(self, backend: Backend, degraded_reason: str) -> _Plan:
        privileged = os.geteuid() == 0
        if backend == "bwrap":
            drop_uid = privileged
        else:
            # Without a mount namespace the job's uid must reach the interpreter and its job
            # folder by their real paths.
            drop_uid = privileged and _tree_is_world_readable(
                Path(sys.executable),
                Path(sys.prefix),
                Path(sys.base_prefix),
                HARNESS_DIR,
                self.jobs_root.parent,
            )
        plan = _Plan(backend=backend, privileged=privileged, drop_uid=drop_uid, device="cpu")
        if backend == "fallback":
            plan.notes.append("It ran in the degraded sandbox (no namespace isolation).")
            plan.warnings.append(f"degraded sandbox: {degraded_reason}")
            if not drop_uid:
                who = "root" if privileged else f"uid {os.geteuid()}"
                why = (
                    "the Python installation is not readable by other users"
                    if privileged
                    else "the worker is not root"
                )
                plan.warnings.append(f"the job ran as the worker's own user ({who}): {why}")
        if self.spec.device == "cuda":
            index = self.spec.gpu_index
            nodes = gpu.device_nodes(index) if index is not None else []
            if nodes and index is not None:
                plan.device, plan.gpu_nodes = "cuda", nodes
                if backend == "fallback":
                    plan.warnings.append("GPU isolation needs bubblewrap: all GPUs were visible")
            else:
                plan.notes.append("No GPU was available on this worker, so it ran on the CPU.")
                plan.warnings.append(
                    "a GPU job ran on the CPU: "
                    + ("no GPU is assigned to this worker" if index is None else f"no GPU {index}")
                )
        return plan

    # Running ---------------------------------------------------------------------------------

    def run(self) -> JobResult:
        started = time.monotonic()
        _prepare_jobs_root(self.jobs_root)
        self.job_dir = self.jobs_root / secrets.token_hex(12)
        _make_dir(self.job_dir, 0o700, None)
        # Held while the job runs: sweep_stale_job_folders leaves locked folders alone.
        folder_lock = os.open(self.job_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        fcntl.flock(folder_lock, fcntl.LOCK_EX)
        try:
            if self.plan.drop_uid:
                with _lease_uid(self.jobs_root) as uid:
                    self.uid = uid
                    return self._run_with_folder(started)
            return self._run_with_folder(started)
        except BaseException:
            remove_tree(self.job_dir)
            raise
        finally:
            os.close(folder_lock)

    def _run_with_folder(self, started: float) -> JobResult:
        try:
            self._prepare_folder()
        except OSError as error:
            return self._result(
                started, Outcome.INFRASTRUCTURE, _Exit(), f"could not prepare the job: {error}"
            )
        memory_bytes = self.limits.memory_mb * MB
        extra = 2 if self.plan.backend == "bwrap" else 0  # bubblewrap's monitor and init
        self.cgroups, cgroup_warnings = create_job_cgroups(
            self.job_dir.name, memory_bytes=memory_bytes, pids_max=self.limits.processes + extra
        )
        self.plan.warnings.extend(cgroup_warnings)
        try:
            return self._supervise(started)
        finally:
            if self.cgroups is not None:
                self.cgroups.kill_all()
                for problem in self.cgroups.remove():
                    logger.error("sandbox: %s", problem)

    def _supervise(self, started: float) -> JobResult:
        log_r, log_w = os.pipe()
        status_r, status_w = os.pipe()
        # bubblewrap reports on one copy (and keeps it from the sandbox); the launcher inside
        # the sandbox reports its own failures on the other.
        inner_w = os.dup(status_w)
        fds = [log_r, log_w, status_r, status_w, inner_w]
        seccomp_file = self.job_dir / "seccomp.bpf"
        seccomp_fd = -1
        if self.plan.backend == "bwrap" and seccomp_file.exists():
            seccomp_fd = os.open(seccomp_file, os.O_RDONLY | os.O_CLOEXEC)
            fds.append(seccomp_fd)
        try:
            argv = self._launcher_argv(status_w, inner_w, seccomp_fd)
            try:
                self.proc = subprocess.Popen(  # noqa: S603 - our launcher, argv as a list
                    argv,
                    stdin=subprocess.DEVNULL,
                    stdout=log_w,
                    stderr=log_w,
                    pass_fds=tuple(fd for fd in (status_w, inner_w, seccomp_fd) if fd >= 0),
                    env=LAUNCHER_ENV,
                    cwd="/",
                    start_new_session=True,
                )
            except OSError as error:
                return self._result(
                    started, Outcome.INFRASTRUCTURE, _Exit(), f"could not start: {error}"
                )
            for fd in fds:
                if fd not in (log_r, status_r):
                    os.close(fd)
            fds = [log_r, status_r]
            try:
                ended, killed_for = self._watch(log_r, status_r)
            finally:
                if self.proc.returncode is None:  # interrupted (e.g. a Celery time limit)
                    self._kill()
                    self._reap(block=True)
                    self._sweep()
            self._sweep()
            self._drain(log_r, status_r)
            return self._conclude(started, ended, killed_for)
        finally:
            for fd in fds:
                os.close(fd)

    def _watch(self, log_r: int, status_r: int) -> tuple[_Exit, str | None]:
        assert self.proc is not None
        start = time.monotonic()
        deadline = start + self.limits.wall_seconds
        next_disk_check = start + DISK_POLL_SECONDS
        killed_for: str | None = None
        killed_at = 0.0
        with selectors.DefaultSelector() as selector:
            os.set_blocking(log_r, False)
            os.set_blocking(status_r, False)
            selector.register(log_r, selectors.EVENT_READ, "log")
            selector.register(status_r, selectors.EVENT_READ, "status")
            pidfd = -1
            with contextlib.suppress(OSError, AttributeError):
                pidfd = os.pidfd_open(self.proc.pid)
                selector.register(pidfd, selectors.EVENT_READ, "exit")
            try:
                while True:
                    now = time.monotonic()
                    wake = min(deadline, next_disk_check) if killed_for is None else now + 0.1
                    timeout = max(0.0, wake - now)
                    if pidfd < 0:
                        timeout = min(timeout, 0.02)
                    for key, _ in selector.select(timeout):
                        if key.data != "exit" and not self._read(key.fd, key.data):
                            selector.unregister(key.fd)
                    ended = self._reap(block=False)
                    if ended is not None:
                        return ended, killed_for
                    now = time.monotonic()
                    if killed_for is None and now >= deadline:
                        killed_for, killed_at = "wall", now
                        self._kill()
                    elif killed_for is None and now >= next_disk_check:
                        next_disk_check = now + DISK_POLL_SECONDS
                        if self._over_disk_quota():
                            killed_for, killed_at = "disk", now
                            self._kill()
                    elif killed_for is not None and now - killed_at > KILL_WAIT_SECONDS:
                        self.plan.warnings.append("the job did not die after SIGKILL")
                        return _Exit(), "unkillable"
                    elif killed_for is not None:
                        self._kill()
            finally:
                if pidfd >= 0:
                    os.close(pidfd)

    def _read(self, fd: int, kind: str) -> bool:
        """Read what is there; False at end of file."""
        try:
            data = os.read(fd, 65536)
        except BlockingIOError:
            return True
        if not data:
            return False
        if kind == "log":
            self.collector.feed(data)
        elif len(self.status) < STATUS_MAX_BYTES:
            self.status += data
        return True

    def _reap(self, *, block: bool) -> _Exit | None:
        assert self.proc is not None
        if self.proc.returncode is not None:
            return None
        try:
            pid, status, usage = os.wait4(self.proc.pid, 0 if block else os.WNOHANG)
        except ChildProcessError:
            self.proc.returncode = -1
            return _Exit()
        if pid == 0:
            return None
        code = os.waitstatus_to_exitcode(status)
        self.proc.returncode = code
        cpu = usage.ru_utime + usage.ru_stime
        if code < 0:
            return _Exit(signal=-code, cpu_s=cpu)
        return _Exit(code=code, cpu_s=cpu)

    def _kill(self) -> None:
        """SIGKILL everything of the job: its process group (the launcher, then bubblewrap
        whose pid namespace dies with it, or the job itself), and its cgroups."""
        assert self.proc is not None
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)
        if self.cgroups is not None:
            self.cgroups.kill_all(timeout=0.5)

    def _sweep(self) -> None:
        """After the job's first process ended: nothing of it may outlive it."""
        assert self.proc is not None
        if self.cgroups is not None:
            if not self.cgroups.kill_all():
                self.plan.warnings.append("processes of the job survived SIGKILL")
        elif self.uid is None:
            # No cgroup, no uid of its own: the process group is all we can find.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            if self.plan.backend == "fallback":
                self.plan.warnings.append(
                    "without a pids cgroup or a uid of its own, a job's daemon may survive it"
                )
        if self.uid is not None and _uid_has_processes(self.uid):
            subprocess.run(  # noqa: S603 - our launcher, argv as a list
                [sys.executable, "-I", "-S", str(LAUNCHER), "kill-uid", str(self.uid)],
                env=LAUNCHER_ENV,
                timeout=30,
                check=False,
            )
            if _uid_has_processes(self.uid):
                self.plan.warnings.append(f"processes of uid {self.uid} survived the job")

    def _drain(self, log_r: int, status_r: int) -> None:
        """Read what the job wrote before it died, until every writer is gone."""
        deadline = time.monotonic() + DRAIN_SECONDS
        open_fds = {log_r: "log", status_r: "status"}
        with selectors.DefaultSelector() as selector:
            for fd, kind in open_fds.items():
                selector.register(fd, selectors.EVENT_READ, kind)
            while open_fds:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    self.plan.warnings.append("something of the job kept its output open")
                    break
                for key, _ in selector.select(remaining):
                    if not self._read(key.fd, key.data):
                        selector.unregister(key.fd)
                        del open_fds[key.fd]
        self.collector.finish()

    def _over_disk_quota(self) -> bool:
        folders = [self.job_dir / "work", self.job_dir / "output"]
        used, entries = _disk_usage(folders, DISK_MAX_ENTRIES)
        return used > self.limits.disk_mb * MB or entries > DISK_MAX_ENTRIES

    # The job folder --------------------------------------------------------------------------

    def _prepare_folder(self) -> None:
        owner = self.uid
        if self.plan.backend == "fallback" and owner is not None:
            self.job_dir.chmod(0o711)  # the job's uid reaches work/, output/ and task/
        work, output = self.job_dir / "work", self.job_dir / "output"
        _make_dir(work, 0o700, owner)
        _make_dir(output, 0o700, owner)
        for name, data in self.spec.files.items():
            target = work / name
            for parent in reversed(target.relative_to(work).parents[:-1]):
                if not (work / parent).is_dir():
                    _make_dir(work / parent, 0o700, owner)
            _write_file(target, data, 0o600, owner)
        if self.plan.backend == "fallback":
            _make_dir(self.job_dir / "task", 0o755, None)
        for name, source in self.spec.task_files.items():
            self.task_sources[name] = self._task_source(name, Path(source))
        if self.plan.backend == "bwrap":
            self._write_identity_files()
        program = seccomp.job_filter()
        if program is None:
            self.plan.warnings.append("no seccomp filter for this CPU architecture")
        else:
            _write_file(self.job_dir / "seccomp.bpf", program, 0o600, None)

    def _task_source(self, name: str, source: Path) -> Path:
        """The file to expose as ``/task/<name>``: the original where the job's uid may read it
        and cannot change it, else a read-only copy in the job folder."""
        info = source.stat()
        if not stat.S_ISREG(info.st_mode):
            raise OSError(errno.EINVAL, f"task file {name} is not a regular file", str(source))
        readable = bool(info.st_mode & stat.S_IROTH) and not info.st_mode & stat.S_IWOTH
        if self.plan.backend == "bwrap" and (readable or self.uid is None):
            return source  # bound read-only: only the file's own mode matters
        task_dir = self.job_dir / "task"
        if not task_dir.exists():
            _make_dir(task_dir, 0o755, None)
        target = task_dir / name
        if self.plan.backend == "fallback" and self.uid is not None and readable:
            with contextlib.suppress(OSError):
                os.link(source, target)  # the job's uid owns nothing of it: read-only as is
                return target
        shutil.copyfile(source, target)
        target.chmod(0o444)
        return target

    def _write_identity_files(self) -> None:
        uid = self.uid if self.uid is not None else INSIDE_UID
        etc = self.job_dir / "etc"
        _make_dir(etc, 0o755, None)
        files = {
            "passwd": (
                "root:x:0:0:root:/root:/usr/sbin/nologin\n"
                f"topdown:x:{uid}:{uid}:Topdown job:{INSIDE_WORK}:/bin/sh\n"
                "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
            ),
            "group": f"root:x:0:\ntopdown:x:{uid}:\nnogroup:x:65534:\n",
            "hosts": "127.0.0.1\tlocalhost topdown\n::1\tlocalhost ip6-localhost ip6-loopback\n",
        }
        for name, text in files.items():
            _write_file(etc / name, text.encode(), 0o644, None)

    # The command line ------------------------------------------------------------------------

    def _environment(self, inside: bool) -> dict[str, str]:
        work, output = self.job_dir / "work", self.job_dir / "output"
        python_dir = (
            self._python_inside().rsplit("/", 1)[0] if inside else str(Path(sys.executable).parent)
        )
        env = {
            "PATH": f"{python_dir}:{SYSTEM_PATH}",
            "HOME": INSIDE_WORK if inside else str(work),
            "LANG": "C.UTF-8",
            "PYTHONPATH": INSIDE_HARNESS if inside else str(HARNESS_DIR),
            "PYTHONUNBUFFERED": "1",
            "PYTHONDONTWRITEBYTECODE": "1",
            "OMP_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1",
            "OPENBLAS_NUM_THREADS": "1",
            "TOPDOWN_TASK_DIR": INSIDE_TASK if inside else str(self.job_dir / "task"),
            "TOPDOWN_OUTPUT_DIR": INSIDE_OUTPUT if inside else str(output),
            "TOPDOWN_DEVICE": self.plan.device,
        }
        if self.plan.device == "cuda":
            assert self.spec.gpu_index is not None
            if inside:
                # Only this GPU's node exists inside, so name it by UUID: its index among the
                # visible GPUs is not the machine's index.
                env["CUDA_VISIBLE_DEVICES"] = gpu.gpu_uuid(self.spec.gpu_index) or "0"
            else:
                env["CUDA_VISIBLE_DEVICES"] = str(self.spec.gpu_index)
                env["CUDA_DEVICE_ORDER"] = "PCI_BUS_ID"
        return env

    def _python_inside(self) -> str:
        executable = Path(sys.executable)
        if sys.prefix != sys.base_prefix and executable.parent.parent == Path(sys.prefix):
            return f"{INSIDE_VENV}/bin/{executable.name}"
        return str(executable)

    def _rlimits(self) -> list[str]:
        limits = self.limits
        cpu = math.ceil(limits.cpu_limit_seconds)
        values = [
            ("RLIMIT_CPU", cpu, cpu + 2),  # SIGXCPU at the limit, SIGKILL 2 s later
            ("RLIMIT_FSIZE", limits.file_size_mb * MB, limits.file_size_mb * MB),
            ("RLIMIT_NOFILE", limits.open_files, limits.open_files),
            ("RLIMIT_CORE", 0, 0),
        ]
        if self.uid is not None:  # per uid: meaningful only for a uid of the job's own
            values.append(("RLIMIT_NPROC", limits.processes, limits.processes))
        has_memory_cgroup = self.cgroups is not None and self.cgroups.memory is not None
        if not has_memory_cgroup:
            if self.plan.device == "cpu":
                values.append(("RLIMIT_AS", limits.memory_mb * MB, limits.memory_mb * MB))
                self.plan.warnings.append(
                    "no memory cgroup: memory capped as address space (RLIMIT_AS), which is "
                    "stricter than resident memory and misses /tmp and /dev/shm"
                )
            else:
                self.plan.warnings.append(
                    "no memory cgroup: this GPU job had no memory limit (RLIMIT_AS breaks CUDA)"
                )
        if self.uid is None and (self.cgroups is None or self.cgroups.pids is None):
            self.plan.warnings.append("no pids cgroup and no job uid: processes were not capped")
        return [f"{name}:{soft}:{hard}" for name, soft, hard in values]

    def _launcher_argv(self, status_fd: int, inner_fd: int, seccomp_fd: int) -> list[str]:
        argv = [sys.executable, "-I", "-S", str(LAUNCHER), "launch", "--status-fd", str(status_fd)]
        if self.plan.backend == "bwrap":
            argv += ["--keep-fd", str(inner_fd)]
            if seccomp_fd >= 0:
                argv += ["--keep-fd", str(seccomp_fd)]
        for procs in self.cgroups.procs_files() if self.cgroups else []:
            argv += ["--cgroup", procs]
        for rlimit in self._rlimits():
            argv += ["--rlimit", rlimit]
        if self.plan.backend == "bwrap":
            return [*argv, "--", *self._bwrap_argv(status_fd, inner_fd, seccomp_fd)]
        argv += ["--exec", "--cwd", str(self.job_dir / "work")]
        if (self.job_dir / "seccomp.bpf").exists():
            argv += ["--seccomp-file", str(self.job_dir / "seccomp.bpf")]
        if self.uid is not None:
            argv += ["--uid", str(self.uid), "--gid", str(self.uid)]
        for key, value in self._environment(inside=False).items():
            argv += ["--env", f"{key}={value}"]
        return [*argv, "--", sys.executable, self.spec.entrypoint]

    def _bwrap_argv(self, status_fd: int, inner_fd: int, seccomp_fd: int) -> list[str]:
        assert self.bwrap is not None
        limits = self.limits
        args = [self.bwrap, "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts"]
        args += ["--unshare-cgroup-try", "--hostname", "topdown", "--die-with-parent"]
        args += ["--new-session"]
        if self.plan.privileged:
            # Root's bubblewrap keeps every capability unless told; keep the two the in-sandbox
            # launcher needs to become the job's uid, which then drops them for good.
            args += ["--cap-drop", "ALL", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
        else:
            args += ["--unshare-user", "--disable-userns"]
            args += ["--uid", str(INSIDE_UID), "--gid", str(INSIDE_UID)]
        args += ["--ro-bind", "/usr", "/usr"]
        for name in SYSTEM_LINKS:
            path = Path("/") / name
            if path.is_symlink():
                args += ["--symlink", os.readlink(path), str(path)]
            elif path.is_dir():
                args += ["--ro-bind", str(path), str(path)]
        args += ["--perms", "0755", "--dir", "/etc"]
        for name in ETC_FILES:
            if (Path("/etc") / name).exists():
                args += ["--ro-bind", f"/etc/{name}", f"/etc/{name}"]
        for name in ("passwd", "group", "hosts"):
            args += ["--ro-bind", str(self.job_dir / "etc" / name), f"/etc/{name}"]
        args += ["--proc", "/proc", "--dev", "/dev"]
        # Fresh, private, size-capped RAM folders inside the sandbox (not the host's).
        tmp_size, shm_size = str(limits.disk_mb * MB), str(limits.memory_mb * MB)
        args += ["--perms", "1777", "--size", tmp_size, "--tmpfs", "/tmp"]  # noqa: S108
        args += ["--perms", "1777", "--size", shm_size, "--tmpfs", "/dev/shm"]  # noqa: S108
        args += ["--perms", "0755", "--dir", "/opt", "--perms", "0755", "--dir", INSIDE_OPT]
        args += self._python_binds()
        args += ["--ro-bind", str(HARNESS_DIR), INSIDE_HARNESS]
        args += ["--ro-bind", str(LAUNCHER), INSIDE_LAUNCHER]
        args += ["--perms", "0755", "--dir", INSIDE_TASK]
        for name, source in self.task_sources.items():
            args += ["--ro-bind", str(source), f"{INSIDE_TASK}/{name}"]
        args += ["--bind", str(self.job_dir / "work"), INSIDE_WORK]
        args += ["--bind", str(self.job_dir / "output"), INSIDE_OUTPUT]
        for node in self.plan.gpu_nodes:
            args += ["--dev-bind", str(node), str(node)]
        args += ["--remount-ro", "/", "--json-status-fd", str(status_fd)]
        if seccomp_fd >= 0:
            args += ["--seccomp", str(seccomp_fd)]
        args += ["--clearenv"]
        for key, value in self._environment(inside=True).items():
            args += ["--setenv", key, value]
        python = self._python_inside()
        ids = [str(self.uid), str(self.uid)] if self.uid is not None else ["-", "-"]
        args += ["--", python, "-I", "-S", INSIDE_LAUNCHER, "drop", *ids, str(inner_fd)]
        args += [INSIDE_WORK]
        return [*args, "--", python, self.spec.entrypoint]

    def _python_binds(self) -> list[str]:
        """The interpreter at its own path (a venv's ``home`` names it), the venv at INSIDE_VENV;
        the parents we create are 0755 whatever they are outside (``/root`` is 0700)."""
        args: list[str] = []
        base = Path(sys.base_prefix).resolve()
        if not (base == Path("/usr") or Path("/usr") in base.parents):
            for parent in reversed(base.parents[:-1]):
                args += ["--perms", "0755", "--dir", str(parent)]
            args += ["--ro-bind", str(base), str(base)]
        if sys.prefix != sys.base_prefix:
            args += ["--ro-bind", str(Path(sys.prefix).resolve()), INSIDE_VENV]
        return args

    # The verdict -----------------------------------------------------------------------------

    def _conclude(self, started: float, ended: _Exit, killed_for: str | None) -> JobResult:
        status_text = self.status.decode("utf-8", "replace")
        launcher_errors = re.findall(r"^launcher-error: (.*)$", status_text, re.MULTILINE)
        bwrap_exit = re.findall(r'"exit-code"\s*:\s*(-?\d+)', status_text)
        oom_kills = self.cgroups.oom_kills() if self.cgroups else 0
        cgroup_cpu = self.cgroups.cpu_seconds() if self.cgroups else None
        if cgroup_cpu is not None:
            ended.cpu_s = cgroup_cpu
        elif self.plan.backend == "bwrap":
            ended.cpu_s = None  # bubblewrap's own usage would say nothing about the job's
        if self.plan.backend == "bwrap" and bwrap_exit and killed_for is None:
            code = int(bwrap_exit[-1])
            if 128 < code <= 128 + 64:
                ended = _Exit(signal=code - 128, cpu_s=ended.cpu_s)
            else:
                ended = _Exit(code=code, cpu_s=ended.cpu_s)
        limits = self.limits
        tail = self.collector.tail()
        text = "\n".join(tail)
        if launcher_errors:
            return self._result(started, Outcome.INFRASTRUCTURE, ended, launcher_errors[0])
        if killed_for == "unkillable":
            return self._result(started, Outcome.INFRASTRUCTURE, ended, "the job would not stop")
        if killed_for == "wall":
            message = f"Stopped after {_seconds(limits.wall_seconds)} s: the time limit."
            return self._result(started, Outcome.TIMEOUT, ended, message)
        if killed_for == "disk":
            message = f"Used more than {limits.disk_mb} MB of disk space: the disk limit."
            return self._result(started, Outcome.CRASHED, ended, message)
        peak = self.cgroups.peak_memory_bytes() if self.cgroups else None
        at_limit = peak is not None and peak >= 0.95 * limits.memory_mb * MB
        if (oom_kills and ended.code != 0) or (ended.signal == signal.SIGKILL and at_limit):
            # (a kernel without an OOM-kill counter: SIGKILL with the memory at its limit)
            message = f"Ran out of memory (limit {limits.memory_mb} MB)."
            return self._result(started, Outcome.MEMORY, ended, message)
        if self.plan.backend == "bwrap" and not bwrap_exit:
            setup = [line for line in tail if line.startswith("bwrap:")]
            reason = setup[-1] if setup else f"bubblewrap ended with status {ended.code}"
            return self._result(started, Outcome.INFRASTRUCTURE, ended, reason)
        cpu_limit = limits.cpu_limit_seconds
        if ended.signal == signal.SIGXCPU or (
            ended.signal == signal.SIGKILL and (ended.cpu_s or 0) >= cpu_limit - 0.5
        ):
            message = f"Stopped after using {_seconds(cpu_limit)} s of CPU time: the CPU limit."
            return self._result(started, Outcome.TIMEOUT, ended, message)
        if ended.code == 0:
            elapsed = time.monotonic() - started
            return self._result(
                started, Outcome.COMPLETED, ended, f"Completed in {_seconds(elapsed)} s."
            )
        if "CUDA out of memory" in text or "OutOfMemoryError" in text:
            message = "Ran out of GPU memory.\n\n" + _traceback(tail)
            return self._result(started, Outcome.MEMORY, ended, message)
        if re.search(r"\bMemoryError\b|Unable to allocate", text):
            message = f"Ran out of memory (limit {limits.memory_mb} MB).\n\n" + _traceback(tail)
            return self._result(started, Outcome.MEMORY, ended, message)
        return self._result(started, Outcome.CRASHED, ended, self._crash_message(ended, tail))

    def _crash_message(self, ended: _Exit, tail: list[str]) -> str:
        limits = self.limits
        text = "\n".join(tail)
        if ended.signal is not None:
            name = _signal_name(ended.signal)
            lines = [f"Killed by {name}."]
        else:
            lines = [f"Exited with code {ended.code}."]
        if ended.signal == signal.SIGXFSZ or "File too large" in text:
            lines.append(f"A file grew past the file size limit ({limits.file_size_mb} MB).")
        if "Too many open files" in text:
            lines.append(f"It opened more files than the limit ({limits.open_files}).")
        if "BlockingIOError" in text and "Resource temporarily unavailable" in text:
            lines.append(f"It started more processes than the limit ({limits.processes}).")
        if ended.signal == signal.SIGSEGV:
            lines.append("That is a segmentation fault: native code crashed.")
        message = " ".join(lines)
        traceback = _traceback(tail)
        return f"{message}\n\n{traceback}" if traceback else message

    def _result(self, started: float, outcome: Outcome, ended: _Exit, message: str) -> JobResult:
        if outcome is Outcome.INFRASTRUCTURE:
            message = f"The sandbox could not run the job: {message}"
        notes = " ".join(self.plan.notes)
        peak = self.cgroups.peak_memory_bytes() if self.cgroups else None
        return JobResult(
            job_id=self.spec.job_id,
            outcome=outcome,
            exit_code=ended.code,
            signal=ended.signal,
            duration_s=time.monotonic() - started,
            log=self.collector.log,
            log_dropped_bytes=self.collector.dropped_bytes,
            metrics=self.collector.metrics,
            metrics_dropped=self.collector.metrics_dropped,
            output_dir=self.job_dir / "output",
            device=self.plan.device,
            backend=self.plan.backend,
            degraded=self.plan.backend == "fallback",
            message=_with_notes(message, notes),
            cpu_s=ended.cpu_s,
            peak_memory_mb=None if peak is None else round(peak / MB, 1),
            uid=self.uid,
            warnings=list(dict.fromkeys(self.plan.warnings)),
            job_dir=self.job_dir,
        )


def _with_notes(message: str, notes: str) -> str:
    """Notes (degraded sandbox, CPU instead of GPU) join the first paragraph, before any
    traceback."""
    head, separator, rest = message.partition("\n\n")
    return f"{head} {notes}".strip() + separator + rest


def _seconds(value: float) -> str:
    if value >= 10 or float(value).is_integer():
        return f"{value:.0f}"
    return f"{value:.1f}" if value >= 1 else f"{value:.2f}"


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _traceback(tail: list[str], max_lines: int = 30, max_chars: int = 3000) -> str:
    """The last traceback of the output, else its last lines."""
    starts = [i for i, line in enumerate(tail) if line.startswith(TRACEBACK_START)]
    lines = tail[starts[-1] :] if starts else tail[-10:]
    text = "\n".join(lines[-max_lines:])
    return text[-max_chars:]
