"""Web benchmark: Topdown under gunicorn on PostgreSQL, loaded by wrk over loopback.

Run by ``make bench``, which passes the servers' addresses:

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/topdown REDIS_URL=redis://127.0.0.1:6379/15 \
        .venv/bin/python benchmarks/web.py

It never touches the database or cache keys named there: it drops and recreates a database of its
own (``topdown_bench``) on the same server, and uses Redis database 14 under its own key prefix.
It seeds 1,000 students, 10 chapters and 100,000 answers, starts gunicorn once, and measures, at
16 concurrent connections: a bare "hello" view (Django's floor on this machine), the chapter page,
the questionnaire page and a questionnaire submit. Then it reads the workers' memory, stops
gunicorn and writes ``benchmarks/RESULTS.md`` and ``benchmarks/results/web.json``.

Exit status: 0 when every target is met, 1 when one is missed, 2 when the benchmark broke.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import importlib.metadata
import json
import os
import platform
import re
import secrets
import shutil
import signal
import socket
import string
import subprocess
import sys
import time
import urllib.parse
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from http.cookies import SimpleCookie
from pathlib import Path
from types import FrameType

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.engine_timing import cpu_busy_share

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
WORK_DIR = BENCH_DIR / ".work"  # git-ignored: logs, static files, the seed description
RESULTS_MD = BENCH_DIR / "RESULTS.md"
RESULTS_JSON = BENCH_DIR / "results" / "web.json"
WRK_SCRIPT = BENCH_DIR / "wrk.lua"
PYTHON = sys.executable

BENCH_DATABASE = "topdown_bench"
BENCH_REDIS_DB = 14
BENCH_CACHE_PREFIX = "topdown-bench"
LOOPBACK = {"127.0.0.1", "localhost", "::1"}

CONNECTIONS = 16
WRK_THREADS = 2
WARMUP_S = 3
DURATION_S = 15
SWEEP_DURATION_S = 6
OVERALL_TIMEOUT_S = 600  # the whole run, seeding included; a normal run takes about 3 minutes

TARGET_RATIO = 0.5
TARGET_P99_MS = 100.0
TARGET_RSS_MB = 150.0


@dataclass(frozen=True)
class ServerConfig:
    worker_class: str
    workers: int
    threads: int = 1

    def label(self) -> str:
        if self.worker_class == "gthread":
            return f"gthread, {self.workers} workers x {self.threads} threads"
        return f"{self.worker_class}, {self.workers} workers"


# The best hello throughput over two --sweep runs on the 2-CPU benchmark machine (mean of the two:
# sync x4 3,290 req/s, gthread 2x4 3,150, sync x3 2,830, gthread 3x2 2,750, sync x2 2,510). One
# sweep alone is too noisy to choose by, hence a fixed default rather than each run's winner.
DEFAULT_SERVER = ServerConfig("sync", workers=4)
SWEEP_CANDIDATES = [
    ServerConfig("sync", workers=2),
    ServerConfig("sync", workers=3),
    ServerConfig("sync", workers=4),
    ServerConfig("gthread", workers=2, threads=4),
    ServerConfig("gthread", workers=3, threads=2),
]


@dataclass(frozen=True)
class Endpoint:
    name: str
    method: str
    path: str
    expected_status: int
    # One wrk request line per student: method, path, cookie, CSRF token, body (tab-separated).
    request_lines: list[str]
    # Whether the targets apply; the floors are measured for comparison only.
    is_page: bool = True


@dataclass
class LoadResult:
    requests: int
    duration_s: float
    rps: float
    p50_ms: float
    p75_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float
    max_ms: float
    statuses: dict[str, int]
    non_2xx_3xx: int  # as wrk itself reports them
    socket_errors: dict[str, int]
    unexpected: int  # responses with another status than expected, plus socket errors
    wrk_output: str = ""


@dataclass
class EndpointResult:
    name: str
    method: str
    path: str
    expected_status: int
    is_page: bool
    measured: LoadResult
    warmup: LoadResult
    # Share of the CPUs idle in the second before the endpoint's load, while our server was idle:
    # well under 1 means something else on the machine was busy, and the figures suffer.
    idle_before: float
    ratio_to_hello: float = 0.0


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    cookies: dict[str, str]
    body: bytes


class BenchmarkError(Exception):
    """Something is wrong with the setup or the site's answers; the message says what."""


class Timeout(BaseException):
    """The overall time bound ran out (a BaseException, so no ``except Exception`` hides it)."""


# --- helpers: processes, HTTP, environment ---------------------------------------------------


def log(message: str) -> None:
    print(f"[{datetime.now(UTC):%H:%M:%S}] {message}", flush=True)


