"""What ``burst.py`` and ``faults.py`` share: private stores, the processes, the load, the count.

- ``PrivateStores``: a PostgreSQL cluster and a Redis server of the benchmark's own, on free
  loopback ports, under ``benchmarks/.work/burst-stores/`` (PostgreSQL runs as the ``postgres``
  user, Redis keeps nothing on disk), so a fault can restart them without touching the shared
  servers. Stale ones from a run that was killed are stopped at the next start.
- ``Site``: the seeded site on those stores: gunicorn (``benchmarks.web.Gunicorn``), two Celery
  workers (pool solo, as in production, through ``benchmarks/burst_worker.py`` so that every saved
  grading leaves a line) and beat (the reaper and the reconciler).
- ``Load``: the students, as threads speaking HTTP over loopback: submitters POST the assignment's
  upload form (multipart, CSRF) at scheduled times and follow the redirect; browsers read the
  chapter, the leaderboard and a forum thread with think times between pages.
- ``account``: after the drain, every submission's row against what the client sent and against
  the workers' grading lines.

Every process is started in its own process group and stopped in ``Site.stop`` /
``PrivateStores.stop``, which the scripts call from ``finally`` (SIGINT, SIGTERM and the overall
timeout's SIGALRM become exceptions, so that ``finally`` runs).
"""

from __future__ import annotations

import contextlib
import glob
import http.client
import json
import math
import os
import random
import re
import secrets
import shutil
import signal
import string
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.engine_timing import percentile
from benchmarks.web import (
    PYTHON,
    REPO,
    WORK_DIR,
    BenchmarkError,
    Gunicorn,
    ServerConfig,
    Timeout,
    bench_environment,
    free_port,
    log,
    run,
)

CELERY = str(Path(sys.executable).parent / "celery")
STORES_ROOT = WORK_DIR / "burst-stores"
DATABASE = "topdown_burst"
FINISHED = ("scored", "failed", "cancelled")
STUDENT_REASONS = ("crashed", "invalid_output", "timeout", "memory")


class Interrupted(BaseException):
    """SIGINT, SIGTERM or SIGHUP: stop, clean up, exit 2."""


def install_signal_handlers(overall_timeout_s: int) -> None:
    """The overall time bound and the stop signals become exceptions, so ``finally`` cleans up."""

    def out_of_time(signum: int, frame: FrameType | None) -> None:
        raise Timeout(f"the benchmark ran past its {overall_timeout_s} s bound")

    def stop(signum: int, frame: FrameType | None) -> None:
        raise Interrupted(f"stopped by signal {signal.Signals(signum).name}")

    signal.signal(signal.SIGALRM, out_of_time)
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, stop)
    signal.alarm(overall_timeout_s)


def ignore_stop_signals() -> None:
    """While cleaning up: a second Ctrl-C must not leave servers behind."""
    signal.alarm(0)
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, signal.SIG_IGN)


# --- private PostgreSQL and Redis ----------------------------------------------------------------


def _pg_bin() -> Path:
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(p.split("/")[4])
    )
    if not found:
        raise BenchmarkError("PostgreSQL's server binaries (/usr/lib/postgresql/*/bin) are missing")
    return Path(found[-1]).parent


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


