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
  The job runs as a uid of its own (see ``workers.launcher`` for why). No Python runs before
  the job's own interpreter: ``sh`` joins the job's cgroups and raises its OOM score, ``prlimit``
  sets the rlimits, bubblewrap builds the sandbox (keeping only CAP_SETUID/CAP_SETGID when the
  worker is root), ``setpriv`` switches to the job's uid for good under no_new_privs, and the
  job's interpreter runs ``JOB_STARTER``, which says "started" on the status pipe just before
  the job's own code (as ``python ENTRYPOINT`` would run it). A chain that fails before that is
  ``Outcome.INFRASTRUCTURE``, whatever its exit status. ``prlimit`` and ``setpriv`` come from
  util-linux; without them ``backend="auto"`` falls back and ``backend="bwrap"`` is refused.
- ``fallback`` backend (no namespaces): ``workers.launcher``, rlimits, cgroups and uid drop
  where possible, plus the process-group kill. Reported as ``degraded``; refused with
  ``allow_degraded=False``.

Warm start (bubblewrap, CPU jobs; ``TOPDOWN_WARM_START``, on by default). After each job,
``run_job`` has a thread of its own launch the next sandbox in the background, for the same
limits, up to the job's interpreter (``site`` imported) waiting on a pipe for "go": job folder,
uid lease, cgroups, rlimits, namespaces and mounts, seccomp and the uid switch are all done. The
next job whose limits match takes it (under a lock: one job per sandbox): its files are written
into the bound work folder, owned by the job's uid, its task files hard-linked into the bound
task folder, and "go" carries the entrypoint and the environment. The wall clock starts at "go".
Each warm sandbox serves one job and is destroyed with it, so nothing in /tmp, /dev/shm or
memory passes from one job to the next; what waits is our own starter, already confined, with
the job's environment (no secret in it). One warm sandbox at most per process: one with other
limits is destroyed when a job comes, an unused one after ``TOPDOWN_WARM_IDLE_SECONDS`` (300)
and at exit (``warm_start_shutdown``). GPU jobs, jobs whose task files lie on another
filesystem, and the fallback backend always start cold. A warm job's ``JobResult.warm_start``
is true; its CPU time and peak memory include its interpreter's start, as a cold job's do.

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
(cgroup v2: a delegated cgroup to create job groups in), ``TOPDOWN_WARM_START`` ("0" turns the
warm start off), ``TOPDOWN_WARM_IDLE_SECONDS``.

