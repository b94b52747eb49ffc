"""The first process of a job in the fallback sandbox (no namespaces): confine, then become it.

The bubblewrap backend does without it: there ``sh``, ``prlimit`` and ``setpriv`` do the same
steps around bubblewrap, with no Python before the job's own (see ``workers.sandbox``). The
fallback still starts this file, and the worker uses its ``kill-uid`` command.

The worker is threaded, so it never runs Python between ``fork`` and ``exec`` (no
``preexec_fn``). It starts this file instead, as ``python -I -S launcher.py launch ...``
(``-I -S``: no site-packages, no environment: it imports only ``os`` and ``resource`` and starts
in about 10 ms). ``python -m workers.launcher`` works too. In order, the launcher:

1. moves itself into the job's cgroups, created by the parent beforehand (memory cap, pids cap),
   so every process of the job is born inside them;
2. raises its OOM score, so that a machine-wide shortage kills jobs before anything else;
3. sets the rlimits: CPU seconds (SIGXCPU, then SIGKILL a little later), file size, open files,
   core dumps off, processes (per uid, so only with a job uid of its own) and, for CPU jobs
   without a memory cgroup only, the address space (it breaks CUDA);
4. makes sure it leads its own session, so the job is one process group;
5. drops to the job's uid, loads the seccomp filter of ``workers.seccomp`` and executes the job.

Who the job runs as. When the worker is root, each job gets a uid of its own from an unused
range (``workers.sandbox`` leases one per job): nothing else on the machine runs as it, so the
job can signal or read nothing but itself, ``RLIMIT_NPROC`` counts its processes exactly, and
leftovers can be found by uid. Under bubblewrap, it then runs privileged, without a user
namespace: it builds the mounts as root (the interpreter lives under ``/root/.pyenv``, which no
other uid can traverse, but it is bind-mounted at the same path inside, where its parents are
``0755``), keeps only CAP_SETUID/CAP_SETGID, and ``setpriv`` inside the sandbox switches to the
job uid (losing those last capabilities for good) under ``no_new_privs``. A user namespace with
``--uid`` would only have renamed root: outside, the job would still be uid 0, which
RLIMIT_NPROC ignores. When the worker is not root, bubblewrap runs unprivileged in a user
namespace (``--disable-userns``) as the worker's own uid, and the pids cgroup caps the
processes.

Failures before the job starts are reported on the status fd as one line,
``launcher-error: <reason>``, and exit with status 71: the parent calls that infrastructure.
"""

from __future__ import annotations

import os
import resource
import sys

# No contextlib, argparse or json here: each would add milliseconds to every job's start.

EXIT_LAUNCHER_FAILED = 71  # EX_OSERR
PR_SET_NO_NEW_PRIVS = 38
PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2
LOWEST_JOB_UID = 1000  # never drop to, or kill as, a system account (or root)


class LaunchConfig:
    """``launch`` arguments: ``--cgroup PROCS_FILE``, ``--rlimit NAME:SOFT:HARD``,
    ``--status-fd N``, ``--keep-fd N`` (passed on to the program), ``--seccomp-file PATH`` (a
    BPF program to load before ``--exec``), ``--uid N``, ``--gid N``, ``--cwd DIR``,
    ``--env K=V``, ``--nice N`` (lower the CPU priority by N), ``--exec`` (run the job directly:
    the fallback), then ``--`` and the program with its arguments."""

    def __init__(self, args: list[str]) -> None:
        self.cgroups: list[str] = []
        self.rlimits: list[tuple[str, int, int]] = []
        self.status_fd = -1
        self.uid: int | None = None
        self.gid: int | None = None
        self.cwd: str | None = None
        self.env: dict[str, str] | None = None
        self.direct = False
        self.keep_fds: list[int] = []
        self.seccomp_file: str | None = None
        self.nice = 0
        position = 0
        while position < len(args):
            option = args[position]
            if option == "--":
                self.argv = args[position + 1 :]
                break
            if option == "--exec":
                self.direct = True
                position += 1
                continue
            value = args[position + 1]
            position += 2
            if option == "--cgroup":
                self.cgroups.append(value)
            elif option == "--rlimit":
                name, soft, hard = value.split(":")
                self.rlimits.append((name, int(soft), int(hard)))
            elif option == "--status-fd":
                self.status_fd = int(value)
            elif option == "--keep-fd":
                self.keep_fds.append(int(value))
            elif option == "--seccomp-file":
                self.seccomp_file = value
            elif option == "--uid":
                self.uid = int(value)
            elif option == "--gid":
                self.gid = int(value)
            elif option == "--cwd":
                self.cwd = value
            elif option == "--nice":
                self.nice = int(value)
            elif option == "--env":
                key, _, env_value = value.partition("=")
                self.env = {} if self.env is None else self.env
                self.env[key] = env_value
            else:
                raise ValueError(f"unknown launcher option {option}")
        else:
            raise ValueError("missing '--' and the program to run")
        if not self.argv:
            raise ValueError("no program to run")