def run(cmd: list[str], *, env: dict[str, str], timeout: float) -> str:
    result = subprocess.run(
        cmd, env=env, cwd=REPO, capture_output=True, text=True, timeout=timeout, check=False
    )
    if result.returncode != 0:
        raise BenchmarkError(
            f"{' '.join(cmd)} failed ({result.returncode}):\n{result.stdout}{result.stderr}"
        )
    return result.stdout


def http_request(
    port: int,
    method: str,
    path: str,
    *,
    cookies: dict[str, str] | None = None,
    form: list[tuple[str, str]] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    """One request, no redirects followed: the benchmark checks the redirects themselves."""
    all_headers = dict(headers or {})
    if cookies:
        all_headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in cookies.items())
    body = None
    if form is not None:
        body = urllib.parse.urlencode(form)
        all_headers["Content-Type"] = "application/x-www-form-urlencoded"
        all_headers["Origin"] = f"http://127.0.0.1:{port}"
        all_headers["Referer"] = f"http://127.0.0.1:{port}{path}"
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request(method, path, body=body, headers=all_headers)
        raw = connection.getresponse()
        set_cookies: dict[str, str] = {}
        for header in raw.headers.get_all("Set-Cookie") or []:
            parsed = SimpleCookie()
            parsed.load(header)
            set_cookies.update({name: morsel.value for name, morsel in parsed.items()})
        return Response(raw.status, dict(raw.headers.items()), set_cookies, raw.read())
    finally:
        connection.close()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def require_loopback(url: str, name: str) -> urllib.parse.SplitResult:
    parts = urllib.parse.urlsplit(url)
    if parts.hostname not in LOOPBACK:
        raise BenchmarkError(f"{name} must point at this machine (loopback only), not {url!r}")
    return parts


def ensure_wrk() -> str:
    """wrk from PATH; installed from Debian's package when missing and we are allowed to."""
    path = shutil.which("wrk")
    if path:
        return path
    if os.geteuid() == 0 and shutil.which("apt-get"):
        log("wrk is missing; installing the Debian package")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        install = ["apt-get", "install", "-y", "-qq", "wrk"]
        if subprocess.run(install, env=env, capture_output=True, check=False).returncode != 0:
            subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True, check=False)
            subprocess.run(install, env=env, capture_output=True, check=False)
        path = shutil.which("wrk")
    if not path:
        raise BenchmarkError("wrk is not installed: run `apt-get install -y wrk` (Debian/Ubuntu)")
    return path


def bench_environment(database_url: str, redis_url: str) -> dict[str, str]:
    """What the web process sees: production settings, pointed at the benchmark's own stores."""
    alphabet = string.ascii_letters + string.digits + "!@#%^&*(-_=+)"
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "benchmarks.settings",
        "DEBUG": "0",
        "SECRET_KEY": "".join(secrets.choice(alphabet) for _ in range(50)),
        "ALLOWED_HOSTS": "127.0.0.1",
        # Plain HTTP on loopback: secure cookies would never be sent back.
        "SECURE_COOKIES": "0",
        # No TLS proxy in front: production's HTTPS redirect, proxy header and HSTS stay off.
        "SECURE_SSL_REDIRECT": "0",
        "BEHIND_TLS_PROXY": "0",
        "SECURE_HSTS_SECONDS": "0",
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "CACHE_KEY_PREFIX": BENCH_CACHE_PREFIX,
        "TOPDOWN_VAR_DIR": str(WORK_DIR / "var"),
        "LOG_LEVEL": "WARNING",
        "PYTHONDONTWRITEBYTECODE": "1",
    }


# --- stores: database and cache --------------------------------------------------------------


def recreate_database(server_url: str, name: str = BENCH_DATABASE) -> str:
    """Drop and create the benchmark's database; return its URL. Trust auth as user postgres."""
    import psycopg

    parts = require_loopback(server_url, "DATABASE_URL")
    if parts.scheme not in {"postgres", "postgresql"}:
        raise BenchmarkError("DATABASE_URL must be a PostgreSQL URL: the benchmark is about it")
    admin_url = urllib.parse.urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{name}"')
    return urllib.parse.urlunsplit(parts._replace(path=f"/{name}"))


def clear_cache(redis_url: str) -> str:
    """Delete the benchmark's own keys in its own Redis database; return that database's URL."""
    import redis

    parts = require_loopback(redis_url, "REDIS_URL")
    bench_url = urllib.parse.urlunsplit(parts._replace(path=f"/{BENCH_REDIS_DB}"))
    client = redis.Redis.from_url(bench_url, socket_connect_timeout=2)
    keys = list(client.scan_iter(match=f"{BENCH_CACHE_PREFIX}:*", count=1000))
    for start in range(0, len(keys), 1000):
        client.delete(*keys[start : start + 1000])
    return bench_url


