"""Real jobs through the real sandbox: what a student sees for each way a job can end."""

from __future__ import annotations

import fcntl
import json
import os
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from tests.workers.conftest import SMALL, job_processes
from workers import sandbox
from workers.cgroups import create_job_cgroups
from workers.jobs import JobSpec, Limits, Outcome
from workers.predictions import read_predictions
from workers.sandbox import (
    SandboxUnavailable,
    run_job,
    sweep_stale_job_folders,
    warm_start_prepare,
    warm_start_wait,
)

ALLOWED_ENV = {
    "PATH",
    "HOME",
    "LANG",
    "PYTHONPATH",
    "PYTHONUNBUFFERED",
    "PYTHONDONTWRITEBYTECODE",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "TOPDOWN_TASK_DIR",
    "TOPDOWN_OUTPUT_DIR",
    "TOPDOWN_DEVICE",
    "CUDA_VISIBLE_DEVICES",
    "CUDA_DEVICE_ORDER",
}


def test_a_training_job_saves_predictions_and_streams_its_log_and_metrics(run, task_files):
    events: list[tuple[float, str, object]] = []
    result = run(
        "import time\n"
        "import topdown_task as tt\n"
        "x, y = tt.load('train')\n"
        "print('training on', len(x), 'examples')\n"
        "tt.log(epoch=1, loss=0.5)\n"
        "time.sleep(1.5)\n"
        "tt.log(epoch=2, loss=0.25)\n"
        "tt.save_predictions([0, 1, 0])\n",
        task=task_files,
        on_log=lambda line: events.append((time.monotonic(), "log", line)),
        on_metric=lambda metric: events.append((time.monotonic(), "metric", metric)),
    )
    returned_at = time.monotonic()

    assert result.outcome is Outcome.COMPLETED, result.message
    assert result.message.startswith("Completed in")
    assert result.backend == "bwrap" and not result.degraded
    assert result.log == "training on 4 examples\n"  # metric lines are not part of the log
    assert [(m["epoch"], m["loss"]) for m in result.metrics] == [(1, 0.5), (2, 0.25)]
    predictions = read_predictions(result.output_dir / "predictions.npy", expected_rows=3)
    assert predictions.tolist() == [0, 1, 0]
    # The first line and the first metric reached the callbacks while the job still slept.
    first_log = next(at for at, kind, _ in events if kind == "log")
    first_metric = next(at for at, kind, _ in events if kind == "metric")
    assert returned_at - first_log > 1.0 and returned_at - first_metric > 1.0
    assert json.loads(json.dumps(result.to_dict()))["outcome"] == "completed"


def test_a_crash_says_how_it_exited_and_quotes_the_traceback(run):
    result = run("def train():\n    raise ValueError('the shapes do not match')\ntrain()\n")

    assert result.outcome is Outcome.CRASHED
    assert result.exit_code == 1
    assert result.message.startswith("Exited with code 1.")
    assert "Traceback (most recent call last):" in result.message
    assert "ValueError: the shapes do not match" in result.message


def test_a_job_killed_by_a_signal_says_which(run):
    result = run("import os, signal\nos.kill(os.getpid(), signal.SIGSEGV)\n")

    assert result.outcome is Outcome.CRASHED
    assert result.signal == signal.SIGSEGV
    assert "Killed by SIGSEGV" in result.message and "segmentation fault" in result.message


def test_sleeping_past_the_wall_clock_is_stopped_at_the_limit(run):
    result = run("import time\nprint('sleeping', flush=True)\ntime.sleep(60)\n", wall_seconds=2)

    assert result.outcome is Outcome.TIMEOUT
    assert result.message == "Stopped after 2 s: the time limit."
    assert 2.0 <= result.duration_s < 3.5
    assert result.log == "sleeping\n"
    assert job_processes(result.job_id, result.uid) == []


def test_spinning_past_the_cpu_limit_is_a_timeout(run):
    result = run("while True:\n    pass\n", cpu_seconds=1, wall_seconds=10)

    assert result.outcome is Outcome.TIMEOUT
    assert result.signal == signal.SIGXCPU
    assert result.message == "Stopped after using 1 s of CPU time: the CPU limit."
    assert result.duration_s < 5