class PrivateStores:
    """PostgreSQL and Redis of the benchmark's own: free loopback ports, a folder of their own."""

    def __init__(self) -> None:
        self.root = STORES_ROOT / f"run-{os.getpid()}"
        self.pg_bin = _pg_bin()
        self.pg_data = self.root / "pg" / "data"
        self.pg_log = self.root / "pg" / "postgres.log"
        self.pg_socket = Path(f"/tmp/topdown-burst-pg-{os.getpid()}")
        self.pg_port = free_port()
        self.redis_port = free_port()
        self.redis: subprocess.Popen[bytes] | None = None
        self.redis_log = self.root / "redis.log"
        self.pg_started = False

    @property
    def server_url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.pg_port}/postgres"

    @property
    def database_url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.pg_port}/{DATABASE}"

    @property
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.redis_port}/0"

    # -- start and stop

    def start(self) -> None:
        if os.geteuid() != 0:
            raise BenchmarkError("run as root: the private PostgreSQL runs as the postgres user")
        if not shutil.which("redis-server"):
            raise BenchmarkError("redis-server is not installed (apt-get install redis-server)")
        stop_stale_stores()
        self.root.mkdir(parents=True)
        (self.root / "owner").write_text(str(os.getpid()))
        (self.root / "pg").mkdir()
        self.pg_socket.mkdir(exist_ok=True)
        for path in (self.root / "pg", self.pg_socket):
            shutil.chown(path, "postgres", "postgres")
        self._as_postgres(
            [
                str(self.pg_bin / "initdb"),
                "-D",
                str(self.pg_data),
                "--auth=trust",
                "-U",
                "postgres",
                "--encoding=UTF8",
                "--no-sync",
            ],
            timeout=120,
        )
        self.pg_start()
        self.redis_start()
        self._wait_for_postgres()
        self._as_postgres(
            [str(self.pg_bin / "createdb"), "-h", "127.0.0.1", "-p", str(self.pg_port), DATABASE],
            timeout=30,
        )

    def _as_postgres(self, command: list[str], *, timeout: float) -> None:
        result = subprocess.run(
            ["runuser", "-u", "postgres", "--", *command],
            cwd="/tmp",
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if result.returncode != 0:
            raise BenchmarkError(
                f"{' '.join(command[:2])} failed ({result.returncode}):\n"
                f"{result.stdout[-2000:]}{result.stderr[-2000:]}"
            )

    def _pg_ctl(self, action: str, *extra: str, timeout: float = 60) -> None:
        options = (
            f"-p {self.pg_port} -k {self.pg_socket} -c listen_addresses=127.0.0.1 "
            "-c max_connections=200 -c shared_buffers=128MB"
        )
        self._as_postgres(
            [
                str(self.pg_bin / "pg_ctl"),
                "-D",
                str(self.pg_data),
                "-l",
                str(self.pg_log),
                "-o",
                options,
                "-w",
                "-t",
                str(int(timeout)),
                *extra,
                action,
            ],
            timeout=timeout + 15,
        )

    def pg_start(self) -> None:
        self._pg_ctl("start")
        self.pg_started = True

    def pg_restart(self) -> None:
        """A clean restart (``pg_ctl restart -m fast``): connections are cut, nothing is lost."""
        self._pg_ctl("restart", "-m", "fast")

    def _wait_for_postgres(self, timeout_s: float = 30) -> None:
        import psycopg

        deadline = time.monotonic() + timeout_s
        while True:
            try:
                with psycopg.connect(self.server_url, connect_timeout=2):
                    return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def redis_start(self) -> None:
        with self.redis_log.open("ab") as out:
            self.redis = subprocess.Popen(
                [
                    "redis-server",
                    "--port",
                    str(self.redis_port),
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--daemonize",
                    "no",
                    "--dir",
                    str(self.root),
                    "--maxclients",
                    "2000",
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        (self.root / "redis.pid").write_text(str(self.redis.pid))
        import redis

        client = redis.Redis(port=self.redis_port, socket_connect_timeout=1)
        deadline = time.monotonic() + 20
        while True:
            with contextlib.suppress(redis.exceptions.ConnectionError):
                if client.ping():
                    return
            if self.redis.poll() is not None or time.monotonic() > deadline:
                raise BenchmarkError(f"redis-server did not start; see {self.redis_log}")
            time.sleep(0.05)

    def redis_stop(self, sig: int = signal.SIGTERM) -> None:
        if self.redis is None or self.redis.poll() is not None:
            return
        self.redis.send_signal(sig)
        try:
            self.redis.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.redis.kill()
            self.redis.wait(timeout=5)

    def redis_restart(self) -> None:
        """Stop and start on the same port: everything Redis held (the queue) is gone."""
        self.redis_stop()
        self.redis_start()

    def versions(self) -> dict[str, str]:
        import psycopg
        import redis

        with psycopg.connect(self.server_url, connect_timeout=5) as connection:
            row = connection.execute("SHOW server_version").fetchone()
        info = redis.Redis(port=self.redis_port).info("server")
        return {"postgresql": row[0] if row else "?", "redis": info["redis_version"]}

    def stop(self) -> None:
        self.redis_stop()
        if self.pg_started and self.pg_data.exists():
            with contextlib.suppress(BenchmarkError, subprocess.SubprocessError):
                self._as_postgres(
                    [
                        str(self.pg_bin / "pg_ctl"),
                        "-D",
                        str(self.pg_data),
                        "-m",
                        "fast",
                        "-w",
                        "-t",
                        "30",
                        "stop",
                    ],
                    timeout=45,
                )
        shutil.rmtree(self.root, ignore_errors=True)
        shutil.rmtree(self.pg_socket, ignore_errors=True)


def stop_stale_stores() -> None:
    """Stores of an earlier run whose process is gone (killed with SIGKILL): stop and remove."""
    if not STORES_ROOT.exists():
        return
    for folder in STORES_ROOT.glob("run-*"):
        owner = folder / "owner"
        with contextlib.suppress(OSError, ValueError):
            if _pid_alive(int(owner.read_text())):
                continue  # another benchmark is running now
        log(f"stopping the stores a killed run left in {folder}")
        with contextlib.suppress(OSError, ValueError):
            pid = int((folder / "redis.pid").read_text())
            if "redis-server" in _cmdline(pid):
                os.kill(pid, signal.SIGKILL)
        pids = folder / "processes"
        with contextlib.suppress(OSError, ValueError):
            for line in pids.read_text().splitlines():
                pgid, marker = line.split(" ", 1)
                if marker in _cmdline(int(pgid)):
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(int(pgid), signal.SIGKILL)
        data = folder / "pg" / "data"
        if (data / "postmaster.pid").exists():
            subprocess.run(
                [
                    "runuser",
                    "-u",
                    "postgres",
                    "--",
                    str(_pg_bin() / "pg_ctl"),
                    "-D",
                    str(data),
                    "-m",
                    "immediate",
                    "-w",
                    "stop",
                ],
                cwd="/tmp",
                capture_output=True,
                timeout=60,
                check=False,
            )
        shutil.rmtree(folder, ignore_errors=True)
        pid_part = folder.name.removeprefix("run-")
        shutil.rmtree(f"/tmp/topdown-burst-pg-{pid_part}", ignore_errors=True)


# --- the site's processes -------------------------------------------------------------------------


def app_environment(
    stores: PrivateStores, work: Path, *, lease_s: int, reap_s: float, reconcile_s: float
) -> dict[str, str]:
    """Production settings (DEBUG off, bubblewrap required) on the private stores."""
    env = bench_environment(stores.database_url, stores.redis_url)
    env = {k: v for k, v in env.items() if not k.startswith(("CELERY_", "GRADER_"))}
    var = work / "var"
    return {
        **env,
        "CACHE_KEY_PREFIX": "topdown-burst",
        "TOPDOWN_VAR_DIR": str(var),
        "MEDIA_ROOT": str(var / "media"),
        "STATIC_ROOT": str(var / "static"),
        "GRADER_SANDBOX": "bwrap",
        "GRADER_ALLOW_DEGRADED": "0",
        "GRADER_LEASE_SECONDS": str(lease_s),
        "GRADER_REAP_SECONDS": str(reap_s),
        "GRADER_RECONCILE_SECONDS": str(reconcile_s),
    }


class CeleryProcess:
    """A worker or beat in its own process group, logging to a file; restartable."""

    def __init__(
        self, name: str, command: list[str], env: dict[str, str], log_path: Path, ready: str
    ) -> None:
        self.name, self.command, self.env = name, command, env
        self.log_path, self.ready_pattern = log_path, re.compile(ready)
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self, *, wait: bool = True) -> float:
        """Start; return the seconds until it said it was ready (0 without ``wait``)."""
        began = time.monotonic()
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with self.log_path.open("ab") as out:
            self.process = subprocess.Popen(
                self.command,
                cwd=REPO,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.starts += 1
        _record_process(self.process.pid, self.command[-1])
        if not wait:
            return 0.0
        deadline = began + 90
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BenchmarkError(f"{self.name} exited at start:\n{self.log_tail()}")
            with self.log_path.open("rb") as handle:
                handle.seek(offset)
                if self.ready_pattern.search(handle.read().decode(errors="replace")):
                    return time.monotonic() - began
            time.sleep(0.1)
        raise BenchmarkError(f"{self.name} was not ready within 90 s:\n{self.log_tail()}")

    def kill(self) -> None:
        """SIGKILL to the whole group (the worker and its sandboxes), as when a machine dies."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=15)
        # Whatever is left in the group (a sandbox, a warm interpreter) goes too.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=5)

    def log_tail(self, lines: int = 30) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


_RECORD_FILE: Path | None = None


def _record_process(pid: int, marker: str) -> None:
    """Remember a process group, so a later run can stop it if this one is killed outright."""
    if _RECORD_FILE is not None:
        with _RECORD_FILE.open("a") as out:
            out.write(f"{pid} {marker}\n")


def worker_hostname(index: int) -> str:
    return f"burst-w{index}"


class Site:
    """Gunicorn, two workers and beat on the seeded private stores."""

    def __init__(
        self,
        stores: PrivateStores,
        work: Path,
        *,
        workers: int,
        web: ServerConfig,
        lease_s: int,
        reap_s: float,
        reconcile_s: float,
        worker_cpus: set[int] | None = None,
    ) -> None:
        global _RECORD_FILE
        _RECORD_FILE = stores.root / "processes"
        self.stores, self.work = stores, work
        self.env = app_environment(
            stores, work, lease_s=lease_s, reap_s=reap_s, reconcile_s=reconcile_s
        )
        self.web_config = web
        self.graded_log = work / "graded.jsonl"
        self.gunicorn: Gunicorn | None = None
        self.workers: list[CeleryProcess] = []
        self.beat: CeleryProcess | None = None
        self.seed: dict[str, Any] = {}
        self.n_workers = workers
        self.worker_cpus = worker_cpus
        self.settings = {"lease_s": lease_s, "reap_s": reap_s, "reconcile_s": reconcile_s}

    def prepare(self, submitters: int, browsers: int) -> None:
        shutil.rmtree(self.work, ignore_errors=True)
        (self.work / "var").mkdir(parents=True)
        log("migrating the private database, collecting static files")
        run([PYTHON, "manage.py", "migrate", "--noinput", "-v0"], env=self.env, timeout=300)
        run([PYTHON, "manage.py", "collectstatic", "--noinput", "-v0"], env=self.env, timeout=180)
        log(f"seeding {submitters} submitting and {browsers} browsing students")
        out = self.work / "seed.json"
        run(
            [
                PYTHON,
                "-m",
                "benchmarks.seed_burst",
                f"--out={out}",
                f"--submitters={submitters}",
                f"--browsers={browsers}",
            ],
            env=self.env,
            timeout=300,
        )
        self.seed = json.loads(out.read_text())

    def start(self) -> None:
        self.gunicorn = Gunicorn(self.web_config, self.env, self.work / "gunicorn.log")
        self.gunicorn.__enter__()
        _record_process(self.gunicorn.process.pid if self.gunicorn.process else 0, "gunicorn")
        worker_env = {**self.env, "LOG_LEVEL": "INFO", "BURST_GRADED_LOG": str(self.graded_log)}
        for index in range(1, self.n_workers + 1):
            hostname = worker_hostname(index)
            pin = (
                ["taskset", "-c", ",".join(map(str, sorted(self.worker_cpus)))]
                if self.worker_cpus
                else []
            )
            command = [
                *pin,
                PYTHON,
                "-m",
                "benchmarks.burst_worker",
                "-A",
                "topdown",
                "worker",
                "--pool=solo",
                "--queues=default,cpu",
                "--without-mingle",
                "--without-gossip",
                "--loglevel=INFO",
                f"--hostname={hostname}@%h",
            ]
            self.workers.append(
                CeleryProcess(
                    hostname,
                    command,
                    worker_env,
                    self.work / f"{hostname}.log",
                    rf"{hostname}@\S+ ready\.",
                )
            )
        beat_command = [
            CELERY,
            "-A",
            "topdown",
            "beat",
            "--loglevel=INFO",
            f"--schedule={self.work / 'beat-schedule'}",
        ]
        self.beat = CeleryProcess(
            "beat", beat_command, self.env, self.work / "beat.log", r"beat: Starting"
        )
        for process in [*self.workers, self.beat]:
            process.start(wait=False)
        deadline = time.monotonic() + 120
        for process in [*self.workers, self.beat]:
            self._wait_ready(process, deadline)
        log(f"gunicorn on port {self.gunicorn.port}, {self.n_workers} workers and beat ready")

    @staticmethod
    def _wait_ready(process: CeleryProcess, deadline: float) -> None:
        while time.monotonic() < deadline:
            if process.process is not None and process.process.poll() is not None:
                raise BenchmarkError(f"{process.name} exited at start:\n{process.log_tail()}")
            if process.ready_pattern.search(process.log_path.read_text(errors="replace")):
                return
            time.sleep(0.2)
        raise BenchmarkError(f"{process.name} was not ready in time:\n{process.log_tail()}")

    def stop(self) -> None:
        for process in [self.beat, *self.workers]:
            if process is not None:
                with contextlib.suppress(Exception):
                    process.stop()
        if self.gunicorn is not None:
            with contextlib.suppress(Exception):
                self.gunicorn.stop()

    def check_pages(self, cookies: dict[str, str]) -> None:
        """Each page the load requests renders what a student expects, before the load."""
        seed = self.seed
        for path, marker in (
            (seed["chapter_path"], seed["chapter_title"]),
            (seed["leaderboard_path"], "eaderboard"),
            (seed["thread_path"], seed["thread_title"]),
            (seed["assignment_path"], 'name="code_file"'),
        ):
            response = get(self.port, path, cookies)
            if response.status != 200 or marker.encode() not in response.body:
                tail = self.gunicorn.log_tail() if self.gunicorn else ""
                raise BenchmarkError(
                    f"GET {path} answered {response.status} without {marker!r}\n{tail}"
                )

    @property
    def port(self) -> int:
        assert self.gunicorn is not None
        return self.gunicorn.port


# --- HTTP ---------------------------------------------------------------------------------------


@dataclass
class Reply:
    status: int  # 0: no answer (connection refused, reset, timeout)
    location: str
    body: bytes
    error: str = ""


def _request(
    port: int, method: str, path: str, headers: dict[str, str], body: bytes | None, timeout: float
) -> Reply:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request(method, path, body=body, headers=headers)
        raw = connection.getresponse()
        return Reply(raw.status, raw.headers.get("Location", ""), raw.read())
    except (OSError, http.client.HTTPException) as error:
        return Reply(0, "", b"", f"{type(error).__name__}: {error}"[:200])
    finally:
        connection.close()


def _cookie_header(cookies: dict[str, str]) -> str:
    return "; ".join(f"{k}={v}" for k, v in cookies.items())


def get(port: int, path: str, cookies: dict[str, str], timeout: float = 30) -> Reply:
    return _request(port, "GET", path, {"Cookie": _cookie_header(cookies)}, None, timeout)


def post_upload(
    port: int,
    path: str,
    cookies: dict[str, str],
    filename: str,
    code: bytes,
    timeout: float = 30,
    token: str = "",
) -> Reply:
    """The assignment page's upload form, as a browser posts it: multipart, with the CSRF token
    and the form's own token (the same on a retry of the same form, as a browser resends it)."""
    boundary = "----topdownburst" + secrets.token_hex(12)
    parts = []
    fields = [("csrfmiddlewaretoken", cookies["csrftoken"]), ("via", "upload")]
    fields += [("token", token)] if token else []
    for name, value in fields:
        disposition = f'Content-Disposition: form-data; name="{name}"'
        parts.append(f"--{boundary}\r\n{disposition}\r\n\r\n{value}\r\n".encode())
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="code_file"; '
        f'filename="{filename}"\r\nContent-Type: text/x-python\r\n\r\n'.encode()
        + code
        + b"\r\n"
    )
    parts.append(f"--{boundary}--\r\n".encode())
    body = b"".join(parts)
    headers = {
        "Cookie": _cookie_header(cookies),
        "Content-Type": f"multipart/form-data; boundary={boundary}",
        "Origin": f"http://127.0.0.1:{port}",
        "Referer": f"http://127.0.0.1:{port}{path}",
    }
    return _request(port, "POST", path, headers, body, timeout)


def student_cookies(session_key: str) -> dict[str, str]:
    """The session from the seed, and a CSRF cookie as Django hands a browser (32 characters)."""
    alphabet = string.ascii_letters + string.digits
    return {
        "sessionid": session_key,
        "csrftoken": "".join(secrets.choice(alphabet) for _ in range(32)),
    }


# --- what the students submit ------------------------------------------------------------------

_LOAD = """import numpy as np
import topdown_task as tt

x_train, y_train = tt.load("train")
x_test = tt.load("test_inputs")
x_train = x_train.reshape(len(x_train), -1).astype(np.float64) / 16
x_test = x_test.reshape(len(x_test), -1).astype(np.float64) / 16
"""

_CENTROID = """centroids = np.stack([x_train[y_train == d].mean(axis=0) for d in range(10)])
distances = {distance}
predictions = distances.argmin(axis=1)
"""

_KNN = """k = {k}
d2 = (x_test**2).sum(1)[:, None] - 2 * x_test @ x_train.T + (x_train**2).sum(1)[None, :]
nearest = np.argsort(d2, axis=1)[:, :k]
votes = np.zeros((len(x_test), 10))
for column in range(k):
    votes[np.arange(len(x_test)), y_train[nearest[:, column]]] += 1
predictions = votes.argmax(axis=1)
"""

_SOFTMAX = """rng = np.random.default_rng({seed})
w = rng.normal(0, 0.01, (x_train.shape[1], 10))
onehot = np.eye(10)[y_train]
for epoch in range({epochs}):
    logits = x_train @ w
    logits -= logits.max(axis=1, keepdims=True)
    p = np.exp(logits)
    p /= p.sum(axis=1, keepdims=True)
    w -= {lr} * x_train.T @ (p - onehot) / len(x_train)
    if epoch % 20 == 0:
        tt.log(epoch=epoch, loss=float(-np.log(p[np.arange(len(p)), y_train] + 1e-9).mean()))
predictions = (x_test @ w).argmax(axis=1)
"""

_SAVE = "tt.save_predictions(predictions)\n"
_WRONG_SHAPE = "tt.save_predictions(predictions[: len(predictions) // 2])\n"
_CRASH = "raise ValueError('shapes (1437,64) and (28,10) not aligned')\n"


@dataclass(frozen=True)
class Program:
    kind: str  # centroid, knn, softmax, crash, wrong_shape
    expected: str  # "scored", or the failure reason: "crashed", "invalid_output"
    code: bytes
    marker: str


def program(index: int, rng: random.Random) -> Program:
    """A small numpy program, varied: mostly right, 3% crash, 2% save a wrong shape."""
    marker = uuid.uuid4().hex
    roll = rng.random()
    if roll < 0.35:
        distance = rng.choice(
            [
                "((x_test[:, None, :] - centroids[None]) ** 2).sum(axis=2)",
                "np.abs(x_test[:, None, :] - centroids[None]).sum(axis=2)",
            ]
        )
        kind, body = "centroid", _CENTROID.format(distance=distance)
    elif roll < 0.65:
        kind, body = "knn", _KNN.format(k=rng.choice([1, 3, 5]))
    else:
        kind = "softmax"
        body = _SOFTMAX.format(
            seed=index, epochs=rng.choice([60, 100, 150, 200]), lr=rng.choice([0.5, 1.0])
        )
    ending, expected = _SAVE, "scored"
    tail = rng.random()
    if tail < 0.03:
        kind, ending, expected = "crash", _CRASH, "crashed"
    elif tail < 0.05:
        kind, ending, expected = "wrong_shape", _WRONG_SHAPE, "invalid_output"
    header = f"# burst submission {index}, burst-id: {marker}\n"
    return Program(kind, expected, (header + _LOAD + body + ending).encode(), marker)


# --- the load ------------------------------------------------------------------------------------


@dataclass
class Record:
    kind: str  # submit, submission page, chapter, leaderboard, thread
    start: float  # seconds since the load began
    seconds: float
    status: int  # 0: no answer
    error: str = ""


@dataclass
class SentSubmission:
    index: int
    student: str
    kind: str
    expected: str
    marker: str
    scheduled_s: float
    tries: list[dict[str, Any]] = field(default_factory=list)
    submission_id: int | None = None  # from the redirect of the accepted try
    form_token: str = field(default_factory=lambda: str(uuid.uuid4()))  # the same on a retry

    @property
    def accepted(self) -> bool:
        return self.submission_id is not None


SUBMISSION_LOCATION = re.compile(r"/submissions/(\d+)/$")
RETRIES = 3  # a student whose submit fails tries again, at most this many times in all
RETRY_WAIT_S = 2.0


class Load:
    """Submitting and browsing students, as threads; every request recorded."""

    def __init__(
        self,
        site: Site,
        *,
        submitters: int,
        submissions: int,
        browsers: int,
        duration_s: float,
        think_s: float,
        poll_s: float = 0.0,
        seed: int = 20260407,
    ) -> None:
        self.site, self.port = site, site.port
        self.duration_s, self.think_s = duration_s, think_s
        # After a submit the page polls the status endpoint (every second in the browser) until
        # the result: with ``poll_s`` the students do too; 0 leaves the page unpolled.
        self.poll_s = poll_s
        self.stop_polling = threading.Event()
        self.submitting = 0
        self.submitting_lock = threading.Lock()
        self.records: list[Record] = []
        self.lock = threading.Lock()
        self.stop_browsing = threading.Event()
        self.t0 = 0.0
        self.t0_wall = 0.0
        self.burst_end = 0.0
        rng = random.Random(seed)
        names = site.seed["submitters"][:submitters]
        self.browsers = site.seed["browsers"][:browsers]
        if len(names) < submitters or len(self.browsers) < browsers:
            raise BenchmarkError("the seed has fewer students than asked for")
        # Submission times: uniform over the window; each student's in order (one at a time).
        times = sorted(rng.uniform(0, duration_s) for _ in range(submissions))
        order = list(range(submissions))
        rng.shuffle(order)
        self.sent: list[SentSubmission] = []
        self.programs: dict[int, Program] = {}
        for index, when in enumerate(times):
            student = names[order[index] % len(names)]
            prog = program(index, rng)
            self.programs[index] = prog
            self.sent.append(
                SentSubmission(index, student, prog.kind, prog.expected, prog.marker, when)
            )
        self.cookies = {
            name: student_cookies(site.seed["sessions"][name]) for name in [*names, *self.browsers]
        }
        self.pages = [
            ("chapter", site.seed["chapter_path"]),
            ("leaderboard", site.seed["leaderboard_path"]),
            ("thread", site.seed["thread_path"]),
        ]
        self.rng = rng

    def _record(self, kind: str, start: float, reply: Reply) -> None:
        now = time.monotonic() - self.t0
        with self.lock:
            self.records.append(
                Record(kind, round(start, 4), round(now - start, 5), reply.status, reply.error)
            )

    def _submit(self, sent: SentSubmission) -> None:
        prog = self.programs[sent.index]
        cookies = self.cookies[sent.student]
        path = self.site.seed["assignment_path"]
        for attempt in range(RETRIES):
            start = time.monotonic() - self.t0
            reply = post_upload(
                self.port, path, cookies, "main.py", prog.code, token=sent.form_token
            )
            self._record("submit", start, reply)
            sent.tries.append({"at": round(start, 3), "status": reply.status, "error": reply.error})
            match = SUBMISSION_LOCATION.search(urllib.parse.urlsplit(reply.location).path)
            if reply.status == 302 and match:
                sent.submission_id = int(match.group(1))
                start = time.monotonic() - self.t0
                self._record("submission page", start, get(self.port, reply.location, cookies))
                return
            if reply.status and reply.status < 500:
                return  # refused (a form error, a redirect elsewhere): the student gives up
            if attempt + 1 < RETRIES:
                time.sleep(RETRY_WAIT_S * (attempt + 1))

    def _poll(self, sent: SentSubmission | None, until: float | None) -> None:
        """Poll the submission's status as its page does, until it is finished or ``until``
        (load clock; None: until told to stop); without polling, just wait for ``until``."""
        cookies = self.cookies[sent.student] if sent else {}
        offsets = {"log_from": 0, "metrics_from": 0}
        finished = sent is None or sent.submission_id is None or not self.poll_s
        while True:
            now = self.now()
            if until is not None and now >= until:
                return
            if finished or self.stop_polling.is_set():
                if until is None:
                    return
                time.sleep(max(until - now, 0))
                return
            assert sent is not None
            path = f"/submissions/{sent.submission_id}/status.json?" + urllib.parse.urlencode(
                offsets
            )
            reply = get(self.port, path, cookies)
            self._record("status poll", now, reply)
            if reply.status == 200:
                with contextlib.suppress(ValueError, KeyError, TypeError):
                    data = json.loads(reply.body)
                    finished = bool(data["finished"])
                    offsets = {
                        "log_from": int(data["log_length"]),
                        "metrics_from": int(data["metrics_length"]),
                    }
            wait = self.poll_s if until is None else min(self.poll_s, until - self.now())
            self.stop_polling.wait(max(wait, 0))

    def _submitter(self, mine: list[SentSubmission]) -> None:
        previous: SentSubmission | None = None
        for sent in mine:
            self._poll(previous, sent.scheduled_s)
            self._submit(sent)
            previous = sent
        with self.submitting_lock:
            self.submitting -= 1
        self._poll(previous, None)

    def _browser(self, name: str, rng: random.Random) -> None:
        cookies = self.cookies[name]
        # Spread the first requests over the first think time, not all at once.
        if self.stop_browsing.wait(rng.uniform(0, self.think_s)):
            return
        while not self.stop_browsing.is_set():
            kind, path = rng.choice(self.pages)
            start = time.monotonic() - self.t0
            self._record(kind, start, get(self.port, path, cookies))
            self.stop_browsing.wait(rng.expovariate(1 / self.think_s))

    def run(self, on_progress: Any = None, on_start: Any = None) -> None:
        """The burst: until every submitter is done (browsers read until then)."""
        threading.stack_size(512 * 1024)
        by_student: dict[str, list[SentSubmission]] = {}
        for sent in self.sent:
            by_student.setdefault(sent.student, []).append(sent)
        self.t0, self.t0_wall = time.monotonic(), time.time()
        submitters = [
            threading.Thread(target=self._submitter, args=(mine,), daemon=True)
            for mine in by_student.values()
        ]
        browsers = [
            threading.Thread(
                target=self._browser, args=(name, random.Random(self.rng.random())), daemon=True
            )
            for name in self.browsers
        ]
        if on_start is not None:
            on_start(self)  # the faults' schedule starts with the load's clock
        self.submitting = len(submitters)
        for thread in [*submitters, *browsers]:
            thread.start()
        try:
            while self.submitting > 0 and any(t.is_alive() for t in submitters):
                time.sleep(0.5)
                if on_progress is not None:
                    on_progress(self)
        finally:
            self.burst_end = time.monotonic() - self.t0
            self.stop_browsing.set()
            for thread in browsers:
                thread.join(timeout=35)

    def now(self) -> float:
        return time.monotonic() - self.t0


def warm_up(
    site: Site, database_url: str, *, rounds: int, timeout_s: float = 180
) -> dict[str, Any]:
    """What a site that has been up all day has done: every page rendered by every web worker,
    and one grading by each worker (the instructor's, left out of every count)."""
    seed = site.seed
    browser = student_cookies(seed["sessions"][seed["browsers"][0]])
    paths = [
        seed[k] for k in ("chapter_path", "leaderboard_path", "thread_path", "assignment_path")
    ]
    began = time.monotonic()
    for _ in range(rounds):
        for path in paths:
            get(site.port, path, browser)
    instructor = student_cookies(seed["sessions"][seed["instructor"]])
    ids = []
    for index in range(len(site.workers)):
        code = program(-1 - index, random.Random(index)).code
        reply = post_upload(site.port, seed["assignment_path"], instructor, "main.py", code)
        match = SUBMISSION_LOCATION.search(urllib.parse.urlsplit(reply.location).path)
        if reply.status != 302 or not match:
            raise BenchmarkError(
                f"the warm-up submit answered {reply.status}: {reply.body[:300]!r}"
            )
        ids.append(int(match.group(1)))
    import psycopg

    with psycopg.connect(database_url, autocommit=True, connect_timeout=5) as connection:
        while True:
            rows = connection.execute(
                "SELECT count(*) FROM grader_submission WHERE id = ANY(%s) "
                "AND status IN ('scored', 'failed')",
                (ids,),
            ).fetchone()
            if rows and rows[0] == len(ids):
                break
            if time.monotonic() - began > timeout_s:
                raise BenchmarkError(f"the warm-up gradings were not done in {timeout_s:.0f} s")
            time.sleep(0.2)
    return {"seconds": round(time.monotonic() - began, 1), "page_rounds": rounds, "gradings": ids}


class CpuByGroup:
    """CPU used by each of our processes' roles (reaped children included), and everything else."""

    def __init__(self, site: Site, stores: PrivateStores) -> None:
        self.site, self.stores = site, stores
        self.ticks = os.sysconf("SC_CLK_TCK")

    def _roles(self) -> dict[int, str]:
        roles: dict[int, str] = {}
        if self.site.gunicorn and self.site.gunicorn.process:
            roles[self.site.gunicorn.process.pid] = "web (gunicorn)"
        for worker in self.site.workers:
            if worker.process:
                roles[worker.process.pid] = "Celery workers (not their sandboxed jobs)"
        if self.site.beat and self.site.beat.process:
            roles[self.site.beat.process.pid] = "beat"
        if self.stores.redis:
            roles[self.stores.redis.pid] = "Redis"
        with contextlib.suppress(OSError, ValueError):
            postmaster = int((self.stores.pg_data / "postmaster.pid").read_text().split()[0])
            roles[postmaster] = "PostgreSQL"
        roles[os.getpid()] = "load (the benchmark's clients)"
        return roles

    def snapshot(self) -> dict[str, Any]:
        roles = self._roles()
        per_pid: dict[int, tuple[str, float]] = {}
        for stat in Path("/proc").glob("[0-9]*/stat"):
            with contextlib.suppress(OSError, ValueError, IndexError):
                fields = stat.read_text().rsplit(")", 1)[1].split()
                pid, ppid, pgid = int(stat.parent.name), int(fields[1]), int(fields[2])
                role = roles.get(pgid) or roles.get(ppid) or roles.get(pid)
                if role is None:
                    continue
                # utime, stime, and the children's once reaped (not for this process: it reaps
                # the workers that faults.py kills, whose time is theirs).
                last = 13 if pid == os.getpid() else 15
                seconds = sum(int(v) for v in fields[11:last]) / self.ticks
                per_pid[pid] = (role, seconds)
        idle, total = cpu_times()
        return {"per_pid": per_pid, "idle": idle, "total": total}

    def between(self, before: dict[str, Any], after: dict[str, Any]) -> dict[str, float]:
        used: dict[str, float] = {}
        for pid, (role, seconds) in after["per_pid"].items():
            start = before["per_pid"].get(pid, (role, 0.0))[1]
            used[role] = used.get(role, 0.0) + max(seconds - start, 0.0)
        jiffies = after["total"] - before["total"]
        busy = (jiffies - (after["idle"] - before["idle"])) / self.ticks
        # The sandboxed jobs are not found reliably (their bubblewrap parents are not always
        # reaped by the worker), so they are counted here, with other work on the machine.
        used["everything else: the sandboxed jobs and others' work"] = max(
            busy - sum(used.values()), 0.0
        )
        wall = jiffies / self.ticks / (os.cpu_count() or 1)
        return {role: round(seconds / max(wall, 1e-9), 3) for role, seconds in sorted(used.items())}


# --- watching the database ----------------------------------------------------------------------


class Monitor:
    """Counts the assignment's rows by status every second, through PostgreSQL restarts."""

    def __init__(self, database_url: str, assignment_id: int) -> None:
        self.url, self.assignment_id = database_url, assignment_id
        self.connection: Any = None
        self.timeline: list[dict[str, Any]] = []

    def counts(self) -> dict[str, int] | None:
        import psycopg

        try:
            if self.connection is None or self.connection.closed:
                self.connection = psycopg.connect(self.url, autocommit=True, connect_timeout=2)
            rows = self.connection.execute(
                "SELECT status, count(*) FROM grader_submission WHERE assignment_id = %s "
                "AND user_id IN (SELECT id FROM accounts_user WHERE username LIKE 'burst-s%%') "
                "GROUP BY status",
                (self.assignment_id,),
            ).fetchall()
        except psycopg.Error:
            with contextlib.suppress(Exception):
                if self.connection is not None:
                    self.connection.close()
            self.connection = None
            return None
        return dict(rows)

    def sample(self, t: float) -> dict[str, int] | None:
        counts = self.counts()
        if counts is not None:
            self.timeline.append({"t": round(t, 2), **counts})
        return counts

    def close(self) -> None:
        with contextlib.suppress(Exception):
            if self.connection is not None:
                self.connection.close()


def progress_line(load: Load, counts: dict[str, int] | None) -> str:
    sent = sum(1 for s in load.sent if s.tries)
    accepted = sum(1 for s in load.sent if s.accepted)
    with load.lock:
        records = list(load.records)
    recent = [r.seconds for r in records if r.start > load.now() - 10 and r.status]
    errors = sum(1 for r in records if r.status == 0 or r.status >= 500)
    rows = " ".join(f"{k} {v}" for k, v in sorted(counts.items())) if counts else "database down?"
    p99 = f"{percentile(recent, 99) * 1000:.0f} ms" if recent else "-"
    return (
        f"t={load.now():5.1f}s submitted {sent}/{len(load.sent)} accepted {accepted} | rows: "
        f"{rows} | web {len(records)} requests, {errors} errors, p99 last 10 s {p99}"
    )


def wait_for_drain(
    load: Load, monitor: Monitor, timeout_s: float, *, every_s: float = 5.0
) -> float | None:
    """Until no row of the assignment is queued or running; seconds after the burst, or None."""
    began = time.monotonic()
    last_line = 0.0
    while True:
        counts = monitor.sample(load.now())
        if counts is not None and not counts.get("queued") and not counts.get("running"):
            return load.now() - load.burst_end
        if time.monotonic() - began > timeout_s:
            return None
        if time.monotonic() - last_line >= every_s:
            last_line = time.monotonic()
            log("draining: " + progress_line(load, counts))
        time.sleep(0.5)


# --- after the drain: the accounting ------------------------------------------------------------


def read_graded_lines(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    lines = []
    for line in path.read_text().splitlines():
        with contextlib.suppress(ValueError):
            lines.append(json.loads(line))
    return lines


def fetch_rows(database_url: str, assignment_id: int) -> list[dict[str, Any]]:
    import psycopg
    from psycopg.rows import dict_row

    with psycopg.connect(database_url, connect_timeout=5, row_factory=dict_row) as connection:
        return connection.execute(
            """
            SELECT id, status, failure_reason, attempts, infrastructure_retries, worker_id,
                   substring(code from 'burst-id: ([0-9a-f]+)') AS marker,
                   extract(epoch from queued_at) AS queued_at,
                   extract(epoch from created_at) AS created_at,
                   extract(epoch from started_at) AS started_at,
                   extract(epoch from finished_at) AS finished_at,
                   left(message, 300) AS message
            FROM grader_submission
            WHERE assignment_id = %s
              AND user_id IN (SELECT id FROM accounts_user WHERE username LIKE 'burst-s%%')
            ORDER BY id
            """,
            (assignment_id,),
        ).fetchall()


def account(load: Load, rows: list[dict[str, Any]], graded: list[dict[str, Any]]) -> dict[str, Any]:
    """Every submission: accepted, in the database, finished once, with the outcome expected."""
    by_id = {int(r["id"]): r for r in rows}
    by_marker: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_marker.setdefault(row["marker"] or "", []).append(row)
    finished_lines: dict[int, list[dict[str, Any]]] = {}
    discarded_lines: dict[int, int] = {}
    requeued_lines: dict[int, int] = {}
    for line in graded:
        sid = int(line["submission"])
        if not line["saved"]:
            discarded_lines[sid] = discarded_lines.get(sid, 0) + 1
        elif line["reason"] == "infrastructure":
            requeued_lines[sid] = requeued_lines.get(sid, 0) + 1
        else:
            finished_lines.setdefault(sid, []).append(line)

    # The warm-up's gradings (the instructor's) are not the burst's.
    finished_lines = {sid: lines for sid, lines in finished_lines.items() if sid in by_id}
    accepted = [s for s in load.sent if s.accepted]
    missing_rows = [s.index for s in accepted if s.submission_id not in by_id]
    wrong_code = [
        s.index
        for s in accepted
        if s.submission_id in by_id and by_id[s.submission_id]["marker"] != s.marker
    ]
    # Rows saved although the student's answer was an error (the commit went through, the answer
    # did not): not lost, they are graded like the others.
    accepted_ids = {s.submission_id for s in accepted}
    unanswered_rows = [int(r["id"]) for r in rows if int(r["id"]) not in accepted_ids]
    expected_by_id: dict[int, str] = {}
    for sent in load.sent:
        for row in by_marker.get(sent.marker, []):
            expected_by_id[int(row["id"])] = sent.expected

    stuck = [int(r["id"]) for r in rows if r["status"] not in FINISHED]
    platform_failed = [
        int(r["id"])
        for r in rows
        if r["status"] == "failed" and r["failure_reason"] not in STUDENT_REASONS
    ]
    unexpected = []
    for row in rows:
        if row["status"] not in ("scored", "failed"):
            continue
        outcome = "scored" if row["status"] == "scored" else row["failure_reason"]
        expected = expected_by_id.get(int(row["id"]))
        if expected is not None and outcome != expected:
            unexpected.append(
                {
                    "id": int(row["id"]),
                    "expected": expected,
                    "got": outcome,
                    "message": row["message"],
                }
            )
    graded_twice = sorted(sid for sid, lines in finished_lines.items() if len(lines) > 1)
    finished_without_line = [
        int(r["id"])
        for r in rows
        if r["status"] in ("scored", "failed")
        and r["failure_reason"] != "infrastructure"
        and int(r["id"]) not in finished_lines
    ]
    rerun = [int(r["id"]) for r in rows if (r["attempts"] or 0) > 1]
    finished = [r for r in rows if r["status"] in ("scored", "failed")]
    return {
        "sent": len(load.sent),
        "accepted": len(accepted),
        "not_accepted": [{"index": s.index, "tries": s.tries} for s in load.sent if not s.accepted][
            :50
        ],
        "not_accepted_count": sum(1 for s in load.sent if not s.accepted),
        "rows": len(rows),
        "rows_saved_without_accepted_answer": len(unanswered_rows),
        "missing_rows": missing_rows,
        "wrong_code": wrong_code,
        "lost": len(missing_rows) + len(wrong_code),
        "stuck": stuck,
        "scored": sum(1 for r in rows if r["status"] == "scored"),
        "failed_by_student_code": sum(
            1 for r in rows if r["status"] == "failed" and r["failure_reason"] in STUDENT_REASONS
        ),
        "failed_by_platform": platform_failed,
        "unexpected_outcomes": unexpected[:50],
        "unexpected_outcome_count": len(unexpected),
        "graded_twice": graded_twice,
        "finished_without_grading_line": finished_without_line,
        "graded_once": sum(1 for lines in finished_lines.values() if len(lines) == 1),
        "rerun_after_platform_failure": rerun,
        "requeued_by_worker_infrastructure_failure": sum(requeued_lines.values()),
        "results_discarded_changed_hands": sum(discarded_lines.values()),
        "attempts_histogram": _histogram(int(r["attempts"] or 0) for r in rows),
        "first_finished_wall": min((float(r["finished_at"]) for r in finished), default=None),
        "last_finished_wall": max((float(r["finished_at"]) for r in finished), default=None),
    }


def _histogram(values: Any) -> dict[str, int]:
    counts: dict[str, int] = {}
    for value in values:
        counts[str(value)] = counts.get(str(value), 0) + 1
    return dict(sorted(counts.items()))


def latency_summary(records: list[Record], start: float, end: float) -> dict[str, Any]:
    """p50/p99 of the answered requests that began within [start, end], by kind and overall."""
    window = [r for r in records if start <= r.start <= end]
    kinds: dict[str, list[Record]] = {"all": window}
    for record in window:
        kinds.setdefault(record.kind, []).append(record)
    out = {}
    for kind, items in kinds.items():
        answered = [r.seconds * 1000 for r in items if r.status]
        statuses = _histogram(r.status for r in items)
        out[kind] = {
            "requests": len(items),
            "p50_ms": round(percentile(answered, 50), 1) if answered else None,
            "p90_ms": round(percentile(answered, 90), 1) if answered else None,
            "p99_ms": round(percentile(answered, 99), 1) if answered else None,
            "max_ms": round(max(answered), 1) if answered else None,
            "statuses": statuses,
            "server_errors": sum(1 for r in items if r.status >= 500),
            "no_answer": sum(1 for r in items if r.status == 0),
        }
    duration = max(end - start, 1e-9)
    out["all"]["requests_per_s"] = round(len(window) / duration, 1)
    return out


def cpu_times() -> tuple[int, int]:
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return values[3] + values[4], sum(values)


def busy_between(before: tuple[int, int], after: tuple[int, int]) -> float:
    return round(1 - (after[0] - before[0]) / max(after[1] - before[1], 1), 3)


def mark(ok: bool) -> str:
    return "pass" if ok else "FAIL"


def now_text() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")


def jsonable(value: Any) -> Any:
    if hasattr(value, "__dataclass_fields__"):
        return asdict(value)
    return str(value)


def seconds_or_dash(value: float | None, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.{digits}f} s"