def count_graded_attempts(
    database_url: str, usernames: list[str], since: datetime, answers: int
) -> int:
    """Submitted attempts by ``usernames`` since ``since`` with a score and ``answers`` answers."""
    import psycopg

    with psycopg.connect(database_url, connect_timeout=5) as connection:
        row = connection.execute(
            """
            SELECT count(*) FROM courses_attempt a JOIN accounts_user u ON u.id = a.user_id
            WHERE u.username = ANY(%s) AND a.created_at >= %s
              AND a.status = 'submitted' AND a.score IS NOT NULL
              AND (SELECT count(*) FROM courses_answer WHERE attempt_id = a.id) = %s
            """,
            (usernames, since, answers),
        ).fetchone()
    return int(row[0]) if row else 0


# --- the web server ----------------------------------------------------------------------------


class Gunicorn:
    """gunicorn serving the site on a free loopback port, in its own process group."""

    def __init__(self, config: ServerConfig, env: dict[str, str], log_path: Path) -> None:
        self.config = config
        self.env = env
        self.log_path = log_path
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def command(self) -> list[str]:
        return [
            PYTHON,
            "-m",
            "gunicorn",
            "topdown.wsgi:application",
            f"--bind=127.0.0.1:{self.port}",
            f"--worker-class={self.config.worker_class}",
            f"--workers={self.config.workers}",
            f"--threads={self.config.threads}",
            "--backlog=2048",
            "--timeout=30",
            "--graceful-timeout=5",
            "--error-logfile=-",
            "--log-level=warning",
        ]

    def __enter__(self) -> Gunicorn:
        with self.log_path.open("ab") as log_file:
            self.process = subprocess.Popen(
                self.command,
                cwd=REPO,
                env=self.env,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # so stopping it can take every worker with it
            )
        try:
            self.wait_until_ready()
        except BaseException:
            self.stop()  # __exit__ does not run when __enter__ fails
            raise
        return self

    def wait_until_ready(self, timeout_s: float = 30) -> None:
        assert self.process is not None
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BenchmarkError(f"gunicorn exited at start:\n{self.log_tail()}")
            with contextlib.suppress(OSError):
                if http_request(self.port, "GET", "/bench/hello").status == 200:
                    return
            time.sleep(0.2)
        raise BenchmarkError(f"gunicorn did not answer within {timeout_s} s:\n{self.log_tail()}")

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=5)

    def worker_pids(self) -> list[int]:
        assert self.process is not None
        pids = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            with contextlib.suppress(OSError):
                # The command name is in parentheses and may hold spaces: parse after the ')'.
                fields = stat.read_text().rsplit(")", 1)[1].split()
                if int(fields[1]) == self.process.pid:
                    pids.append(int(stat.parent.name))
        return sorted(pids)

    def log_tail(self, lines: int = 40) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