def drop_privileges(uid: int, gid: int) -> None:
    if uid < LOWEST_JOB_UID or gid < LOWEST_JOB_UID:
        raise ValueError(f"refusing to run a job as uid {uid} / gid {gid}")
    os.setgroups([])
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)
    if os.getresuid() != (uid, uid, uid) or os.getresgid() != (gid, gid, gid):
        raise OSError("the uid/gid switch did not take")


def no_new_privileges() -> None:
    """Set-uid binaries and file capabilities grant nothing to the job from here on."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS) failed")


def load_seccomp(program: bytes) -> None:
    """Load a classic-BPF seccomp filter (``workers.seccomp``); needs no_new_privs first."""
    import ctypes

    class SockFprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    buffer = ctypes.create_string_buffer(program, len(program))
    fprog = SockFprog(len(program) // 8, ctypes.addressof(buffer))
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(fprog), 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_SECCOMP) failed")


def close_inherited_fds(keep: tuple[int, ...] = (0, 1, 2)) -> None:
    highest = 65536
    try:  # noqa: SIM105 - see the imports
        highest = max(int(name) for name in os.listdir("/proc/self/fd")) + 1
    except (OSError, ValueError):
        pass
    low = 0
    for fd in sorted(keep):
        if fd > low:
            os.closerange(low, fd)
        low = fd + 1
    os.closerange(low, max(low, highest))


def launch(config: LaunchConfig) -> None:
    pid = str(os.getpid())
    for procs in config.cgroups:
        with open(procs, "w") as handle:
            handle.write(pid)
    try:
        with open("/proc/self/oom_score_adj", "w") as handle:
            handle.write("1000")
    except OSError:
        pass
    if config.nice > 0:
        os.nice(config.nice)
    for name, soft, hard in config.rlimits:
        resource.setrlimit(getattr(resource, name), (soft, hard))
    if os.getsid(0) != os.getpid():
        os.setsid()
    if config.nice > 0:
        # With autogroups (most desktop and VM kernels) a new session is scheduled as a group
        # of its own, fair against the worker's: its nice has to be lowered too.
        try:
            with open("/proc/self/autogroup", "w") as handle:
                handle.write(str(os.nice(0)))
        except OSError:
            pass
    if config.cwd is not None:
        os.chdir(config.cwd)
    keep = [0, 1, 2, *config.keep_fds] + ([config.status_fd] if config.status_fd >= 0 else [])
    close_inherited_fds(tuple(keep))
    if config.direct:
        seccomp = None
        if config.seccomp_file is not None:
            with open(config.seccomp_file, "rb") as handle:
                seccomp = handle.read()
        if config.uid is not None and config.gid is not None:
            drop_privileges(config.uid, config.gid)
        no_new_privileges()
        if seccomp is not None:
            load_seccomp(seccomp)
        if config.status_fd >= 0:
            os.set_inheritable(config.status_fd, False)  # closes at exec: "the job started"
    env = dict(os.environ) if config.env is None else config.env
    os.execve(config.argv[0], config.argv, env)  # noqa: S606 - no shell, on purpose


def kill_uid(uid: int) -> None:
    """Become ``uid`` and SIGKILL every process it has: the sweep when there is no cgroup."""
    import signal
    import time

    drop_privileges(uid, uid)
    for _ in range(200):
        try:
            os.kill(-1, signal.SIGKILL)
        except ProcessLookupError:
            return
        time.sleep(0.005)


def report_failure(status_fd: int, reason: str) -> None:
    message = f"launcher-error: {reason}".replace("\n", " ") + "\n"
    for fd in (status_fd, 2):
        if fd >= 0:
            try:  # noqa: SIM105 - see the imports
                os.write(fd, message.encode("utf-8", "replace"))
            except OSError:
                pass


def main(argv: list[str]) -> int:
    command, args = (argv[0], argv[1:]) if argv else ("", [])
    if command == "launch":
        status_fd = -1
        try:
            config = LaunchConfig(args)
            status_fd = config.status_fd
            launch(config)
        except BaseException as error:  # every failure must reach the parent
            report_failure(status_fd, f"{type(error).__name__}: {error}")
        return EXIT_LAUNCHER_FAILED
    if command == "kill-uid" and len(args) == 1:
        kill_uid(int(args[0]))
        return 0
    sys.stderr.write("usage: launcher.py launch|kill-uid ...\n")
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