``run_job`` blocks its thread and must be called from a thread that outlives the job
(``--die-with-parent`` watches the thread that started bubblewrap: the caller's for a cold
start, the warm start's own thread for a warm one). It may be called from several threads at
once. Callbacks run on that thread while the job runs: keep them quick, the job waits while they
do.
"""

from __future__ import annotations

import atexit
import contextlib
import errno
import fcntl
import logging
import math
import os
import re
import secrets
import selectors
import shlex
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from workers import gpu, seccomp
from workers.cgroups import JobCgroups, create_job_cgroups, remove_job_cgroups
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
CANCEL_POLL_SECONDS = 0.2
DISK_MAX_ENTRIES = 100_000
KILL_WAIT_SECONDS = 30.0
DRAIN_SECONDS = 2.0
STATUS_MAX_BYTES = 64 * 1024
EXIT_LAUNCHER_FAILED = 71
LAUNCHER_ENV = {"PATH": SYSTEM_PATH, "LANG": "C.UTF-8"}
TRACEBACK_START = "Traceback (most recent call last):"
# What root's bubblewrap keeps of its capabilities: just enough for setpriv to become the job's
# uid, which loses them for good.
SANDBOX_CAPABILITIES = ("CAP_SETUID", "CAP_SETGID")
PRLIMIT_OPTIONS = {
    "RLIMIT_CPU": "cpu",
    "RLIMIT_FSIZE": "fsize",
    "RLIMIT_NOFILE": "nofile",
    "RLIMIT_CORE": "core",
    "RLIMIT_NPROC": "nproc",
    "RLIMIT_AS": "as",
}
# Written by the job's starter on the status pipe, before the job's own code can run.
READY_MARK = b"topdown-job-ready\n"
STARTED_MARK = b"topdown-job-started\n"
# How the launch chain's own complaints start (sh names itself by its $0).
LAUNCH_CHAIN_PREFIXES = ("bwrap:", "prlimit:", "topdown-launch:")

# Warm start (see the module docstring).
JOB_NICE_ENV = "TOPDOWN_JOB_NICE"
DEFAULT_JOB_NICE = 10
WARM_START_ENV = "TOPDOWN_WARM_START"
WARM_IDLE_ENV = "TOPDOWN_WARM_IDLE_SECONDS"
DEFAULT_WARM_IDLE_SECONDS = 300.0
WARM_READY_SECONDS = 15.0  # a warm sandbox not waiting for "go" by then is given up
WARM_TAKE_SECONDS = 5.0  # how long a job waits for a warm sandbox still starting
WARM_MAX_PAUSE_SECONDS = 300.0  # after failed launches, refills pause (doubling) up to this

# The first Python code of every bubblewrap job, run by the job's own interpreter as the job's
# uid inside the sandbox: ``python -c JOB_STARTER GO STATUS [ENTRYPOINT]``. It enters /work,
# says "ready" on STATUS, then takes the entrypoint and the job's environment from the pipe GO
# (a warm start) or, with GO "-", from its arguments and the environment it has (a cold start).
# It says "started" and closes both pipes (the job's code never holds them), then runs the
# entrypoint as ``python ENTRYPOINT`` would: the same ``sys.argv``, ``sys.path[0]``, ``__main__``
# attributes and exit status, and tracebacks that start at the student's file. No module is
# imported that ``python ENTRYPOINT`` would not have imported by then.
JOB_STARTER = """\
def _topdown_start():
    import os, sys
    go, status = sys.argv[1], int(sys.argv[2])
    os.chdir("/work")
    nice = os.nice(0)
    if nice > 0:
        try:  # the new session is its own autogroup: lower it too, or nice means nothing
            with open("/proc/self/autogroup", "w") as handle:
                handle.write(str(nice))
        except OSError:
            pass
    os.write(status, b"topdown-job-ready\\n")
    if go == "-":
        entrypoint = sys.argv[3]
    else:
        fd, message = int(go), b""
        while chunk := os.read(fd, 65536):
            message += chunk
        os.close(fd)
        if not message:
            os._exit(0)
        name, *variables = message.split(b"\\0")
        entrypoint = os.fsdecode(name)
        os.environb.clear()
        os.environb.update(variable.split(b"=", 1) for variable in variables)
    os.environ.pop("PWD", None)
    path = "/work/" + entrypoint
    with open(path, "rb") as handle:
        source = handle.read()
    sys.argv[:] = [entrypoint]
    sys.path[0] = os.path.dirname(path)
    namespace = sys.modules["__main__"].__dict__
    del namespace["_topdown_start"]
    loaders = sys.modules["_frozen_importlib_external"]
    namespace["__loader__"] = loaders.SourceFileLoader("__main__", path)
    namespace["__file__"], namespace["__cached__"] = path, None
    os.write(status, b"topdown-job-started\\n")
    os.close(status)
    try:
        code = compile(source, path, "exec", dont_inherit=True)
        del source
        exec(code, namespace)
    except (SystemExit, KeyboardInterrupt):
        raise
    except BaseException as error:
        error.__traceback__ = error.__traceback__.tb_next
        sys.excepthook(type(error), error, error.__traceback__)
        raise SystemExit(1) from None
_topdown_start()
"""


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


def system_tool(name: str) -> str | None:
    """A system program, from the folders that are also bound into the sandbox."""
    return shutil.which(name, path=SYSTEM_PATH)


def missing_launch_tools() -> str:
    """What the bubblewrap backend lacks to start a job ("" when nothing): ``prlimit`` sets the
    rlimits before bubblewrap, ``setpriv`` switches to the job's uid inside."""
    missing = [name for name in ("prlimit", "setpriv") if system_tool(name) is None]
    if not missing:
        return ""
    return f"{' and '.join(missing)} (util-linux) not found in {SYSTEM_PATH}"


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
    missing = missing_launch_tools()
    if missing:
        return SandboxStatus("fallback", path, f"the bubblewrap backend needs {missing}")
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
    cancel: threading.Event | None = None,
    warm_start: bool | None = None,
) -> JobResult:
    """Run ``spec`` in the sandbox; stream log lines and metrics to the callbacks as they come.

    Setting ``cancel`` (from another thread) kills the job within ``CANCEL_POLL_SECONDS``; its
    outcome is then ``Outcome.CANCELLED``.

    ``backend="auto"`` takes bubblewrap when a trial run works, else the fallback. With
    ``allow_degraded=False`` the fallback is refused with ``SandboxUnavailable``. Whatever the
    job does is an outcome, not an exception (a sandbox that fails to start is
    ``Outcome.INFRASTRUCTURE``); ``SandboxError`` means the worker itself is misconfigured.
    The caller calls ``result.cleanup()`` when done with ``result.output_dir``. Only kept log
    lines are streamed: past ``log_bytes`` lines are counted, not passed on.

    ``warm_start`` (default: ``TOPDOWN_WARM_START``, on) lets a bubblewrap CPU job take this
    process's warm sandbox when its limits match; afterwards a new one is started in the
    background for the next job (see the module docstring).
    """
    started = time.monotonic()
    bwrap: str | None = None
    if backend == "auto":
        status = detect_backend(jobs_root=jobs_root)
        chosen: Backend = status.backend
        bwrap, reason = status.bwrap, status.reason
    elif backend == "bwrap":
        bwrap = bwrap_executable()
        if bwrap is None:
            raise SandboxUnavailable("bubblewrap (bwrap) is not installed on this worker")
        missing = missing_launch_tools()
        if missing:
            raise SandboxUnavailable(f"the bubblewrap backend needs {missing} on this worker")
        chosen, reason = "bwrap", ""
    elif backend == "fallback":
        chosen, reason = "fallback", "the fallback backend was asked for"
    else:
        raise ValueError(f"unknown sandbox backend {backend!r}")
    if chosen == "fallback" and not allow_degraded:
        raise SandboxUnavailable(
            f"only the degraded sandbox (no namespaces) is available here: {reason}"
        )
    warm = warm_start_enabled() if warm_start is None else warm_start
    root = jobs_root or default_jobs_root()
    if not (warm and chosen == "bwrap" and bwrap is not None and _warm_fits(spec, root)):
        return _Job(
            spec,
            backend=chosen,
            bwrap=bwrap,
            jobs_root=jobs_root,
            on_log=on_log,
            on_metric=on_metric,
            degraded_reason=reason,
            cancel=cancel,
        ).run()
    key = _warm_key(spec.limits, bwrap, root)
    result = _warm_pool.run(
        key, spec, on_log=on_log, on_metric=on_metric, cancel=cancel, started=started
    )
    if result is None:
        result = _Job(
            spec,
            backend="bwrap",
            bwrap=bwrap,
            jobs_root=root,
            on_log=on_log,
            on_metric=on_metric,
            cancel=cancel,
        ).run()
    _warm_pool.refill(key, spec.limits, bwrap, root)  # the result is built: not charged to it
    return result


