"""The warm start: a sandbox launched before its job comes runs the job as a cold one would.

Every job here runs through the real sandbox. ``run(..., warm_start=True)`` first has a warm
sandbox for the job's limits wait for it and checks the job ran in it; ``warm_start=False`` starts
the job cold.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import threading
import time
import uuid
from pathlib import Path

import pytest

from tests.workers.conftest import SMALL, job_processes
from workers import sandbox
from workers.jobs import MB, JobResult, JobSpec, Limits, Outcome
from workers.sandbox import run_job, warm_start_prepare, warm_start_wait

# Everything a job can observe of its confinement, printed as one JSON line.
PROBE = """\
import json, os, resource, socket, sys
status = dict(line.split(":", 1) for line in open("/proc/self/status").read().splitlines())
def connect(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
        return "CONNECTED"
    except OSError as error:
        return type(error).__name__
def size(path):
    info = os.statvfs(path)
    return info.f_blocks * info.f_frsize
names = ("CPU", "FSIZE", "NOFILE", "CORE", "NPROC", "AS")
print(json.dumps({
    "ids": [os.getuid(), os.geteuid(), os.getgid(), os.getegid(), os.getgroups()],
    "status": {key: status[key].strip() for key in (
        "NoNewPrivs", "Seccomp", "CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb")},
    "rlimits": {name: resource.getrlimit(getattr(resource, "RLIMIT_" + name)) for name in names},
    "oom_score_adj": open("/proc/self/oom_score_adj").read().strip(),
    "nice": os.nice(0),
    "session_leader": os.getsid(0) == os.getpid(),
    "cwd": os.getcwd(),
    "argv": sys.argv,
    "path0": sys.path[0],
    "main": sorted(globals()) + [type(__loader__).__name__, __file__, __cached__, __doc__,
                                 __name__, __package__, __spec__],
    "environ": dict(os.environ),
    "fds": sorted(os.listdir("/proc/self/fd")),
    "hostname": socket.gethostname(),
    "interfaces": [name for _, name in socket.if_nameindex()],
    "network": connect(PORT),
    "pids": sorted(int(pid) for pid in os.listdir("/proc") if pid.isdigit()),
    "mounts": sorted(line.split()[4] for line in open("/proc/self/mountinfo")),
    "sizes": {"tmp": size("/tmp"), "shm": size("/dev/shm")},
    "modules": sorted(sys.modules),
}))
"""


def probe(run, port: int, *, warm_start: bool, **limits) -> tuple[JobResult, dict]:
    """The job's view of itself; its entrypoint (named after the job) reads ``JOB.py``."""
    result = run(PROBE.replace("PORT", str(port)), warm_start=warm_start, **limits)
    assert result.outcome is Outcome.COMPLETED, result.message
    return result, json.loads(result.log.splitlines()[-1].replace(result.job_id, "JOB"))


@pytest.fixture
def listening_port():
    server = socket.create_server(("127.0.0.1", 0))
    yield server.getsockname()[1]
    server.close()


def folders(jobs_root: Path) -> set[Path]:
    return {path for path in jobs_root.iterdir() if not path.name.startswith(".")}


def warm_sandbox_processes(folder: Path) -> list[int]:
    """Pids of the processes of the sandbox whose job folder is ``folder`` (bubblewrap and the
    job's interpreter), found by the job's cgroup, which is named after the folder. (Other
    processes on this machine may have warm sandboxes of their own.)"""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if f"/topdown-{folder.name}\n" in Path(f"/proc/{entry}/cgroup").read_text():
                    found.append(int(entry))
            except OSError:
                continue
    return found


def test_a_warm_job_sees_exactly_what_a_cold_job_sees(run, listening_port):
    cold, seen_cold = probe(run, listening_port, warm_start=False)
    warm, seen_warm = probe(run, listening_port, warm_start=True)

    for result, seen in ((cold, seen_cold), (warm, seen_warm)):
        uid = result.uid if result.uid is not None else 1000
        assert seen.pop("ids") == [uid, uid, uid, uid, []] and uid != 0
    # A cold job's /task is a folder holding its bound files, a warm one's a bound folder.
    for seen in (seen_cold, seen_warm):
        seen["mounts"] = [mount for mount in seen["mounts"] if not mount.startswith("/task")]
    assert seen_warm == seen_cold
    assert seen_warm["status"]["NoNewPrivs"] == "1" and seen_warm["status"]["Seccomp"] == "2"
    assert seen_warm["status"]["CapEff"] == seen_warm["status"]["CapInh"] == "0" * 16
    assert seen_warm["network"] == "ConnectionRefusedError" and seen_warm["interfaces"] == ["lo"]
    assert seen_warm["fds"] == ["0", "1", "2", "3"]  # 3: the listing itself
    assert seen_warm["rlimits"]["NOFILE"] == [SMALL.get("open_files", 256)] * 2
    assert seen_warm["rlimits"]["CORE"] == [0, 0]
    assert seen_warm["oom_score_adj"] == "1000"
    assert seen_warm["nice"] == min(os.nice(0) + sandbox.DEFAULT_JOB_NICE, 19)  # below the web
    assert seen_warm["cwd"] == "/work" and seen_warm["path0"] == "/work"
    assert seen_warm["argv"] == ["JOB.py"]
    assert seen_warm["main"][-7:] == [
        "SourceFileLoader",
        "/work/JOB.py",
        None,
        None,
        "__main__",
        None,
        None,
    ]
    assert seen_warm["pids"] == [1, 2]  # bubblewrap's init and the job
    assert "PWD" not in seen_warm["environ"]


def test_a_warm_sandbox_is_made_with_the_limits_of_the_job_it_serves(
    run, jobs_root, listening_port
):
    first = Limits(**{**SMALL, "memory_mb": 256, "disk_mb": 64, "open_files": 64})
    warm_start_prepare(first, jobs_root=jobs_root)
    assert warm_start_wait(first, jobs_root=jobs_root)
    waiting = folders(jobs_root)

    other = {"memory_mb": 320, "disk_mb": 48, "open_files": 96}
    result, seen = probe(run, listening_port, warm_start=None, **other)

    assert not result.warm_start  # the waiting sandbox has other limits: not used
    assert seen["sizes"] == {"tmp": 48 * MB, "shm": 320 * MB}
    assert seen["rlimits"]["NOFILE"] == [96, 96]
    # The sandbox with the other limits was destroyed, one for these limits waits instead.
    deadline = time.monotonic() + 10
    while waiting & folders(jobs_root) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not waiting & folders(jobs_root)
    assert warm_start_wait(Limits(**{**SMALL, **other}), jobs_root=jobs_root)
    assert not warm_start_wait(first, jobs_root=jobs_root, timeout=0.5)
    again, seen_again = probe(run, listening_port, warm_start=None, **other)
    assert again.warm_start
    assert seen_again["sizes"] == seen["sizes"] and seen_again["rlimits"] == seen["rlimits"]


def test_nothing_of_a_job_is_left_for_the_warm_job_after_it(run, jobs_root):
    token = os.urandom(6).hex()
    first = run(
        "import os, time\n"
        f"for folder in ('/tmp', '/dev/shm', '/work', '/output'):\n"
        f"    open(f'{{folder}}/planted-{token}', 'w').write('from the previous job')\n"
        "if os.fork() == 0:\n"
        "    os.setsid()\n"
        "    if os.fork() == 0:\n"
        "        time.sleep(60)\n"
        "    os._exit(0)\n"
        "time.sleep(0.3)\n"
        "print('planted and left a daemon')\n"
    )
    second = run(
        "import os\n"
        f"print([os.path.exists(f'{{f}}/planted-{token}') for f in "
        "('/tmp', '/dev/shm', '/work', '/output')])\n"
        "print(sorted(int(pid) for pid in os.listdir('/proc') if pid.isdigit()))\n",
        warm_start=True,
    )

    assert first.outcome is Outcome.COMPLETED, first.message
    assert second.outcome is Outcome.COMPLETED, second.message
    assert second.log == "[False, False, False, False]\n[1, 2]\n"
    assert job_processes(first.job_id, first.uid) == []
    assert second.job_dir != first.job_dir


def test_the_wall_clock_of_a_warm_job_starts_at_go(run, jobs_root):
    limits = Limits(**{**SMALL, "wall_seconds": 2})
    warm_start_prepare(limits, jobs_root=jobs_root)
    assert warm_start_wait(limits, jobs_root=jobs_root)
    time.sleep(2.5)  # longer than the job's wall clock, before the job comes

    finished = run("import time\ntime.sleep(1.5)\nprint('done')\n", wall_seconds=2, warm_start=True)
    stopped = run(
        "import time\nprint('sleeping', flush=True)\ntime.sleep(60)\n",
        wall_seconds=2,
        warm_start=True,
    )

    assert finished.outcome is Outcome.COMPLETED, finished.message
    assert finished.log == "done\n" and finished.duration_s < 2.0
    assert stopped.outcome is Outcome.TIMEOUT
    assert stopped.message == "Stopped after 2 s: the time limit."
    assert 2.0 <= stopped.duration_s < 3.5
    assert job_processes(stopped.job_id, stopped.uid) == []


@pytest.mark.parametrize("warm_start", [False, True], ids=["cold", "warm"])
def test_a_crash_names_the_students_file_and_line(run, warm_start):
    result = run(
        "import json\n\ndef train():\n    raise ValueError('the shapes do not match')\n\ntrain()\n",
        warm_start=warm_start,
    )

    assert result.outcome is Outcome.CRASHED and result.exit_code == 1
    entrypoint = f"/work/{result.job_id}.py"
    assert result.message == (
        "Exited with code 1.\n\n"
        "Traceback (most recent call last):\n"
        f'  File "{entrypoint}", line 6, in <module>\n'
        "    train()\n"
        f'  File "{entrypoint}", line 4, in train\n'
        "    raise ValueError('the shapes do not match')\n"
        "ValueError: the shapes do not match"
    )


@pytest.mark.parametrize("warm_start", [False, True], ids=["cold", "warm"])
def test_exit_statuses_and_syntax_errors_are_those_of_python(run, warm_start):
    exited = run("import sys\nprint('bye')\nsys.exit(3)\n", warm_start=warm_start)
    broken = run("def train(:\n    pass\n", warm_start=warm_start)

    assert exited.outcome is Outcome.CRASHED and exited.exit_code == 3
    assert exited.log == "bye\n"
    assert broken.outcome is Outcome.CRASHED and broken.exit_code == 1
    assert f'File "/work/{broken.job_id}.py", line 1' in broken.message
    assert broken.log.rstrip().endswith("SyntaxError: invalid syntax")
    assert "Traceback" not in broken.log


def test_a_warm_job_reads_its_task_files_read_only(run, task_files):
    task_files["train.npz"].chmod(0o600)  # only root may read it: copied, the other linked
    result = run(
        "import os\n"
        "import topdown_task as tt\n"
        "print(sorted(os.listdir('/task')), tt.load('train')[1].tolist(), tt.load('test_inputs').shape)\n"
        "for attempt in (lambda: open('/task/test_inputs.npz', 'r+b'),\n"
        "                lambda: open('/task/planted.txt', 'w'),\n"
        "                lambda: os.remove('/task/test_inputs.npz')):\n"
        "    try:\n"
        "        attempt()\n"
        "        print('WRITABLE')\n"
        "    except OSError as error:\n"
        "        print('refused', error.errno)\n",
        task=task_files,
        warm_start=True,
    )

    assert result.outcome is Outcome.COMPLETED, result.message
    lines = result.log.splitlines()
    assert lines[0] == "['test_inputs.npz', 'train.npz'] [0, 1, 0, 1] (3, 2)"
    assert lines[1:] == ["refused 13", "refused 30", "refused 30"]  # EACCES, EROFS, EROFS
    linked = (2, 1) if os.geteuid() == 0 else (2, 2)  # a job uid of its own cannot read it
    assert tuple(task_files[name].stat().st_nlink for name in sorted(task_files)) == linked
    result.cleanup()
    assert task_files["test_inputs.npz"].stat().st_nlink == 1


def job(run, barrier: threading.Barrier, results: list[JobResult]) -> None:
    barrier.wait()
    results.append(
        run(
            "import os, time\n"
            "open('/tmp/mine', 'x').write('one job per sandbox')\n"
            "time.sleep(0.3)\n"
            "print(os.getuid())\n"
        )
    )


def test_jobs_from_two_threads_at_once_never_share_a_warm_sandbox(run, jobs_root):
    limits = Limits(**SMALL)
    job_dirs: set[Path | None] = set()
    for _ in range(3):
        warm_start_prepare(limits, jobs_root=jobs_root)
        assert warm_start_wait(limits, jobs_root=jobs_root)
        barrier = threading.Barrier(2)
        results: list[JobResult] = []
        threads = [threading.Thread(target=job, args=(run, barrier, results)) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        assert [r.outcome for r in results] == [Outcome.COMPLETED] * 2, results[0].message
        assert sorted(r.warm_start for r in results) == [False, True]
        assert len({r.uid for r in results}) == 2 and len({r.job_dir for r in results}) == 2
        assert [r.log for r in results] == [f"{r.uid}\n" for r in results]
        # Both finished, both asked for a warm sandbox for the next job: one is made.
        job_dirs.update(r.job_dir for r in results)
        assert warm_start_wait(limits, jobs_root=jobs_root)
        assert len(folders(jobs_root) - job_dirs) == 1


def test_an_idle_warm_sandbox_is_destroyed_after_the_idle_timeout(
    run, jobs_root, no_warm_sandbox, monkeypatch
):
    monkeypatch.setenv("TOPDOWN_WARM_IDLE_SECONDS", "1")
    limits = Limits(**SMALL)
    warm_start_prepare(limits, jobs_root=jobs_root)
    assert warm_start_wait(limits, jobs_root=jobs_root)
    (waiting,) = folders(jobs_root)
    assert warm_sandbox_processes(waiting)  # its interpreter, waiting for a job

    deadline = time.monotonic() + 10
    while waiting.exists() and time.monotonic() < deadline:
        time.sleep(0.05)

    assert not waiting.exists()
    assert warm_sandbox_processes(waiting) == []
    assert not warm_start_wait(limits, jobs_root=jobs_root, timeout=0.2)
    assert not run("print('cold')\n").warm_start


def test_a_warm_sandbox_that_died_while_waiting_is_replaced_by_a_cold_start(
    run, jobs_root, no_warm_sandbox
):
    limits = Limits(**SMALL)
    warm_start_prepare(limits, jobs_root=jobs_root)
    assert warm_start_wait(limits, jobs_root=jobs_root)
    (waiting,) = folders(jobs_root)
    (interpreter,) = [
        pid
        for pid in warm_sandbox_processes(waiting)
        if Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[1] == b"-c"
    ]
    os.kill(interpreter, signal.SIGKILL)  # as the kernel's OOM killer might

    result = run("print('ran')\n")

    assert result.outcome is Outcome.COMPLETED and result.log == "ran\n"
    assert not result.warm_start
    assert not waiting.exists()


def test_gpu_jobs_and_the_fallback_always_start_cold(run, jobs_root):
    limits = Limits(**SMALL)
    for job in (
        {"device": "cuda", "gpu_index": 0 if Path("/dev/nvidia0").exists() else None},
        {"backend": "fallback"},
    ):
        warm_start_prepare(limits, jobs_root=jobs_root)
        assert warm_start_wait(limits, jobs_root=jobs_root)

        result = run("print('ran')\n", **job)

        assert result.outcome is Outcome.COMPLETED, result.message
        assert not result.warm_start
        assert warm_start_wait(limits, jobs_root=jobs_root, timeout=0.2)  # still unused


def test_the_warm_start_can_be_switched_off(jobs_root, no_warm_sandbox, monkeypatch):
    monkeypatch.setenv("TOPDOWN_WARM_START", "0")
    limits = Limits(**SMALL)
    results = []
    for _ in range(2):
        spec = JobSpec(job_id=f"job_{uuid.uuid4().hex[:12]}", files={"main.py": b""}, limits=limits)
        results.append(run_job(spec, jobs_root=jobs_root))
    warm_start_prepare(limits, jobs_root=jobs_root)
    try:
        assert [r.outcome for r in results] == [Outcome.COMPLETED] * 2
        assert [r.warm_start for r in results] == [False, False]
        assert not warm_start_wait(limits, jobs_root=jobs_root, timeout=0.5)
        assert folders(jobs_root) == {r.job_dir for r in results}
    finally:
        for result in results:
            result.cleanup()


def test_shutdown_destroys_the_waiting_sandbox(jobs_root, no_warm_sandbox):
    limits = Limits(**SMALL)
    warm_start_prepare(limits, jobs_root=jobs_root)
    assert warm_start_wait(limits, jobs_root=jobs_root)
    (waiting,) = folders(jobs_root)

    sandbox.warm_start_shutdown()

    assert not waiting.exists() and warm_sandbox_processes(waiting) == []
    assert not warm_start_wait(limits, jobs_root=jobs_root, timeout=0.2)
