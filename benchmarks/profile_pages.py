"""Pages timed in one process: CPU per request without a web server, wrk or a quiet machine.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/topdown REDIS_URL=redis://127.0.0.1:6379/15 \
        .venv/bin/python benchmarks/profile_pages.py [--setup] [-n 300] [--only chapter,status]
    ... benchmarks/profile_pages.py --profile chapter          # cProfile of one page
    PROFILE_DUMP=/tmp/chapter.prof ... --profile chapter       # and its raw stats, for pstats
    ... benchmarks/profile_pages.py --compare /tmp/old-tree    # another checkout, same data

The load benchmarks (``web.py``, ``pages.py``, ``forum.py``) measure throughput under gunicorn and
wrk, which share the CPUs with everything else running on the machine. This script measures what
those figures are made of, the time and CPU one request costs in the web process, so a change can
be judged on a busy machine: the pages are served one after another, in process, through Django's
own WSGI handler (what gunicorn calls), with production settings (DEBUG off, cached templates,
sessions in ``cached_db`` over Redis, persistent database connections).

Three small databases of its own, created and seeded on first use (``--setup`` recreates them):
``topdown_bench_profile`` (or ``$PROFILE_DATABASE``: the web benchmark's seed with 300 students),
``..._grader`` (the grader pages' seed, 500 students x 4 submissions) and ``..._forum`` (the
forum's seed, 2,000 threads and 20,000 posts, one thread of 500). Each suite runs in a process of
its own. ``--compare DIR`` runs the same suites with the code of another checkout of the project
(the database and the seed stay those of this one), in alternating rounds, and prints the ratio
per page: on a noisy machine only ratios measured side by side mean anything.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import secrets
import statistics
import string
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
# This folder holds modules named like the apps (forum.py, grader.py): never import from it. The
# project's code comes from PYTHONPATH when set (--compare), from this checkout otherwise.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != BENCH_DIR]
if not os.environ.get("PYTHONPATH"):
    sys.path.insert(0, str(REPO))
WORK_DIR = BENCH_DIR / ".work" / "profile"
# PROFILE_DATABASE names another set, for two people profiling on one server at once.
DATABASE = os.environ.get("PROFILE_DATABASE", "topdown_bench_profile")
SUITES = ("web", "grader", "forum")
REDIS_DB = 11
CACHE_PREFIX = "topdown-profile"
DEFAULT_N = 300
WARMUP = 30


def log(message: str) -> None:
    print(f"[profile] {message}", file=sys.stderr, flush=True)


def database_name(suite: str) -> str:
    return DATABASE if suite == "web" else f"{DATABASE}_{suite}"


def environment(suite: str) -> dict[str, str]:
    """``web.py``'s production-on-loopback environment, on this suite's own stores."""
    from benchmarks import web  # here, not at the top: the timing processes never need it

    server_url, redis_url = os.environ.get("DATABASE_URL", ""), os.environ.get("REDIS_URL", "")
    if not server_url.startswith(("postgres://", "postgresql://")) or not redis_url:
        raise SystemExit("set DATABASE_URL (a PostgreSQL server) and REDIS_URL")
    server, redis = urllib.parse.urlsplit(server_url), urllib.parse.urlsplit(redis_url)
    return {
        **web.bench_environment(
            urllib.parse.urlunsplit(server._replace(path=f"/{database_name(suite)}")),
            urllib.parse.urlunsplit(redis._replace(path=f"/{REDIS_DB}")),
        ),
        "CACHE_KEY_PREFIX": CACHE_PREFIX,
        "TOPDOWN_VAR_DIR": str(WORK_DIR / "var"),
    }


def seed_file(suite: str) -> Path:
    return WORK_DIR / f"seed-{suite}.json"


def setup(suite: str) -> None:
    from benchmarks import web

    env = environment(suite)
    log(f"{suite}: recreating {database_name(suite)}, migrating, seeding")
    web.recreate_database(os.environ["DATABASE_URL"], database_name(suite))
    python = sys.executable
    subprocess.run(
        [python, "manage.py", "migrate", "--noinput", "-v0"], env=env, cwd=REPO, check=True
    )
    if not (WORK_DIR / "var" / "static" / "staticfiles.json").exists():
        subprocess.run(
            [python, "manage.py", "collectstatic", "--noinput", "-v0"],
            env=env,
            cwd=REPO,
            check=True,
        )
    subprocess.run(
        [python, str(Path(__file__).resolve()), "--seed-suite", suite],
        env=env,
        cwd=REPO,
        check=True,
    )


def seed_suite(suite: str) -> None:
    import django

    django.setup()
    if suite == "web":
        from benchmarks import seed as web_seed

        web_seed.STUDENTS = 300
        seeded = web_seed.seed()
    elif suite == "grader":
        from benchmarks import seed_grader

        seeded = seed_grader.seed(students=500, per_student=4)
    else:
        from benchmarks import seed_forum

        seeded = seed_forum.seed(threads=2_000, posts=20_000)
    seed_file(suite).write_text(json.dumps(seeded, indent=2, default=str))


# --- the measured requests --------------------------------------------------------------------


class Request:
    def __init__(self, method: str, path: str, user: str | None, *, body: str = "") -> None:
        self.method, self.user, self.body = method, user, body
        self.path, _, self.query = path.partition("?")


def pages(suite: str, seed: dict[str, Any]) -> dict[str, tuple[int, list[Request]]]:
    """Page name -> (expected status, the requests it rotates over)."""
    if suite == "web":
        chapter = f"/courses/{seed['course_slug']}/chapters/{seed['measured_chapter']['slug']}/"
        questionnaire = f"{chapter}questionnaire/"
        reader = seed["reader"]
        fields = [tuple(pair) for pair in seed["submit_fields"]]
        return {
            "hello": (200, [Request("GET", "/bench/hello", None)]),
            "hello-user": (200, [Request("GET", "/bench/hello-user", reader)]),
            "chapter": (200, [Request("GET", chapter, reader)]),
            "questionnaire": (200, [Request("GET", questionnaire, reader)]),
            "submit": (
                302,
                [
                    Request("POST", questionnaire, name, body=urllib.parse.urlencode(fields))
                    for name in seed["submitters"][:64]
                ],
            ),
        }
    if suite == "grader":
        reader, staff, slug = seed["reader"], seed["instructor"], seed["assignment_slug"]
        status = f"/submissions/{seed['running_submission']}/status.json"
        poll = f"log_from={seed['running_log_length']}&metrics_from={seed['running_metrics']}"
        return {
            "result page": (
                200,
                [Request("GET", f"/submissions/{seed['result_submission']}/", reader)],
            ),
            "leaderboard": (200, [Request("GET", f"/assignments/{slug}/leaderboard/", reader)]),
            "submissions list": (200, [Request("GET", f"/assignments/{slug}/submissions/", staff)]),
            "status endpoint": (200, [Request("GET", f"{status}?{poll}", reader)]),
            "status from 0": (
                200,
                [Request("GET", f"{status}?log_from=0&metrics_from=0", reader)],
            ),
        }
    thread = f"/forum/threads/{seed['long_thread']}/"
    category = f"/courses/{seed['course_slug']}/forum/chapters/{seed['chapter_slug']}/"
    search = f"/courses/{seed['course_slug']}/forum/search/"
    return {
        "thread page": (
            200,
            [
                Request("GET", f"{thread}?page={n}", seed["reader"])
                for n in range(1, seed["long_thread_pages"] + 1)
            ],
        ),
        "category page": (
            200,
            [Request("GET", f"{category}?page={n}", seed["reader"]) for n in range(1, 6)],
        ),
        "search": (
            200,
            [
                Request("GET", f"{search}?{urllib.parse.urlencode({'q': query})}", seed["reader"])
                for query in seed["queries"][:50]
            ],
        ),
    }


class Site:
    """The WSGI application as gunicorn calls it, with a session cookie per user."""

    def __init__(self) -> None:
        from django.core.handlers.wsgi import WSGIHandler

        self.handler = WSGIHandler()
        self.cookies: dict[str | None, str] = {None: ""}
        self.csrf = "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(32))

    def log_in(self, usernames: set[str]) -> None:
        from django.conf import settings
        from django.test import Client

        from accounts.models import User

        for username in usernames:
            client = Client()
            client.force_login(User.objects.get(username=username))
            session = client.cookies[settings.SESSION_COOKIE_NAME].value
            self.cookies[username] = (
                f"{settings.SESSION_COOKIE_NAME}={session}; {settings.CSRF_COOKIE_NAME}={self.csrf}"
            )

    def call(self, request: Request) -> tuple[int, bytes]:
        body = request.body.encode()
        if request.method == "POST":
            body += f"&csrfmiddlewaretoken={self.csrf}".encode()
        environ = {
            "REQUEST_METHOD": request.method,
            "SCRIPT_NAME": "",
            "PATH_INFO": request.path,
            "QUERY_STRING": request.query,
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "8000",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "HTTP_HOST": "127.0.0.1",
            "HTTP_COOKIE": self.cookies[request.user],
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(body),
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": False,
            "wsgi.multiprocess": True,
            "wsgi.run_once": False,
        }
        if request.method == "POST":
            environ.update(
                CONTENT_TYPE="application/x-www-form-urlencoded",
                CONTENT_LENGTH=str(len(body)),
                HTTP_ORIGIN="http://127.0.0.1",
                HTTP_REFERER=f"http://127.0.0.1{request.path}",
            )
        statuses: list[int] = []
        result = self.handler(environ, lambda status, headers: statuses.append(int(status[:3])))
        try:
            content = b"".join(result)
        finally:
            result.close()  # type: ignore[attr-defined]
        return statuses[0], content


class QueryLog:
    def __init__(self, queries: list[str]) -> None:
        self.queries = queries

    def __call__(self, execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        self.queries.append(sql)
        return execute(sql, params, many, context)


def time_suite(suite: str, n: int, only: set[str] | None, profile: str | None) -> dict[str, Any]:
    import django

    django.setup()
    from django.db import connection

    import courses.views

    log(f"{suite}: timing the code in {Path(courses.views.__file__).parent.parent}")
    seed = json.loads(seed_file(suite).read_text())
    measured = {
        name: spec
        for name, spec in pages(suite, seed).items()
        if (only is None or name in only) and (profile is None or name == profile)
    }
    site = Site()
    site.log_in({r.user for _, requests in measured.values() for r in requests if r.user})
    figures: dict[str, Any] = {}
    for name, (expected, requests) in measured.items():
        for index in range(WARMUP):
            status, content = site.call(requests[index % len(requests)])
            if status != expected:
                raise SystemExit(f"{name}: {status}, expected {expected}\n{content[:2000]!r}")
        queries: list[str] = []

        with connection.execute_wrapper(QueryLog(queries)):
            site.call(requests[0])
        if profile:
            import cProfile
            import pstats

            profiler = cProfile.Profile()
            profiler.enable()
            for index in range(n):
                site.call(requests[index % len(requests)])
            profiler.disable()
            if dump := os.environ.get("PROFILE_DUMP"):  # for pstats or snakeviz
                profiler.dump_stats(dump)
            stats = pstats.Stats(profiler).strip_dirs()
            stats.sort_stats("cumulative").print_stats(60)
            stats.sort_stats("tottime").print_stats(40)
            for sql in queries:
                print(sql[:300])
            return {}
        walls, cpus = [], []
        for index in range(n):
            request = requests[index % len(requests)]
            wall, cpu = time.perf_counter(), time.process_time()
            site.call(request)
            cpus.append(time.process_time() - cpu)
            walls.append(time.perf_counter() - wall)
        figures[name] = {
            "n": n,
            "wall_ms_median": statistics.median(walls) * 1000,
            "wall_ms_mean": statistics.fmean(walls) * 1000,
            "cpu_ms_mean": statistics.fmean(cpus) * 1000,
            "queries": len(queries),
            "bytes": len(site.call(requests[0])[1]),
        }
    return figures


# --- driving the suites ---------------------------------------------------------------------------


def run_suite(code: Path, suite: str, args: argparse.Namespace) -> dict[str, Any]:
    env = environment(suite)
    # The other checkout's code first on the path; this file (and the seed) stay this checkout's.
    env["PYTHONPATH"] = str(code)
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--time-suite",
        suite,
        "-n",
        str(args.n),
    ]
    if args.only:
        command += ["--only", args.only]
    if args.profile:
        command += ["--profile", args.profile]
    done = subprocess.run(command, env=env, cwd=code, check=True, stdout=subprocess.PIPE, text=True)
    if args.profile:
        print(done.stdout)
        return {}
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--setup", action="store_true", help="recreate and seed the databases")
    parser.add_argument("-n", type=int, default=DEFAULT_N, help="requests per page and round")
    parser.add_argument("--only", default="", help="page names, comma separated")
    parser.add_argument("--suites", default=",".join(SUITES))
    parser.add_argument("--profile", default="", help="cProfile this page instead of timing")
    parser.add_argument("--compare", type=Path, help="another checkout of the project")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds for --compare")
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument("--seed-suite", choices=SUITES, help=argparse.SUPPRESS)
    parser.add_argument("--time-suite", choices=SUITES, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    only = {name.strip() for name in args.only.split(",") if name.strip()} or None

    if args.seed_suite:
        seed_suite(args.seed_suite)
        return 0
    if args.time_suite:
        figures = time_suite(args.time_suite, args.n, only, args.profile or None)
        if not args.profile:
            print(json.dumps(figures))
        return 0

    WORK_DIR.mkdir(parents=True, exist_ok=True)
    suites = [s.strip() for s in args.suites.split(",") if s.strip()]
    for suite in suites:
        if args.setup or not seed_file(suite).exists():
            setup(suite)
    log(f"load average before: {' '.join(os.getloadavg().__repr__()[1:-1].split(', '))}")
    trees = [("this", REPO)] + ([("other", args.compare.resolve())] if args.compare else [])
    rounds = args.rounds if args.compare else 1
    results: dict[str, dict[str, list[dict[str, Any]]]] = {label: {} for label, _ in trees}
    for round_index in range(rounds):
        order = trees if round_index % 2 == 0 else trees[::-1]
        for suite in suites:
            for label, code in order:
                figures = run_suite(code, suite, args)
                for page, row in figures.items():
                    results[label].setdefault(page, []).append(row)
    if args.profile:
        return 0
    log(f"load average after: {' '.join(str(round(x, 2)) for x in os.getloadavg())}")

    def best(rows: list[dict[str, Any]], key: str) -> float:
        return min(row[key] for row in rows)

    header = f"{'page':<20} {'wall ms p50':>11} {'cpu ms':>7} {'queries':>7} {'KB':>6}"
    if args.compare:
        header += f"   {'other p50':>9} {'other cpu':>9} {'q':>3}   {'this/other (cpu)':>16}"
    print(header)
    for page, rows in results["this"].items():
        line = (
            f"{page:<20} {best(rows, 'wall_ms_median'):>11.2f} {best(rows, 'cpu_ms_mean'):>7.2f}"
            f" {rows[0]['queries']:>7} {rows[0]['bytes'] / 1024:>6.1f}"
        )
        other = results.get("other", {}).get(page)
        if other:
            ratio = best(rows, "cpu_ms_mean") / best(other, "cpu_ms_mean")
            line += (
                f"   {best(other, 'wall_ms_median'):>9.2f} {best(other, 'cpu_ms_mean'):>9.2f}"
                f" {other[0]['queries']:>3}   {ratio:>16.2f}"
            )
        print(line)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