# Warm start ----------------------------------------------------------------------------------

WarmKey = tuple[str, str, float, int, int, int, int, int]


def job_nice() -> int:
    """How far below the worker's the CPU priority of jobs is (``TOPDOWN_JOB_NICE``, 0 to 19,
    default 10). On a machine that also serves the web (``make run``, one-host Compose), a
    student's training loop then takes the CPU only when the pages do not need it."""
    try:
        value = int(os.environ.get(JOB_NICE_ENV, DEFAULT_JOB_NICE))
    except ValueError:
        value = DEFAULT_JOB_NICE
    return min(max(value, 0), 19)


def warm_start_enabled() -> bool:
    """``TOPDOWN_WARM_START`` ("0", "false", "no" or "off" turn it off; on by default)."""
    return os.environ.get(WARM_START_ENV, "1").strip().lower() not in ("0", "false", "no", "off")


def _warm_idle_seconds() -> float:
    try:
        seconds = float(os.environ.get(WARM_IDLE_ENV, DEFAULT_WARM_IDLE_SECONDS))
    except ValueError:
        return DEFAULT_WARM_IDLE_SECONDS
    return seconds if seconds > 0 else DEFAULT_WARM_IDLE_SECONDS


def _warm_key(limits: Limits, bwrap: str, jobs_root: Path) -> WarmKey:
    """What a warm sandbox is made with, and a job must match: everything the limits put into
    the sandbox (rlimits, cgroup caps, the sizes of /tmp and /dev/shm). The wall clock and the
    log cap are the parent's, applied from "go"."""
    return (
        str(jobs_root),
        bwrap,
        limits.cpu_limit_seconds,
        limits.memory_mb,
        limits.processes,
        limits.file_size_mb,
        limits.open_files,
        limits.disk_mb,
    )


def _warm_fits(spec: JobSpec, jobs_root: Path) -> bool:
    """Whether a warm sandbox can serve ``spec``: a CPU job (GPU jobs bind their GPU's device
    nodes at launch) whose task files can be hard-linked into the sandbox's task folder, or must
    be copied anyway because the job's uid may not read them. A cold start binds a file where
    it lies; copying a large dataset instead would cost more than the warm start saves."""
    if spec.device != "cpu":
        return False
    if not spec.task_files:
        return True
    try:
        device = jobs_root.stat().st_dev
        for source in spec.task_files.values():
            info = Path(source).stat()
            readable = bool(info.st_mode & stat.S_IROTH) and not info.st_mode & stat.S_IWOTH
            if (readable or os.geteuid() != 0) and info.st_dev != device:
                return False
    except OSError:
        return False  # the cold start reports it
    return True


def _warm_template(limits: Limits) -> JobSpec:
    return JobSpec(job_id="warm-start", files={"main.py": b""}, limits=limits)


@dataclass(eq=False)
class _WarmSandbox:
    """One warm sandbox: asked for, launched by the pool's thread, then taken by one job."""

    key: WarmKey
    limits: Limits
    bwrap: str
    jobs_root: Path
    job: _Job | None = None  # set once launched and waiting for "go"
    ready_at: float = 0.0
    settled: threading.Event = field(default_factory=threading.Event)  # launched, or given up


