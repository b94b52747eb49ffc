"""Hostile jobs: each attack must be contained, and the worker (this process) must survive it.

Every job here runs through the real sandbox with small limits. The fork and memory bombs rely
on the limits they test: the pids cgroup (or the job's own uid with RLIMIT_NPROC) and the
memory cgroup (or RLIMIT_AS).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.workers.conftest import job_processes, processes_are_capped
from workers.jobs import Outcome

REPO = Path(__file__).resolve().parents[2]


def outputs(log: str) -> dict[str, str]:
    return json.loads(log.strip().splitlines()[-1])


@pytest.mark.parametrize("warm_start", [False, True], ids=["cold", "warm"])
def test_a_memory_bomb_is_stopped_at_the_memory_limit(run, warm_start):
    result = run(
        "chunks = []\nwhile True:\n    chunks.append(b'x' * 10_000_000)\n",
        memory_mb=256,
        warm_start=warm_start,
    )

    assert result.outcome is Outcome.MEMORY
    assert result.message == "Ran out of memory (limit 256 MB)."
    assert result.duration_s < 5


def test_filling_dev_shm_counts_against_the_memory_limit(run):
    result = run(
        "with open('/dev/shm/fill', 'wb') as f:\n"
        "    for _ in range(40):\n"
        "        f.write(b'x' * 10_000_000)\n"
        "print('wrote 400 MB')\n",
        memory_mb=256,
    )

    assert result.outcome in (Outcome.MEMORY, Outcome.CRASHED)
    assert "wrote 400 MB" not in result.log


@pytest.mark.skipif(not processes_are_capped(), reason="nothing here would cap a fork bomb")
@pytest.mark.parametrize("warm_start", [False, True], ids=["cold", "warm"])
def test_a_fork_bomb_is_contained_and_leaves_nothing_behind(run, warm_start):
    result = run(
        "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n",
        processes=16,
        wall_seconds=3,
        warm_start=warm_start,
    )

    assert result.outcome in (Outcome.TIMEOUT, Outcome.CRASHED)
    assert job_processes(result.job_id, result.uid) == []
    assert subprocess.run(["true"], check=False).returncode == 0  # the machine can still fork


@pytest.mark.parametrize(
    ("backend", "warm_start"),
    [("bwrap", False), ("bwrap", True), ("fallback", None)],
    ids=["bwrap-cold", "bwrap-warm", "fallback"],
)
def test_a_double_forked_daemon_does_not_outlive_its_job(run, backend, warm_start):
    result = run(
        "import os, time\n"
        "if os.fork() == 0:\n"
        "    os.setsid()\n"
        "    if os.fork() == 0:\n"
        "        time.sleep(60)\n"
        "    os._exit(0)\n"
        "time.sleep(0.3)\n"
        "print('parent leaves')\n",
        backend=backend,
        warm_start=warm_start,
    )

    assert result.outcome is Outcome.COMPLETED, result.message
    assert result.log == "parent leaves\n"
    assert job_processes(result.job_id, result.uid) == []
    assert not [warning for warning in result.warnings if "surviv" in warning]


@pytest.fixture
def listeners() -> Iterator[tuple[int, str]]:
    """A TCP port on 127.0.0.1 and a unix socket anyone may connect to, both accepting."""
    folder = Path(tempfile.mkdtemp(prefix="topdown-sock-"))
    folder.chmod(0o755)
    tcp = socket.create_server(("127.0.0.1", 0))
    unix = socket.socket(socket.AF_UNIX)
    unix.bind(str(folder / "service.sock"))
    (folder / "service.sock").chmod(0o777)
    unix.listen()
    stop = threading.Event()

    def accept(server: socket.socket) -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            with contextlib.suppress(OSError):
                server.accept()[0].close()

    threads = [threading.Thread(target=accept, args=(s,), daemon=True) for s in (tcp, unix)]
    for thread in threads:
        thread.start()
    yield tcp.getsockname()[1], str(folder / "service.sock")
    stop.set()
    for thread in threads:
        thread.join()
    tcp.close()
    unix.close()
    (folder / "service.sock").unlink()
    folder.rmdir()


@pytest.mark.parametrize("warm_start", [False, True], ids=["cold", "warm"])
def test_the_network_and_local_sockets_are_out_of_reach(run, listeners, warm_start):
    port, unix_path = listeners
    socket.create_connection(("127.0.0.1", port), timeout=2).close()  # reachable from here
    targets = {
        "redis": ("127.0.0.1", 6379),
        "postgres": ("127.0.0.1", 5432),
        "listener": ("127.0.0.1", port),
        "internet": ("1.1.1.1", 53),
    }
    sockets = [unix_path, "/var/run/postgresql/.s.PGSQL.5432", "/tmp/.s.PGSQL.5432"]
    result = run(
        "import json, socket\n"
        f"targets = {targets!r}\n"
        f"sockets = {sockets!r}\n"
        "found = {}\n"
        "for name, address in targets.items():\n"
        "    try:\n"
        "        socket.create_connection(address, timeout=2).close()\n"
        "        found[name] = 'CONNECTED'\n"
        "    except OSError as error:\n"
        "        found[name] = type(error).__name__\n"
        "for path in sockets:\n"
        "    client = socket.socket(socket.AF_UNIX)\n"
        "    try:\n"
        "        client.connect(path)\n"
        "        found[path] = 'CONNECTED'\n"
        "    except OSError as error:\n"
        "        found[path] = type(error).__name__\n"
        "print(json.dumps(found))\n",
        warm_start=warm_start,
    )

    assert result.outcome is Outcome.COMPLETED, result.message
    found = outputs(result.log)
    assert set(found) == set(targets) | set(sockets)
    assert "CONNECTED" not in found.values(), found


@pytest.mark.parametrize("warm_start", [False, True], ids=["cold", "warm"])
def test_files_outside_the_sandbox_cannot_be_read(run, jobs_root, monkeypatch, warm_start):
    monkeypatch.setenv("TOPDOWN_TEST_SECRET", "hidden-labels-s3cret")
    elsewhere = Path(tempfile.mkdtemp(prefix="topdown-hidden-"))
    elsewhere.chmod(0o755)
    labels = elsewhere / "test_labels.npy"
    labels.write_text("hidden-labels-s3cret")
    labels.chmod(0o644)
    other_job = jobs_root / "0123456789abcdef01234567"
    (other_job / "work").mkdir(parents=True)
    (other_job / "work" / "main.py").write_text("hidden-labels-s3cret")
    for path in (other_job, other_job / "work", other_job / "work" / "main.py"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    targets = [
        str(labels),
        str(other_job / "work" / "main.py"),
        str(REPO / "topdown" / "settings.py"),
        "/etc/shadow",
        "/root/.bash_history",
        "/proc/1/environ",
    ]
    try:
        assert labels.read_text() == "hidden-labels-s3cret"  # readable from the worker
        result = run(
            "import json, os\n"
            f"targets = {targets!r}\n"
            "found = {}\n"
            "for path in targets:\n"
            "    try:\n"
            "        found[path] = 'READ ' + open(path, 'rb').read(200).decode(errors='replace')\n"
            "    except OSError as error:\n"
            "        found[path] = type(error).__name__\n"
            "commands = []\n"
            "for pid in os.listdir('/proc'):\n"
            "    if pid.isdigit():\n"
            "        try:\n"
            "            commands.append(open(f'/proc/{pid}/cmdline', 'rb').read().decode())\n"
            "        except OSError:\n"
            "            pass\n"
            "found['cmdlines'] = commands\n"
            "print(json.dumps(found))\n",
            warm_start=warm_start,
        )
    finally:
        labels.unlink()
        elsewhere.rmdir()
        (other_job / "work" / "main.py").unlink()
        (other_job / "work").rmdir()
        other_job.rmdir()

    assert result.outcome is Outcome.COMPLETED, result.message
    assert "hidden-labels-s3cret" not in result.log
    found = outputs(result.log)
    for path in targets:
        assert not found[path].startswith("READ"), (path, found[path])
    assert len(found["cmdlines"]) <= 3  # bubblewrap's init and the job: no host process
    assert not any("pytest" in command for command in found["cmdlines"])


def test_signalling_everything_or_the_parent_does_not_reach_the_worker(run):
    bystander = subprocess.Popen(["sleep", "30"])
    try:
        result = run(
            "import os, signal\n"
            "for target in (-1, os.getppid(), 1):\n"
            "    try:\n"
            "        os.kill(target, signal.SIGKILL)\n"
            "        print('sent', target)\n"
            "    except OSError as error:\n"
            "        print('refused', target, type(error).__name__)\n"
            "print('still here')\n"
        )
        assert bystander.poll() is None  # a process of the worker's user, alive
    finally:
        bystander.kill()
        bystander.wait()

    assert result.outcome is Outcome.COMPLETED, result.message
    assert result.log.splitlines()[-1] == "still here"


@pytest.mark.parametrize("warm_start", [False, True], ids=["cold", "warm"])
def test_files_planted_in_tmp_and_dev_shm_do_not_reach_the_next_job(run, warm_start):
    token = os.urandom(6).hex()
    planting = run(
        f"for folder in ('/tmp', '/dev/shm'):\n"
        f"    open(f'{{folder}}/planted-{token}', 'w').write('from the previous job')\n"
        "print('planted')\n",
        warm_start=warm_start,
    )
    looking = run(
        "import os\n"
        f"print([os.path.exists(f'{{f}}/planted-{token}') for f in ('/tmp', '/dev/shm')])\n",
        warm_start=warm_start,
    )

    assert planting.outcome is Outcome.COMPLETED and planting.log == "planted\n"
    assert looking.outcome is Outcome.COMPLETED, looking.message
    assert looking.log == "[False, False]\n"
    assert not any(Path(f"{f}/planted-{token}").exists() for f in ("/tmp", "/dev/shm"))


@pytest.mark.parametrize("warm_start", [False, True], ids=["cold", "warm"])
def test_no_privilege_can_be_regained(run, warm_start):
    result = run(
        "import ctypes, os, subprocess\n"
        "print('uid', os.getuid(), os.geteuid())\n"
        "try:\n"
        "    os.setuid(0)\n"
        "    print('BECAME ROOT')\n"
        "except PermissionError:\n"
        "    print('setuid refused')\n"
        "unshare = subprocess.run(['unshare', '-Ur', 'id'], capture_output=True, text=True)\n"
        "print('unshare', unshare.returncode)\n"
        "libc = ctypes.CDLL(None, use_errno=True)\n"
        "print('userns', libc.unshare(0x10000000), ctypes.get_errno())\n"
        "print('fds', sorted(int(fd) for fd in os.listdir('/proc/self/fd')))\n",
        warm_start=warm_start,
    )

    assert result.outcome is Outcome.COMPLETED, result.message
    lines = result.log.splitlines()
    uid = result.uid if result.uid is not None else 1000
    assert lines[0] == f"uid {uid} {uid}" and uid != 0
    assert lines[1] == "setuid refused"
    assert lines[2] == "unshare 1"  # no user namespaces for the job (seccomp)
    assert lines[3] == "userns -1 1"  # EPERM
    assert lines[4] == "fds [0, 1, 2, 3]"  # nothing inherited but stdio (3: the listing)