def test_an_output_flood_is_capped_counted_and_does_not_block(run):
    streamed: list[str] = []
    result = run(
        "import time\n"
        "import topdown_task as tt\n"
        "end = time.monotonic() + 1.5\n"
        "while time.monotonic() < end:\n"
        "    print('x' * 100)\n"
        "tt.log(final=1)\n",
        log_bytes=10_000,
        on_log=streamed.append,
    )

    assert result.outcome is Outcome.COMPLETED, result.message
    assert len(result.log.encode()) <= 10_000
    assert result.log.startswith("x" * 100 + "\n")
    assert result.log_dropped_bytes > 100_000
    assert len(streamed) == result.log.count("\n")  # only what was kept was streamed
    assert result.metrics and result.metrics[-1]["final"] == 1  # metrics still came through


def test_a_huge_file_stops_at_the_file_size_limit(run):
    result = run("open('/work/big.bin', 'wb').write(b'0' * 3_000_000)\n", file_size_mb=1)

    assert result.outcome is Outcome.CRASHED
    assert "File too large" in result.message
    assert "A file grew past the file size limit (1 MB)." in result.message
    assert os.path.getsize(result.output_dir.parent / "work" / "big.bin") <= 1024 * 1024


def test_a_program_that_does_not_ignore_sigxfsz_is_killed_by_it(run):
    result = run(
        "import signal\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_DFL)\n"
        "open('/output/big.bin', 'wb').write(b'0' * 3_000_000)\n",
        file_size_mb=1,
    )

    assert result.outcome is Outcome.CRASHED
    assert result.signal == signal.SIGXFSZ
    assert "Killed by SIGXFSZ. A file grew past the file size limit (1 MB)." in result.message


def test_filling_the_disk_past_the_quota_stops_the_job(run):
    result = run(
        "import time\n"
        "for i in range(4):\n"
        "    open(f'/work/part{i}.bin', 'wb').write(b'0' * 2_000_000)\n"
        "time.sleep(30)\n",
        disk_mb=4,
        file_size_mb=3,
    )

    assert result.outcome is Outcome.CRASHED
    assert result.message == "Used more than 4 MB of disk space: the disk limit."
    assert result.duration_s < 5


def test_opening_too_many_files_names_the_limit(run):
    result = run("handles = [open('/work/main.log', 'w') for _ in range(100)]\n", open_files=32)

    assert result.outcome is Outcome.CRASHED
    assert "It opened more files than the limit (32)." in result.message