class _WarmPool:
    """At most one warm sandbox per process, for the limits of the latest job.

    One thread of ours launches and destroys every warm sandbox: bubblewrap's
    ``--die-with-parent`` watches the thread that started it, and this one lives as long as the
    process. A job takes the sandbox under the lock (no two jobs get the same one); a sandbox
    with other limits is destroyed instead, and so is one idle for ``TOPDOWN_WARM_IDLE_SECONDS``.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._slot: _WarmSandbox | None = None
        self._to_launch: list[_WarmSandbox] = []
        self._to_destroy: list[_WarmSandbox] = []
        self._working = False
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._failures = 0
        self._paused_until = 0.0

    def run(
        self, key: WarmKey, spec: JobSpec, *, started: float, **callbacks: Any
    ) -> JobResult | None:
        """Run ``spec`` in the warm sandbox for ``key``; None when there is none to take."""
        sandbox = self._take(key)
        if sandbox is None:
            return None
        if not sandbox.settled.wait(WARM_TAKE_SECONDS) or sandbox.job is None:
            self._give_up(sandbox)
            return None
        result = sandbox.job.go(spec, started=started, **callbacks)
        if result is None:
            logger.warning("sandbox: a warm sandbox had died before its job; started one cold")
        return result

    def refill(self, key: WarmKey, limits: Limits, bwrap: str, jobs_root: Path) -> None:
        """Have a warm sandbox for ``key`` ready for the next job (in the background)."""
        with self._lock:
            if self._stopping or time.monotonic() < self._paused_until:
                return
            if self._slot is not None:
                if self._slot.key == key:
                    return
                self._drop(self._slot)  # other limits: replaced
            self._slot = _WarmSandbox(key, limits, bwrap, jobs_root)
            self._to_launch.append(self._slot)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._serve, name="topdown-warm-start", daemon=True
                )
                self._thread.start()
            self._changed.notify_all()

    def wait_ready(self, key: WarmKey, timeout: float) -> bool:
        """Whether a warm sandbox for ``key`` is waiting for a job (benchmarks, tests)."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                slot = self._slot
                if slot is not None and slot.key == key and slot.job is not None:
                    return True
                if slot is None or slot.key != key or slot.settled.is_set():
                    return False
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._changed.wait(remaining)

    def shutdown(self, timeout: float = 30.0) -> None:
        """Destroy the unused warm sandbox; wait until the pool's thread has done so."""
        deadline = time.monotonic() + timeout
        with self._lock:
            self._stopping = True
            if self._slot is not None:
                self._drop(self._slot)
                self._slot = None
            self._changed.notify_all()
            while self._to_launch or self._to_destroy or self._working:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._changed.wait(remaining)
            self._stopping = False
            self._failures, self._paused_until = 0, 0.0

    def forget_after_fork(self) -> None:
        """In a forked child: the warm sandboxes are the parent's; close our copies of their
        descriptors (a copy would keep a pipe, a folder lock or a uid lease held)."""
        for sandbox in [self._slot, *self._to_launch, *self._to_destroy]:
            if sandbox is not None and sandbox.job is not None:
                sandbox.job.close_descriptors()
        self.__init__()  # type: ignore[misc]

    # Under the lock ----------------------------------------------------------------------------

    def _take(self, key: WarmKey) -> _WarmSandbox | None:
        with self._lock:
            sandbox, self._slot = self._slot, None
            if sandbox is not None and sandbox.key != key:
                self._drop(sandbox)
                self._changed.notify_all()
                return None
            return sandbox

    def _give_up(self, sandbox: _WarmSandbox) -> None:
        with self._lock:
            self._drop(sandbox)
            self._changed.notify_all()

    def _drop(self, sandbox: _WarmSandbox) -> None:
        if sandbox in self._to_launch:
            self._to_launch.remove(sandbox)
            sandbox.settled.set()
        elif sandbox not in self._to_destroy:
            self._to_destroy.append(sandbox)

    def _next_task(self) -> tuple[str, _WarmSandbox] | None:
        if self._to_destroy:
            return "destroy", self._to_destroy.pop(0)
        if self._to_launch:
            return "launch", self._to_launch.pop(0)
        slot = self._slot
        idle = slot is not None and slot.job is not None and self._idle_wait() == 0.0
        if slot is not None and idle:
            self._slot = None
            return "destroy", slot
        return None

    def _idle_wait(self) -> float | None:
        slot = self._slot
        if slot is None or slot.job is None:
            return None
        return max(0.0, slot.ready_at + _warm_idle_seconds() - time.monotonic())

    # The pool's thread -------------------------------------------------------------------------

    def _serve(self) -> None:
        while True:
            with self._lock:
                self._working = False
                self._changed.notify_all()
                while (task := self._next_task()) is None:
                    self._changed.wait(self._idle_wait())
                self._working = True
            kind, sandbox = task
            try:
                if kind == "launch":
                    self._launch(sandbox)
                elif sandbox.job is not None:
                    sandbox.job.abandon()
            except Exception:
                logger.exception("sandbox: warm start: could not %s a warm sandbox", kind)
            finally:
                sandbox.settled.set()

    def _launch(self, sandbox: _WarmSandbox) -> None:
        job = _Job(
            _warm_template(sandbox.limits),
            backend="bwrap",
            bwrap=sandbox.bwrap,
            jobs_root=sandbox.jobs_root,
            warm=True,
        )
        problem = ""
        try:
            job.launch()
            if not job.wait_ready(WARM_READY_SECONDS):
                problem = job.launch_problem()
        except Exception as error:  # whatever it was, undo the launch and say so
            problem = f"{type(error).__name__}: {error}"
        if problem:
            job.abandon()
        with self._lock:
            if problem:
                self._failures += 1
                pause = min(WARM_MAX_PAUSE_SECONDS, 2.0**self._failures)
                self._paused_until = time.monotonic() + pause
                if self._slot is sandbox:
                    self._slot = None
                logger.warning(
                    "sandbox: a warm sandbox did not start (%s); cold starts for %.0f s",
                    problem,
                    pause,
                )
                return
            self._failures = 0
            sandbox.job, sandbox.ready_at = job, time.monotonic()
            if self._stopping and self._slot is sandbox:
                self._slot = None
                self._to_destroy.append(sandbox)
            self._changed.notify_all()