def memory_of(pid: int) -> dict[str, float]:
    """Resident and peak resident memory of a process, in MB (MiB), from /proc."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, rest = line.partition(":")
        if name in {"VmRSS", "VmHWM"}:
            values[name] = int(rest.split()[0]) / 1024
    return {"pid": pid, "rss_mb": values["VmRSS"], "peak_rss_mb": values["VmHWM"]}


# --- logging in and checking the pages ---------------------------------------------------------


def login(port: int, username: str, password: str) -> dict[str, str]:
    """Log in through the login form, as a browser would; return the session and CSRF cookies."""
    page = http_request(port, "GET", "/accounts/login/")
    if page.status != 200 or "csrftoken" not in page.cookies:
        raise LookupError(f"GET /accounts/login/ answered {page.status}")
    cookies = {"csrftoken": page.cookies["csrftoken"]}
    answer = http_request(
        port,
        "POST",
        "/accounts/login/",
        cookies=cookies,
        form=[
            ("username", username),
            ("password", password),
            ("csrfmiddlewaretoken", cookies["csrftoken"]),
        ],
    )
    if answer.status != 302 or "sessionid" not in answer.cookies:
        raise BenchmarkError(f"logging in {username} failed: {answer.status}")
    cookies.update(answer.cookies)  # login rotates the CSRF token
    return cookies


def log_in_reader(
    port: int, username: str, password: str, env: dict[str, str]
) -> tuple[dict[str, str], str]:
    """Cookies of the student whose pages are measured, and how they were obtained."""
    try:
        return login(port, username, password), "the login form"
    except LookupError as error:
        # The pages measured do not depend on the login page, so a missing login template must
        # not stop the benchmark.
        log(f"login page unusable ({error}); creating the session with force_login instead")
        return student_sessions([username], env)[username], "force_login"


def student_sessions(usernames: list[str], env: dict[str, str]) -> dict[str, dict[str, str]]:
    """Session and CSRF cookies for many students at once, without their passwords.

    Logging in through the form costs each student a PBKDF2 hash (about half a second here), so
    the submitters get their sessions the way Django's test client makes them. The CSRF cookie is
    what Django hands a browser: 32 random characters, which it accepts as the secret.
    """
    output = run([PYTHON, "-m", "benchmarks.seed", "force-login", *usernames], env=env, timeout=120)
    alphabet = string.ascii_letters + string.digits
    return {
        username: {
            "sessionid": session_key,
            "csrftoken": "".join(secrets.choice(alphabet) for _ in range(32)),
        }
        for username, session_key in json.loads(output).items()
    }


def check_page(server: Gunicorn, path: str, cookies: dict[str, str], marker: str) -> None:
    page = http_request(server.port, "GET", path, cookies=cookies)
    if page.status != 200 or marker.encode() not in page.body:
        raise BenchmarkError(
            f"GET {path} answered {page.status} without {marker!r}; is a template missing? "
            f"(TemplateDoesNotExist: wait for it and rerun)\n{server.log_tail()}"
        )


def check_submit(server: Gunicorn, path: str, cookies: dict[str, str], form: str) -> None:
    """One submit must redirect to its graded attempt, and that page must render."""
    answer = http_request(
        server.port,
        "POST",
        path,
        cookies=cookies,
        form=urllib.parse.parse_qsl(form),
        headers={"X-CSRFToken": cookies["csrftoken"]},
    )
    location = answer.headers.get("Location", "")
    if answer.status != 302 or not re.search(r"/attempts/\d+/$", location):
        raise BenchmarkError(
            f"POST {path} answered {answer.status} (Location {location!r}), not a redirect to "
            f"the graded attempt\n{server.log_tail()}"
        )
    check_page(server, location, cookies, "Attempt")


def request_line(method: str, path: str, cookies: dict[str, str], body: str = "") -> str:
    cookie = "; ".join(f"{k}={v}" for k, v in cookies.items())
    return "\t".join([method, path, cookie, cookies.get("csrftoken", ""), body])


HELLO = Endpoint(
    "hello", "GET", "/bench/hello", 200, [request_line("GET", "/bench/hello", {})], is_page=False
)


# --- load --------------------------------------------------------------------------------------


def run_wrk(wrk: str, port: int, endpoint: Endpoint, duration_s: int) -> LoadResult:
    requests_file = WORK_DIR / f"requests-{re.sub(r'[^a-z]+', '-', endpoint.name)}.tsv"
    requests_file.write_text("\n".join(endpoint.request_lines) + "\n")
    command = [
        wrk,
        f"--threads={WRK_THREADS}",
        f"--connections={CONNECTIONS}",
        f"--duration={duration_s}s",
        "--timeout=10s",
        "--latency",
        f"--script={WRK_SCRIPT}",
        f"http://127.0.0.1:{port}{endpoint.path}",
    ]
    env = {**os.environ, "WRK_REQUESTS": str(requests_file), "WRK_THREADS": str(WRK_THREADS)}
    result = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=duration_s + 60, check=False
    )
    match = re.search(r"^WRK_JSON (.*)$", result.stdout, re.MULTILINE)
    if result.returncode != 0 or not match:
        raise BenchmarkError(f"wrk failed ({result.returncode}):\n{result.stdout}{result.stderr}")
    data = json.loads(match.group(1))
    latency = {k: v / 1000 for k, v in data["latency_us"].items()}
    socket_errors = {k: v for k, v in data["errors"].items() if k != "status"}
    statuses = {str(k): v for k, v in sorted(data["statuses"].items())}
    expected = statuses.get(str(endpoint.expected_status), 0)
    duration = data["duration_us"] / 1e6
    return LoadResult(
        requests=data["requests"],
        duration_s=round(duration, 3),
        rps=round(data["requests"] / duration, 1),
        p50_ms=round(latency["p50"], 2),
        p75_ms=round(latency["p75"], 2),
        p90_ms=round(latency["p90"], 2),
        p99_ms=round(latency["p99"], 2),
        mean_ms=round(latency["mean"], 2),
        max_ms=round(latency["max"], 2),
        statuses=statuses,
        non_2xx_3xx=data["errors"]["status"],
        socket_errors=socket_errors,
        unexpected=data["requests"] - expected + sum(socket_errors.values()),
        wrk_output=result.stdout.replace(match.group(0), "").strip(),
    )


def load_average() -> list[str]:
    return Path("/proc/loadavg").read_text().split()[:3]


def cpu_idle_share(seconds: float = 1.0) -> float:
    """Share of all CPUs idle over ``seconds``, after a second for our own server to settle.

    When wrk stops, gunicorn still answers the requests queued behind the last ones it saw.
    """
    time.sleep(1.0)
    return round(1 - cpu_busy_share(seconds), 3)


def measure(
    wrk: str, port: int, endpoint: Endpoint, warmup_s: int, duration_s: int
) -> EndpointResult:
    idle_before = cpu_idle_share()
    warmup = run_wrk(wrk, port, endpoint, warmup_s)
    measured = run_wrk(wrk, port, endpoint, duration_s)
    log(
        f"{endpoint.name:<14} {measured.rps:8.1f} req/s  p50 {measured.p50_ms:6.1f} ms  "
        f"p99 {measured.p99_ms:6.1f} ms  unexpected {measured.unexpected}  "
        f"(CPU idle before: {idle_before:.0%})"
    )
    return EndpointResult(
        name=endpoint.name,
        method=endpoint.method,
        path=endpoint.path,
        expected_status=endpoint.expected_status,
        is_page=endpoint.is_page,
        measured=measured,
        warmup=warmup,
        idle_before=idle_before,
    )


# --- the run -----------------------------------------------------------------------------------


@dataclass
class Run:
    args: argparse.Namespace
    wrk: str = ""
    env: dict[str, str] = field(default_factory=dict)
    seed: dict = field(default_factory=dict)

    def prepare(self) -> None:
        server_url = os.environ.get("DATABASE_URL", "")
        redis_url = os.environ.get("REDIS_URL", "")
        if not server_url or not redis_url:
            raise BenchmarkError("set DATABASE_URL and REDIS_URL (see `make bench`)")
        self.wrk = ensure_wrk()
        WORK_DIR.mkdir(exist_ok=True)
        (WORK_DIR / "gunicorn.log").unlink(missing_ok=True)
        log(f"recreating database {BENCH_DATABASE} and clearing the benchmark's cache keys")
        database_url = recreate_database(server_url)
        self.env = bench_environment(database_url, clear_cache(redis_url))
        log("migrating and collecting static files")
        run([PYTHON, "manage.py", "migrate", "--noinput", "-v0"], env=self.env, timeout=180)
        run([PYTHON, "manage.py", "collectstatic", "--noinput", "-v0"], env=self.env, timeout=120)
        log("seeding 1,000 students, 10 chapters and 100,000 answers")
        seed_file = WORK_DIR / "seed.json"
        run(
            [PYTHON, "-m", "benchmarks.seed", "seed", f"--out={seed_file}"],
            env=self.env,
            timeout=240,
        )
        self.seed = json.loads(seed_file.read_text())
        log(f"seeded: {self.seed['counts']}")

    @property
    def chapter_path(self) -> str:
        course, chapter = self.seed["course_slug"], self.seed["measured_chapter"]["slug"]
        return f"/courses/{course}/chapters/{chapter}/"

    @property
    def questionnaire_path(self) -> str:
        return f"{self.chapter_path}questionnaire/"

    def submit_body(self, cookies: dict[str, str]) -> str:
        # No `token` field: every POST is a fresh form, so each creates and grades an attempt.
        fields = [tuple(pair) for pair in self.seed["submit_fields"]]
        return urllib.parse.urlencode([*fields, ("csrfmiddlewaretoken", cookies["csrftoken"])])

    def endpoints(self, jars: dict[str, dict[str, str]]) -> list[Endpoint]:
        reader = jars[self.seed["reader"]]
        submits = [
            request_line("POST", self.questionnaire_path, jars[name], self.submit_body(jars[name]))
            for name in self.seed["submitters"]
        ]
        return [
            HELLO,
            Endpoint(
                "hello, logged in",
                "GET",
                "/bench/hello-user",
                200,
                [request_line("GET", "/bench/hello-user", reader)],
                is_page=False,
            ),
            Endpoint(
                "chapter",
                "GET",
                self.chapter_path,
                200,
                [request_line("GET", self.chapter_path, reader)],
            ),
            Endpoint(
                "questionnaire",
                "GET",
                self.questionnaire_path,
                200,
                [request_line("GET", self.questionnaire_path, reader)],
            ),
            Endpoint("submit", "POST", self.questionnaire_path, 302, submits),
        ]

    def check_pages(self, server: Gunicorn, jars: dict[str, dict[str, str]]) -> None:
        """Each page must render what a student expects before its speed means anything."""
        reader = jars[self.seed["reader"]]
        check_page(server, "/bench/hello", {}, "hello")
        check_page(server, "/bench/hello-user", reader, f"hello {self.seed['reader']}")
        check_page(server, self.chapter_path, reader, self.seed["measured_chapter"]["title"])
        first_field = f'name="q_{self.seed["question_ids"][0]}"'
        check_page(server, self.questionnaire_path, reader, first_field)
        submitter = jars[self.seed["submitters"][0]]
        check_submit(server, self.questionnaire_path, submitter, self.submit_body(submitter))

    def sweep(self) -> list[dict[str, object]]:
        """Hello throughput under each candidate worker setup, to choose DEFAULT_SERVER by."""
        rows = []
        for config in SWEEP_CANDIDATES:
            with Gunicorn(config, self.env, WORK_DIR / "gunicorn.log") as server:
                run_wrk(self.wrk, server.port, HELLO, WARMUP_S)
                result = run_wrk(self.wrk, server.port, HELLO, SWEEP_DURATION_S)
            log(f"sweep {config.label():<32} {result.rps:8.1f} req/s  p99 {result.p99_ms:.1f} ms")
            rows.append({"label": config.label(), "rps": result.rps, "p99_ms": result.p99_ms})
        return rows

    def measure_all(self, config: ServerConfig) -> dict[str, object]:
        reader, submitters = self.seed["reader"], self.seed["submitters"]
        jars = student_sessions(submitters, self.env)
        with Gunicorn(config, self.env, WORK_DIR / "gunicorn.log") as server:
            log(f"gunicorn on port {server.port} ({config.label()}): logging in {reader}")
            jars[reader], login_method = log_in_reader(
                server.port, reader, self.seed["password"], self.env
            )
            since = datetime.now(UTC)
            self.check_pages(server, jars)
            # Pages first: the submit adds attempts that the pages would then have to show.
            results = [
                measure(self.wrk, server.port, e, self.args.warmup, self.args.duration)
                for e in self.endpoints(jars)
            ]
            memory = [memory_of(pid) for pid in server.worker_pids()]
            master = memory_of(server.process.pid) if server.process else {}
            command = "python " + " ".join(server.command[1:]).replace(f":{server.port}", ":PORT")

        # Every redirect must stand for an attempt that was really saved with its answers. A few
        # more may be saved: wrk stops counting at its deadline, with requests still in flight.
        redirected = 1 + sum(
            r.warmup.statuses.get("302", 0) + r.measured.statuses.get("302", 0)
            for r in results
            if r.name == "submit"
        )
        saved = count_graded_attempts(
            self.env["DATABASE_URL"], submitters, since, len(self.seed["question_ids"])
        )
        if not redirected <= saved <= redirected + 2 * CONNECTIONS:
            raise BenchmarkError(f"{redirected} submits redirected but {saved} were saved")
        hello_rps = results[0].measured.rps
        for result in results:
            result.ratio_to_hello = round(result.measured.rps / hello_rps, 3)
        return {
            "results": results,
            "memory": memory,
            "master_memory": master,
            "gunicorn_command": command,
            "login": login_method,
            "submitted_attempts_saved": saved,
        }


# --- reporting ---------------------------------------------------------------------------------


def machine_description(env: dict[str, str]) -> dict[str, object]:
    import django
    import psycopg
    import redis

    cpuinfo = {
        key.strip(): value.strip()
        for key, _, value in (
            line.partition(":") for line in Path("/proc/cpuinfo").read_text().splitlines()
        )
        if value
    }
    mem_kb = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1))
    with psycopg.connect(env["DATABASE_URL"], connect_timeout=5) as connection:
        postgres = connection.execute("SHOW server_version").fetchone()[0]
    redis_version = redis.Redis.from_url(env["REDIS_URL"]).info("server")["redis_version"]
    wrk_version = subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False)
    return {
        "nproc": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)),
        "cpu_model": cpuinfo.get("model name", "unknown"),
        "cpu_mhz": round(float(cpuinfo.get("cpu MHz", "0"))),
        "memory_gib": round(mem_kb / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "django": django.__version__,
        "gunicorn": importlib.metadata.version("gunicorn"),
        "postgresql": postgres,
        "redis": redis_version,
        "wrk": (wrk_version.stdout or wrk_version.stderr).split("[")[0].strip(),
    }


def evaluate(results: list[EndpointResult], memory: list[dict[str, float]]) -> dict[str, object]:
    pages = {}
    for result in (r for r in results if r.is_page):
        pages[result.name] = {
            "throughput": result.ratio_to_hello >= TARGET_RATIO,
            "p99": result.measured.p99_ms <= TARGET_P99_MS,
            "no_errors": result.measured.unexpected == 0 and result.warmup.unexpected == 0,
        }
    rss = max(m["rss_mb"] for m in memory)
    all_met = all(all(checks.values()) for checks in pages.values()) and rss <= TARGET_RSS_MB
    return {
        "pages": pages,
        "max_worker_rss_mb": rss,
        "rss": rss <= TARGET_RSS_MB,
        "all_met": all_met,
    }


def mark(ok: bool) -> str:
    return "pass" if ok else "FAIL"


def table(results: list[EndpointResult]) -> list[str]:
    rows = [
        "| endpoint | request | req/s | vs hello | p50 ms | p99 ms | max ms | requests | errors "
        "| CPU idle before |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        m = r.measured
        rows.append(
            f"| {r.name}{'' if r.is_page else ' (floor)'} | "
            f"`{r.method} {r.path}` → {r.expected_status} | {m.rps:,.0f} | "
            f"{r.ratio_to_hello:.0%} | {m.p50_ms:.1f} | {m.p99_ms:.1f} | {m.max_ms:.0f} | "
            f"{m.requests:,} | {m.unexpected} | {r.idle_before:.0%} |"
        )
    return rows


def results_markdown(report: dict) -> str:
    machine, load, targets = report["machine"], report["load"], report["targets"]
    results: list[EndpointResult] = report["results"]
    lines = [
        "<!-- web:start (written by benchmarks/web.py; edits here are overwritten) -->",
        "## Web: pages under gunicorn at 16 concurrent clients",
        "",
        f"Measured {report['date']} by `benchmarks/web.py` (`make bench`).",
        "",
        f"- Machine: {machine['nproc']} CPUs ({machine['cpu_model']}, {machine['cpu_mhz']} MHz), "
        f"{machine['memory_gib']} GiB memory, Linux {machine['kernel']}",
        f"- Software: Python {machine['python']}, Django {machine['django']}, "
        f"gunicorn {machine['gunicorn']}, PostgreSQL {machine['postgresql']}, "
        f"Redis {machine['redis']}, {machine['wrk']}",
        f"- Server: `{report['gunicorn_command']}` ({report['server']}), DEBUG off, "
        "cached templates, sessions in cached_db over Redis, persistent database connections",
        f"- Load: wrk on the same machine, {load['connections']} connections, "
        f"{load['threads']} threads, {load['warmup_s']} s warm-up then {load['duration_s']} s "
        "per endpoint, one after another against the same server, over loopback",
        f"- Data: {report['dataset']['students']:,} students, {report['dataset']['chapters']} "
        f"chapters of {report['dataset']['questions'] // report['dataset']['chapters']} "
        f"questions, {report['dataset']['attempts']:,} attempts, "
        f"{report['dataset']['answers']:,} answers",
        f"- Load average (1, 5, 15 min) before the run: "
        f"{' '.join(report['load_average']['before'])}, after: "
        f"{' '.join(report['load_average']['after'])} (wrk and the server share the CPUs; "
        "anything else running adds noise)",
        f"- Pages are fetched as one student ({report['reader_attempts']} earlier attempts at "
        f"the chapter; logged in via {report['login']}); the submit rotates "
        f"{report['submitters']} students, each POST a fresh form that creates and grades an "
        "attempt (302 to the attempt page). Errors count every response other than the "
        "expected status, and socket errors.",
        "",
        *table(results),
        "",
        "Web worker memory after the load (VmRSS, peak VmHWM in brackets): "
        + ", ".join(f"{m['rss_mb']:.0f} MB ({m['peak_rss_mb']:.0f})" for m in report["memory"])
        + ".",
        "",
        "| target | result |",
        "|---|---|",
    ]
    for name, checks in targets["pages"].items():
        r = next(r for r in results if r.name == name)
        lines.append(
            f"| {name}: ≥ {TARGET_RATIO:.0%} of hello's req/s | "
            f"{mark(checks['throughput'])} ({r.ratio_to_hello:.0%}) |"
        )
        lines.append(
            f"| {name}: p99 ≤ {TARGET_P99_MS:.0f} ms | {mark(checks['p99'])} "
            f"({r.measured.p99_ms:.1f} ms) |"
        )
        lines.append(f"| {name}: no errors | {mark(checks['no_errors'])} |")
    lines.append(
        f"| worker RSS ≤ {TARGET_RSS_MB:.0f} MB | {mark(targets['rss'])} "
        f"({targets['max_worker_rss_mb']:.0f} MB at most) |"
    )
    if report["sweep"]:
        sweep = report["sweep"]
        lines += [
            "",
            f"Worker setups tried with `benchmarks/web.py --sweep` ({sweep['date']}), hello only; "
            "a sweep varies by ±15% from run to run:",
            "",
            "| gunicorn workers | hello req/s | p99 ms |",
            "|---|---:|---:|",
        ]
        lines += [f"| {s['label']} | {s['rps']:,.0f} | {s['p99_ms']:.1f} |" for s in sweep["rows"]]
    lines += [
        "",
        "Reproduce with `make bench` (raw figures: `benchmarks/results/web.json`).",
        "<!-- web:end -->",
    ]
    return "\n".join(lines) + "\n"


def last_sweep() -> dict[str, object] | None:
    """The previous run's --sweep figures, kept so that a run without --sweep still shows them."""
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
        sweep = json.loads(RESULTS_JSON.read_text())["sweep"]
        if sweep and sweep["rows"]:
            return sweep
    return None