def test_the_job_sees_only_a_clean_environment(run, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgres://secret-user:secret-pass@db/topdown")
    monkeypatch.setenv("TOPDOWN_TEST_SECRET", "s3cr3t-do-not-leak")
    result = run(
        "import json, os\n"
        "print(json.dumps(dict(os.environ)))\n"
        "for path in ('/proc/self/environ', '/proc/1/environ'):\n"
        "    try:\n"
        "        print(path, open(path, 'rb').read())\n"
        "    except OSError as error:\n"
        "        print(path, error)\n"
    )

    assert result.outcome is Outcome.COMPLETED, result.message
    environment = json.loads(result.log.splitlines()[0])
    assert set(environment) <= ALLOWED_ENV
    assert environment["HOME"] == "/work" and environment["TOPDOWN_DEVICE"] == "cpu"
    assert "s3cr3t-do-not-leak" not in result.log
    assert "secret-pass" not in result.log and "DATABASE_URL" not in result.log


def test_the_task_folder_is_read_only(run, task_files):
    result = run(
        "import os\n"
        "print(sorted(os.listdir(os.environ['TOPDOWN_TASK_DIR'])))\n"
        "for attempt in (lambda: open('/task/train.npz', 'r+b'),\n"
        "                lambda: open('/task/planted.txt', 'w'),\n"
        "                lambda: os.remove('/task/test_inputs.npz')):\n"
        "    try:\n"
        "        attempt()\n"
        "        print('WRITABLE')\n"
        "    except OSError as error:\n"
        "        print('refused', error.errno)\n",
        task=task_files,
    )

    assert result.outcome is Outcome.COMPLETED, result.message
    assert result.log.splitlines()[0] == "['test_inputs.npz', 'train.npz']"
    assert "WRITABLE" not in result.log and result.log.count("refused") == 3
    assert np.load(task_files["train.npz"])["y"].tolist() == [0, 1, 0, 1]


def test_a_task_file_only_root_can_read_is_still_readable_by_the_job(run, task_files):
    task_files["train.npz"].chmod(0o600)
    result = run(
        "import topdown_task as tt\nprint(tt.load('train')[1].tolist())\n", task=task_files
    )

    assert result.outcome is Outcome.COMPLETED, result.message
    assert result.log == "[0, 1, 0, 1]\n"


@pytest.mark.parametrize("warm_start", [False, True], ids=["cold", "warm"])
def test_an_interrupted_run_kills_the_job_and_removes_its_folder(
    run, jobs_root, no_warm_sandbox, warm_start
):
    class WorkerShutdown(BaseException):
        pass

    seen: list[str] = []

    def interrupt(line: str) -> None:
        seen.append(line)
        raise WorkerShutdown

    if warm_start:  # its folder is there before the job comes, then goes with the job
        limits = Limits(**SMALL)
        warm_start_prepare(limits, jobs_root=jobs_root)
        assert warm_start_wait(limits, jobs_root=jobs_root)
    before = set(jobs_root.iterdir())
    with pytest.raises(WorkerShutdown):
        run(
            "import os, sys, time\nprint(sys.argv[0], os.getuid(), flush=True)\ntime.sleep(60)\n",
            on_log=interrupt,
            warm_start=warm_start,
        )

    assert seen and seen[0].startswith("job_")
    after = set(jobs_root.iterdir())
    assert after <= before and len(before - after) == (1 if warm_start else 0)
    entrypoint, uid = seen[0].split()
    assert job_processes(entrypoint, int(uid)) == []


def test_jobs_run_side_by_side_from_worker_threads(run):
    results = []
    threads = [
        threading.Thread(
            target=lambda: results.append(run("import os, time\ntime.sleep(0.5)\nprint('done')\n"))
        )
        for _ in range(3)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert [result.outcome for result in results] == [Outcome.COMPLETED] * 3
    assert all(result.log == "done\n" for result in results)
    assert len({result.output_dir for result in results}) == 3
    if os.geteuid() == 0:
        assert len({result.uid for result in results}) == 3  # a uid of its own each


def test_a_launcher_failure_is_an_infrastructure_outcome(run, monkeypatch, tmp_path):
    real_create = sandbox.create_job_cgroups
    replaced: list[Path] = []

    def broken_cgroups(name, **limits):
        groups, warnings = real_create(name, **limits)
        assert groups is not None and groups.pids is not None
        replaced.append(groups.pids)
        groups.pids = tmp_path / "vanished"  # the launch step (sh) cannot join it
        return groups, warnings

    monkeypatch.setattr(sandbox, "create_job_cgroups", broken_cgroups)
    try:
        result = run("print('never runs')\n", warm_start=False)
    finally:
        for folder in replaced:
            folder.rmdir()

    assert result.outcome is Outcome.INFRASTRUCTURE
    assert result.message.startswith(
        f"The sandbox could not run the job: cannot join the job's cgroup {tmp_path}/vanished/"
    )
    assert "never runs" not in result.log


@pytest.mark.skipif(os.geteuid() != 0, reason="setpriv switches uid only for a root worker")
def test_a_failed_switch_to_the_job_uid_is_an_infrastructure_outcome(run, monkeypatch):
    # Without CAP_SETUID/CAP_SETGID left in the sandbox, setpriv cannot become the job's uid.
    monkeypatch.setattr(sandbox, "SANDBOX_CAPABILITIES", ())
    result = run("print('never runs')\n", warm_start=False)

    assert result.outcome is Outcome.INFRASTRUCTURE
    assert result.message.startswith("The sandbox could not run the job: the job did not start: ")
    assert "setpriv: " in result.message and "Operation not permitted" in result.message
    assert "never runs" not in result.log


def test_an_rlimit_the_kernel_refuses_is_an_infrastructure_outcome(run):
    result = run("print('never runs')\n", open_files=1 << 30, warm_start=False)  # > nr_open

    assert result.outcome is Outcome.INFRASTRUCTURE
    assert result.message.startswith("The sandbox could not run the job: prlimit: ")
    assert "NOFILE" in result.message


def test_without_setpriv_or_prlimit_bubblewrap_is_refused_and_auto_falls_back(
    jobs_root, monkeypatch
):
    real_tool = sandbox.system_tool
    monkeypatch.setattr(
        sandbox, "system_tool", lambda name: None if name == "setpriv" else real_tool(name)
    )
    monkeypatch.setattr(sandbox, "_detected", None)
    spec = JobSpec(job_id="no-setpriv", files={"main.py": b"print('ran')\n"})

    with pytest.raises(SandboxUnavailable, match=r"setpriv \(util-linux\) not found"):
        run_job(spec, backend="bwrap", jobs_root=jobs_root)
    status = sandbox.detect_backend(jobs_root=jobs_root)
    monkeypatch.setattr(sandbox, "_detected", None)  # the next test detects again

    assert status.backend == "fallback"
    assert "setpriv (util-linux) not found" in status.reason


def test_a_bubblewrap_that_cannot_set_up_is_an_infrastructure_outcome(run, monkeypatch, tmp_path):
    fake = tmp_path / "bwrap"
    fake.write_text("#!/bin/sh\necho 'bwrap: Creating new namespace failed: nope' >&2\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setenv("TOPDOWN_BWRAP", str(fake))
    result = run("print('never runs')\n", backend="bwrap")

    assert result.outcome is Outcome.INFRASTRUCTURE
    assert result.message == (
        "The sandbox could not run the job: bwrap: Creating new namespace failed: nope"
    )


def test_without_cgroups_memory_is_capped_as_address_space_and_said_so(run, monkeypatch):
    monkeypatch.setattr(sandbox, "create_job_cgroups", lambda name, **limits: (None, []))
    result = run("chunks = []\nwhile True:\n    chunks.append(b'x' * 10_000_000)\n", memory_mb=256)

    assert result.outcome is Outcome.MEMORY
    assert result.message.startswith("Ran out of memory (limit 256 MB).")
    assert "MemoryError" in result.message
    assert any("RLIMIT_AS" in warning for warning in result.warnings)


def test_without_cgroups_a_gpu_job_gets_no_address_space_limit(monkeypatch, jobs_root):
    monkeypatch.setattr(sandbox.gpu, "device_nodes", lambda index: [Path("/dev/null")])
    spec = JobSpec(job_id="gpu", files={"main.py": b""}, device="cuda", gpu_index=0)
    job = sandbox._Job(spec, backend="bwrap", bwrap="/usr/bin/bwrap", jobs_root=jobs_root)

    rlimits = job._rlimits()  # no cgroups were made for this job

    assert job.plan.device == "cuda"
    assert not any(rlimit.startswith("RLIMIT_AS") for rlimit in rlimits)
    assert any("no memory limit" in warning for warning in job.plan.warnings)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs a job uid of its own (RLIMIT_NPROC)")
def test_without_cgroups_a_fork_bomb_is_still_contained(run, monkeypatch):
    monkeypatch.setattr(sandbox, "create_job_cgroups", lambda name, **limits: (None, []))
    result = run(
        "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n",
        processes=16,
        wall_seconds=2,
    )

    assert result.uid is not None
    assert result.outcome in (Outcome.TIMEOUT, Outcome.CRASHED)
    assert job_processes(result.job_id, result.uid) == []


def test_the_fallback_backend_runs_the_job_but_says_it_is_degraded(run, task_files):
    result = run(
        "import topdown_task as tt\ntt.save_predictions([1, 1, 1])\n",
        backend="fallback",
        task=task_files,
    )

    assert result.outcome is Outcome.COMPLETED, result.message
    assert result.backend == "fallback" and result.degraded
    assert "degraded sandbox" in result.message
    assert any(warning.startswith("degraded sandbox") for warning in result.warnings)
    assert np.load(result.output_dir / "predictions.npy").tolist() == [1, 1, 1]


@pytest.mark.parametrize("backend", ["bwrap", "fallback"])
def test_jobs_run_at_a_lower_cpu_priority_than_the_worker(run, backend, monkeypatch):
    monkeypatch.setenv("TOPDOWN_JOB_NICE", "7")
    result = run(
        "import os\nprint('nice', os.nice(0))\nprint(open('/proc/self/autogroup').read())\n",
        backend=backend,
        warm_start=False,
    )

    assert result.outcome is Outcome.COMPLETED, result.message
    nice = min(os.nice(0) + 7, 19)
    assert f"nice {nice}\n" in result.log
    if Path("/proc/sys/kernel/sched_autogroup_enabled").read_text().strip() == "1":
        # the job's session is an autogroup of its own: nice only counts if it is lowered too
        assert "/autogroup-" in result.log and f" nice {nice}" in result.log.split("\n", 1)[1]


def test_the_fallback_is_refused_when_degraded_runs_are_not_allowed(jobs_root):
    spec = JobSpec(job_id="refused", files={"main.py": b"print('never runs')\n"})

    with pytest.raises(SandboxUnavailable, match="degraded"):
        run_job(spec, backend="fallback", allow_degraded=False, jobs_root=jobs_root)


def test_without_bubblewrap_auto_falls_back_and_strict_mode_refuses(jobs_root, monkeypatch):
    monkeypatch.setenv("TOPDOWN_BWRAP", "/nonexistent/bwrap")
    monkeypatch.setattr(sandbox, "_detected", None)
    spec = JobSpec(job_id="no-bwrap", files={"main.py": b"print('ran')\n"})

    with pytest.raises(SandboxUnavailable, match="not installed"):
        run_job(spec, allow_degraded=False, jobs_root=jobs_root)
    result = run_job(spec, jobs_root=jobs_root)
    result.cleanup()

    assert result.backend == "fallback" and result.degraded
    assert result.outcome is Outcome.COMPLETED and result.log == "ran\n"
    assert "bubblewrap (bwrap) is not installed" in " ".join(result.warnings)
    monkeypatch.setattr(sandbox, "_detected", None)  # the next test detects again


def test_bubblewrap_is_detected_on_this_machine():
    status = sandbox.detect_backend(refresh=True)

    assert status.backend == "bwrap", status.reason


@pytest.mark.skipif(Path("/dev/nvidia0").exists(), reason="this machine has a GPU")
def test_a_gpu_job_on_a_machine_without_gpu_runs_on_the_cpu_and_says_so(run):
    result = run("import topdown_task as tt\nprint(tt.device())\n", device="cuda", gpu_index=0)

    assert result.outcome is Outcome.COMPLETED, result.message
    assert result.log == "cpu\n"
    assert result.device == "cpu"
    assert "No GPU was available on this worker, so it ran on the CPU." in result.message


@pytest.mark.skipif(not Path("/dev/nvidia0").exists(), reason="needs a GPU")
def test_a_gpu_job_sees_only_its_gpu(run):
    result = run(
        "import ctypes, os\n"
        "print(os.environ['TOPDOWN_DEVICE'], sorted(os.listdir('/dev')))\n"
        "cuda = ctypes.CDLL('libcuda.so.1')\n"
        "count = ctypes.c_int()\n"
        "print(cuda.cuInit(0), cuda.cuDeviceGetCount(ctypes.byref(count)), count.value)\n",
        device="cuda",
        gpu_index=0,
        memory_mb=2048,
    )

    assert result.outcome is Outcome.COMPLETED, result.message
    assert result.device == "cuda"
    assert result.log.startswith("cuda ") and "nvidia0" in result.log
    assert result.log.splitlines()[-1] == "0 0 1"


def test_the_cgroups_of_a_folder_left_by_a_dead_worker_go_with_it(tmp_path):
    root = tmp_path / "jobs"
    root.mkdir(mode=0o711)
    stale = root / f"dead{os.urandom(8).hex()}"
    (stale / "work").mkdir(parents=True)
    old = time.time() - 3600
    os.utime(stale, (old, old))
    groups, _ = create_job_cgroups(stale.name, memory_bytes=64 * 1024 * 1024, pids_max=4)
    if groups is None:
        pytest.skip("no cgroups here")
    assert all(folder.is_dir() for folder in groups.dirs)

    removed = sweep_stale_job_folders(root, older_than_seconds=600)

    assert removed == [stale]
    assert not any(folder.exists() for folder in groups.dirs)


def test_folders_left_by_a_dead_worker_are_swept_but_running_jobs_are_not(tmp_path):
    root = tmp_path / "jobs"
    root.mkdir(mode=0o711)
    stale = root / "deadbeef"
    (stale / "work").mkdir(parents=True)
    (stale / "work" / "main.py").write_text("print(1)")
    old = time.time() - 3600
    os.utime(stale, (old, old))
    fresh = root / "cafe"
    fresh.mkdir()
    busy = root / "busy"
    busy.mkdir()
    os.utime(busy, (old, old))
    lock = os.open(busy, os.O_RDONLY | os.O_DIRECTORY)
    fcntl.flock(lock, fcntl.LOCK_EX)  # as a running job holds its folder
    try:
        removed = sweep_stale_job_folders(root, older_than_seconds=600)
    finally:
        os.close(lock)
    assert removed == [stale]
    assert not stale.exists() and fresh.exists() and busy.exists()

    # A real job's folder is locked while it runs: a sweep meanwhile leaves it alone.
    swept_during: list[Path] = []
    spec = JobSpec(job_id="sweep", files={"main.py": b"import time; time.sleep(1.5)"})

    def sweep_soon():
        time.sleep(0.7)
        swept_during.extend(sweep_stale_job_folders(root, older_than_seconds=0))

    sweeper = threading.Thread(target=sweep_soon)
    sweeper.start()
    result = run_job(spec, jobs_root=root)
    sweeper.join()
    try:
        assert result.outcome == Outcome.COMPLETED, result.message
        assert result.job_dir not in swept_during
    finally:
        result.cleanup()