_warm_pool = _WarmPool()
os.register_at_fork(after_in_child=_warm_pool.forget_after_fork)
atexit.register(_warm_pool.shutdown)


def warm_start_prepare(limits: Limits, *, jobs_root: Path | None = None) -> None:
    """Start a warm sandbox for jobs with ``limits`` now, in the background (e.g. when a worker
    starts); ``run_job`` does so by itself after each job."""
    bwrap = bwrap_executable()
    if bwrap is not None and warm_start_enabled() and not missing_launch_tools():
        root = jobs_root or default_jobs_root()
        _warm_pool.refill(_warm_key(limits, bwrap, root), limits, bwrap, root)


def warm_start_wait(limits: Limits, *, jobs_root: Path | None = None, timeout: float = 15) -> bool:
    """Wait until a warm sandbox for jobs with ``limits`` waits for a job; whether one does."""
    bwrap = bwrap_executable()
    if bwrap is None:
        return False
    root = jobs_root or default_jobs_root()
    return _warm_pool.wait_ready(_warm_key(limits, bwrap, root), timeout)


def warm_start_shutdown(timeout: float = 30.0) -> None:
    """Destroy this process's unused warm sandbox (run at exit; a worker may call it when it
    stops). Jobs started afterwards may warm again."""
    _warm_pool.shutdown(timeout)


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
    """Remove job folders (and their cgroups) left behind by a worker that died mid-job, or with
    a warm sandbox waiting; return the folders removed.

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
                # Its cgroups too (named after the folder), empty since the worker's death
                # took its processes with it (--die-with-parent).
                for problem in remove_job_cgroups(entry.name):
                    logger.warning("sandbox: %s", problem)
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


@dataclass
class _UidLease:
    uid: int
    fd: int  # holds the uid's lock file locked

    def release(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def _lease_uid(jobs_root: Path) -> _UidLease:
    """A uid no other job (of any worker sharing ``jobs_root``) and no process is using, until
    the lease is released."""
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
        if _uid_has_processes(uid):  # leftovers of a worker that died mid-job
            os.close(fd)
            continue
        return _UidLease(uid, fd)
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
        cancel: threading.Event | None = None,
        warm: bool = False,
    ) -> None:
        self.spec = spec
        self.cancel = cancel
        self.warm = warm  # launched ahead of its job, which comes with "go"
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
        self._folder_lock = -1
        self._lease: _UidLease | None = None
        self._log_r = self._status_r = self._go_w = -1

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
        """A cold start: everything from here, in the caller's thread."""
        started = time.monotonic()
        self._make_folder()
        try:
            self._lease_uid()
            try:
                self._prepare_folder()
            except OSError as error:
                return self._result(
                    started, Outcome.INFRASTRUCTURE, _Exit(), f"could not prepare the job: {error}"
                )
            self._create_cgroups()
            try:
                try:
                    self._start()
                except OSError as error:
                    return self._result(
                        started, Outcome.INFRASTRUCTURE, _Exit(), f"could not start: {error}"
                    )
                return self._follow(started)
            finally:
                self._remove_cgroups()
        except BaseException:
            remove_tree(self.job_dir)
            raise
        finally:
            self._release()

    # A warm start: ``launch`` and ``wait_ready`` in the pool's thread, ``go`` in the job's.

    def launch(self) -> None:
        """Everything a cold start does before the job's code, but without the job: the job's
        interpreter is left waiting for "go". ``abandon()`` undoes it."""
        self._make_folder()
        self._lease_uid()
        self._prepare_folder()
        self._create_cgroups()
        self._start()

    def wait_ready(self, timeout: float) -> bool:
        """Whether the job's interpreter said it is ready (within ``timeout`` seconds)."""
        deadline = time.monotonic() + timeout
        with selectors.DefaultSelector() as selector:
            selector.register(self._status_r, selectors.EVENT_READ)
            while READY_MARK not in self.status:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                if selector.select(remaining) and not self._read(self._status_r, "status"):
                    return READY_MARK in self.status  # every writer is gone: it died
        return True

    def launch_problem(self) -> str:
        """Why a launch did not become ready, for the operator's log."""
        with contextlib.suppress(OSError):
            if self._log_r >= 0:
                os.set_blocking(self._log_r, False)  # the chain may still be running
                self.collector.feed(os.read(self._log_r, 65536))
        self.collector.finish()
        tail = " ".join(" ".join(self.collector.tail()).split()[-40:])
        return tail or "the job's interpreter did not say it was ready"

    def go(
        self,
        spec: JobSpec,
        *,
        started: float,
        on_log: Callable[[str], None] | None = None,
        on_metric: Callable[[dict[str, Any]], None] | None = None,
        cancel: threading.Event | None = None,
    ) -> JobResult | None:
        """Run ``spec`` in this launched sandbox: its files into the work folder (the job's uid
        owns them), then "go" with the entrypoint and the environment; from "go" on, as a cold
        start. None when the sandbox had died before the job was handed over (nothing of the
        job ran: the caller starts it cold)."""
        assert self.proc is not None
        self.spec, self.limits, self.cancel = spec, spec.limits, cancel
        self.collector = LogCollector(
            log_bytes=spec.limits.log_bytes, on_log=on_log, on_metric=on_metric
        )
        try:
            if self._reap(block=False) is not None or self.proc.returncode is not None:
                self.abandon()
                return None
            try:
                self._write_code()
            except OSError as error:
                self._stop()
                return self._result(
                    started, Outcome.INFRASTRUCTURE, _Exit(), f"could not prepare the job: {error}"
                )
            if not self._send_go():
                self.abandon()
                return None
            result = self._follow(started)
            if result.outcome is Outcome.INFRASTRUCTURE and STARTED_MARK not in self.status:
                # It died (or was killed) while it waited, and nothing of the job ran.
                remove_tree(self.job_dir)
                return None
            return result
        except BaseException:
            self._stop()
            remove_tree(self.job_dir)
            raise
        finally:
            self._remove_cgroups()
            self._release()

    def abandon(self) -> None:
        """Destroy a warm sandbox that will run no job: its processes, cgroups and folder."""
        self._stop()
        self._remove_cgroups()
        self._release()
        remove_tree(self.job_dir)

    def close_descriptors(self) -> None:
        """Close our descriptors of this job without stopping it (a forked child's copies)."""
        self._close_fds()
        for fd in (self._folder_lock, self._lease.fd if self._lease else -1):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)

    # The steps -------------------------------------------------------------------------------

    def _make_folder(self) -> None:
        _prepare_jobs_root(self.jobs_root)
        self.job_dir = self.jobs_root / secrets.token_hex(12)
        _make_dir(self.job_dir, 0o700, None)
        # Held while the job runs: sweep_stale_job_folders leaves locked folders alone.
        self._folder_lock = os.open(self.job_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        fcntl.flock(self._folder_lock, fcntl.LOCK_EX)

    def _lease_uid(self) -> None:
        if self.plan.drop_uid:
            self._lease = _lease_uid(self.jobs_root)
            self.uid = self._lease.uid

    def _release(self) -> None:
        """Give back the uid and the folder's lock (the folder stays for the caller)."""
        if self._lease is not None:
            self._lease.release()
            self._lease = None
        if self._folder_lock >= 0:
            os.close(self._folder_lock)
            self._folder_lock = -1

    def _create_cgroups(self) -> None:
        memory_bytes = self.limits.memory_mb * MB
        extra = 2 if self.plan.backend == "bwrap" else 0  # bubblewrap's monitor and init
        self.cgroups, cgroup_warnings = create_job_cgroups(
            self.job_dir.name, memory_bytes=memory_bytes, pids_max=self.limits.processes + extra
        )
        self.plan.warnings.extend(cgroup_warnings)

    def _remove_cgroups(self) -> None:
        if self.cgroups is not None:
            self.cgroups.kill_all()
            for problem in self.cgroups.remove():
                logger.error("sandbox: %s", problem)
            self.cgroups = None

    def _start(self) -> None:
        """Start the process chain; our ends of its pipes stay open until ``_close_fds``."""
        to_close: list[int] = []
        try:
            self._log_r, log_w = os.pipe()
            self._status_r, status_w = os.pipe()
            to_close += [log_w, status_w]
            os.set_blocking(self._status_r, False)
            passed = [status_w]
            inner_w = go_r = seccomp_fd = -1
            if self.plan.backend == "bwrap":
                # bubblewrap reports on status_w (and keeps it from the sandbox); the job's
                # starter says "ready" and "started" on this copy, then closes it.
                inner_w = os.dup(status_w)
                to_close.append(inner_w)
                passed.append(inner_w)
                if self.warm:
                    go_r, self._go_w = os.pipe()
                    to_close.append(go_r)
                    passed.append(go_r)
                seccomp_file = self.job_dir / "seccomp.bpf"
                if seccomp_file.exists():
                    seccomp_fd = os.open(seccomp_file, os.O_RDONLY | os.O_CLOEXEC)
                    to_close.append(seccomp_fd)
                    passed.append(seccomp_fd)
            argv = self._launcher_argv(status_w, inner_w, seccomp_fd, go_r)
            self.proc = subprocess.Popen(  # noqa: S603 - our launch chain, argv as a list
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log_w,
                stderr=log_w,
                pass_fds=tuple(passed),
                env=LAUNCHER_ENV,
                cwd="/",
                start_new_session=True,
            )
        except BaseException:
            self._close_fds()
            raise
        finally:
            for fd in to_close:
                os.close(fd)

    def _close_fds(self) -> None:
        for name in ("_log_r", "_status_r", "_go_w"):
            fd = getattr(self, name)
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
                setattr(self, name, -1)

    def _send_go(self) -> bool:
        """Hand the job to the waiting interpreter; False when it is gone."""
        variables = [f"{key}={value}" for key, value in self._environment(inside=True).items()]
        message = memoryview(
            b"\0".join(os.fsencode(part) for part in [self.spec.entrypoint, *variables])
        )
        try:
            while message:
                message = message[os.write(self._go_w, message) :]
        except OSError:  # EPIPE: the interpreter died while it waited
            return False
        finally:
            os.close(self._go_w)
            self._go_w = -1
        return True

    def _follow(self, started: float) -> JobResult:
        """From the start of the job's code (cold) or "go" (warm) to the verdict; the wall clock
        counts from here."""
        assert self.proc is not None
        try:
            try:
                ended, killed_for = self._watch(self._log_r, self._status_r)
            finally:
                if self.proc.returncode is None:  # interrupted (e.g. a Celery time limit)
                    self._kill()
                    self._reap(block=True)
                    self._sweep()
            self._sweep()
            self._drain(self._log_r, self._status_r)
            return self._conclude(started, ended, killed_for)
        finally:
            self._close_fds()

    def _stop(self) -> None:
        """Kill a chain that will run no job, and close our ends of its pipes."""
        if self.proc is not None:
            if self.proc.returncode is None:
                self._kill()
                self._reap(block=True)
            self._sweep()
        self._close_fds()

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
                    if self.cancel is not None:
                        wake = min(wake, now + CANCEL_POLL_SECONDS)
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
                    if killed_for is None and self.cancel is not None and self.cancel.is_set():
                        killed_for, killed_at = "cancelled", now
                        self._kill()
                    elif killed_for is None and now >= deadline:
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
        # With a pids cgroup, the cgroup's kill above found every process of the job.
        no_pids_cgroup = self.cgroups is None or self.cgroups.pids is None
        if self.uid is not None and no_pids_cgroup and _uid_has_processes(self.uid):
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
        _make_dir(self.job_dir / "work", 0o700, owner)
        _make_dir(self.job_dir / "output", 0o700, owner)
        if self.plan.backend == "fallback" or self.warm:
            _make_dir(self.job_dir / "task", 0o755, None)  # a warm sandbox binds it as /task
        if not self.warm:
            self._write_code()
        if self.plan.backend == "bwrap":
            self._write_identity_files()
        program = seccomp.job_filter()
        if program is None:
            self.plan.warnings.append("no seccomp filter for this CPU architecture")
        else:
            _write_file(self.job_dir / "seccomp.bpf", program, 0o600, None)

    def _write_code(self) -> None:
        """The job's files, owned by its uid, and its task files (a warm start: after launch)."""
        owner, work = self.uid, self.job_dir / "work"
        for name, data in self.spec.files.items():
            target = work / name
            for parent in reversed(target.relative_to(work).parents[:-1]):
                if not (work / parent).is_dir():
                    _make_dir(work / parent, 0o700, owner)
            _write_file(target, data, 0o600, owner)
        for name, source in self.spec.task_files.items():
            self.task_sources[name] = self._task_source(name, Path(source))

    def _task_source(self, name: str, source: Path) -> Path:
        """The file to expose as ``/task/<name>``: the original where the job's uid may read it
        and cannot change it, else a read-only copy in the job folder. A warm sandbox binds its
        task folder, so there the original is hard-linked into it (``_warm_fits`` checked that
        it can be)."""
        info = source.stat()
        if not stat.S_ISREG(info.st_mode):
            raise OSError(errno.EINVAL, f"task file {name} is not a regular file", str(source))
        readable = bool(info.st_mode & stat.S_IROTH) and not info.st_mode & stat.S_IWOTH
        if self.plan.backend == "bwrap" and not self.warm and (readable or self.uid is None):
            return source  # bound read-only: only the file's own mode matters
        task_dir = self.job_dir / "task"
        if not task_dir.exists():
            _make_dir(task_dir, 0o755, None)
        target = task_dir / name
        if readable if self.plan.backend == "fallback" else readable or self.uid is None:
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

    def _launcher_argv(
        self, status_fd: int, inner_fd: int, seccomp_fd: int, go_fd: int
    ) -> list[str]:
        if self.plan.backend == "bwrap":
            return self._fast_launch_argv(status_fd, inner_fd, seccomp_fd, go_fd)
        argv = [sys.executable, "-I", "-S", str(LAUNCHER), "launch", "--status-fd", str(status_fd)]
        for procs in self.cgroups.procs_files() if self.cgroups else []:
            argv += ["--cgroup", procs]
        for rlimit in self._rlimits():
            argv += ["--rlimit", rlimit]
        argv += ["--exec", "--cwd", str(self.job_dir / "work"), "--nice", str(job_nice())]
        if (self.job_dir / "seccomp.bpf").exists():
            argv += ["--seccomp-file", str(self.job_dir / "seccomp.bpf")]
        if self.uid is not None:
            argv += ["--uid", str(self.uid), "--gid", str(self.uid)]
        for key, value in self._environment(inside=False).items():
            argv += ["--env", f"{key}={value}"]
        return [*argv, "--", sys.executable, self.spec.entrypoint]

    def _fast_launch_argv(
        self, status_fd: int, inner_fd: int, seccomp_fd: int, go_fd: int
    ) -> list[str]:
        """``sh -c SCRIPT topdown-launch prlimit LIMITS -- bwrap ...``: no Python before the
        job's own. sh joins the job's cgroups (so everything after is born inside them) and
        raises the OOM score; prlimit sets the rlimits; both report a failure on the status fd
        (sh as a ``launcher-error`` line, prlimit on the log before bubblewrap ever reports)."""
        prlimit = system_tool("prlimit")
        if prlimit is None:
            raise OSError(errno.ENOENT, f"the bubblewrap backend needs {missing_launch_tools()}")
        fail = f"exit {EXIT_LAUNCHER_FAILED}"
        lines = []
        for procs in self.cgroups.procs_files() if self.cgroups else []:
            report = shlex.quote(f"launcher-error: cannot join the job's cgroup {procs}")
            lines.append(
                f"{{ echo $$ > {shlex.quote(procs)}; }} 2>/dev/null"
                f" || {{ echo {report} > /proc/self/fd/{status_fd}; {fail}; }}"
            )
        lines += ["echo 1000 2>/dev/null > /proc/self/oom_score_adj", 'exec "$@"']
        limits = []
        for rlimit in self._rlimits():
            name, soft, hard = rlimit.split(":")
            limits.append(f"--{PRLIMIT_OPTIONS[name]}={soft}:{hard}")
        bwrap = self._bwrap_argv(status_fd, inner_fd, seccomp_fd, go_fd)
        nice = job_nice()
        nice_tool = system_tool("nice") if nice else None
        lower = [nice_tool, "-n", str(nice)] if nice_tool else []
        return [
            "/bin/sh",
            "-c",
            "\n".join(lines),
            "topdown-launch",
            *lower,
            prlimit,
            *limits,
            "--",
            *bwrap,
        ]

    def _bwrap_argv(self, status_fd: int, inner_fd: int, seccomp_fd: int, go_fd: int) -> list[str]:
        assert self.bwrap is not None
        limits = self.limits
        args = [self.bwrap, "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts"]
        args += ["--unshare-cgroup-try", "--hostname", "topdown", "--die-with-parent"]
        args += ["--new-session"]
        if self.plan.privileged:
            # Root's bubblewrap keeps every capability unless told; keep only what setpriv
            # needs to become the job's uid, which then loses them for good.
            args += ["--cap-drop", "ALL"]
            for capability in SANDBOX_CAPABILITIES:
                args += ["--cap-add", capability]
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
        if self.warm:  # the job's task files are linked into it at "go"
            args += ["--ro-bind", str(self.job_dir / "task"), INSIDE_TASK]
        else:
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
        args += ["--"]
        if self.uid is not None:
            # No Python before the job's own: setpriv switches to the job's uid for good (all
            # capabilities go with root), under no_new_privs.
            setpriv = system_tool("setpriv")
            if setpriv is None:
                raise OSError(
                    errno.ENOENT, f"the bubblewrap backend needs {missing_launch_tools()}"
                )
            args += [setpriv, f"--reuid={self.uid}", f"--regid={self.uid}", "--clear-groups"]
            args += ["--inh-caps=-all", "--no-new-privs", "--"]
        starter = [self._python_inside(), "-c", JOB_STARTER]
        if self.warm:
            return [*args, *starter, str(go_fd), str(inner_fd)]
        # (the entrypoint last: what ``python ENTRYPOINT`` would show in the process list)
        return [*args, *starter, "-", str(inner_fd), self.spec.entrypoint]

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
        if killed_for == "cancelled":
            return self._result(started, Outcome.CANCELLED, ended, "Cancelled while running.")
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
            setup = [line for line in tail if line.startswith(LAUNCH_CHAIN_PREFIXES)]
            reason = setup[-1] if setup else f"bubblewrap ended with status {ended.code}"
            return self._result(started, Outcome.INFRASTRUCTURE, ended, reason)
        if self.plan.backend == "bwrap" and STARTED_MARK not in self.status:
            # The job's code never ran (setpriv or the interpreter failed before it): what is in
            # the log came from our launch chain.
            lines = [line for line in tail if line.strip()]
            reason = lines[-1] if lines else f"its interpreter ended with status {ended.code}"
            return self._result(
                started, Outcome.INFRASTRUCTURE, ended, f"the job did not start: {reason}"
            )
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
            warm_start=self.warm,
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