def replace_results_section(marker: str, section: str) -> None:
    """Put ``section`` between ``<!-- marker:start`` and ``<!-- marker:end -->`` in RESULTS.md."""
    header = "# Benchmark results\n\nWritten by the scripts in `benchmarks/` (see its README).\n\n"
    existing = RESULTS_MD.read_text() if RESULTS_MD.exists() else header
    pattern = re.compile(rf"<!-- {marker}:start.*?<!-- {marker}:end -->\n", re.DOTALL)
    if pattern.search(existing):
        text = pattern.sub(lambda _: section, existing)
    else:
        text = existing.rstrip("\n") + "\n\n" + section
    RESULTS_MD.write_text(text)


def write_results(report: dict) -> None:
    replace_results_section("web", results_markdown(report))
    RESULTS_JSON.parent.mkdir(exist_ok=True)
    serialisable = {**report, "results": [asdict(r) for r in report["results"]]}
    RESULTS_JSON.write_text(json.dumps(serialisable, indent=2) + "\n")


def print_summary(report: dict) -> None:
    print()
    print(f"{'endpoint':<14}{'req/s':>10}{'vs hello':>10}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}")
    for r in report["results"]:
        m = r.measured
        print(
            f"{r.name:<14}{m.rps:>10,.0f}{r.ratio_to_hello:>10.0%}"
            f"{m.p50_ms:>9.1f}{m.p99_ms:>9.1f}{m.unexpected:>8}"
        )
    rss = ", ".join(f"{m['rss_mb']:.0f} MB (peak {m['peak_rss_mb']:.0f})" for m in report["memory"])
    print(f"worker RSS: {rss}")
    targets = report["targets"]
    for name, checks in targets["pages"].items():
        print(f"{name:<14}" + "  ".join(f"{k} {mark(v)}" for k, v in checks.items()))
    print(f"{'worker RSS':<14}{mark(targets['rss'])}")
    print(f"\nall targets met: {targets['all_met']}; written to {RESULTS_MD.relative_to(REPO)}")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=DURATION_S, help="seconds per endpoint")
    parser.add_argument("--warmup", type=int, default=WARMUP_S, help="warm-up seconds")
    parser.add_argument(
        "--sweep",
        action="store_true",
        help="first measure hello under several worker setups (reported, not applied)",
    )
    parser.add_argument("--worker-class", default=DEFAULT_SERVER.worker_class)
    parser.add_argument("--workers", type=int, default=DEFAULT_SERVER.workers)
    parser.add_argument("--threads", type=int, default=DEFAULT_SERVER.threads)
    args = parser.parse_args(argv)

    def out_of_time(signum: int, frame: FrameType | None) -> None:
        raise Timeout(f"the benchmark ran past its {OVERALL_TIMEOUT_S} s bound")

    signal.signal(signal.SIGALRM, out_of_time)
    signal.alarm(OVERALL_TIMEOUT_S)
    try:
        load_before = load_average()
        started_at = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        bench = Run(args)
        bench.prepare()
        sweep = {"date": started_at, "rows": bench.sweep()} if args.sweep else last_sweep()
        config = ServerConfig(args.worker_class, args.workers, args.threads)
        measured = bench.measure_all(config)
        results: list[EndpointResult] = measured["results"]
        report = {
            "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "machine": machine_description(bench.env),
            "server": config.label(),
            "gunicorn_command": measured["gunicorn_command"],
            "load": {
                "tool": "wrk",
                "connections": CONNECTIONS,
                "threads": WRK_THREADS,
                "warmup_s": args.warmup,
                "duration_s": args.duration,
            },
            "dataset": bench.seed["counts"],
            "reader_attempts": bench.seed["reader_attempts_on_measured_chapter"],
            "submitters": len(bench.seed["submitters"]),
            "login": measured["login"],
            "submitted_attempts_saved": measured["submitted_attempts_saved"],
            "load_average": {"before": load_before, "after": load_average()},
            "results": results,
            "memory": measured["memory"],
            "master_memory": measured["master_memory"],
            "targets": evaluate(results, measured["memory"]),
            "sweep": sweep,
        }
        write_results(report)
        print_summary(report)
        return 0 if report["targets"]["all_met"] else 1
    except (BenchmarkError, Timeout, subprocess.TimeoutExpired) as error:
        print(f"benchmark failed: {error}", file=sys.stderr)
        return 2
    finally:
        signal.alarm(0)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
