"""The worker's capabilities in docker-compose.yml are enough for the sandbox, and each is needed.

Docker cannot run here, but what ``cap_drop: [ALL]`` + ``cap_add`` does to a root process can:
``setpriv --bounding-set`` gives a root process exactly those capabilities, as Docker does for
the container's processes. The job writes files the worker must read and remove, and leaves a
processes that are still running when its wall clock runs out, which the worker must kill. (Seccomp and AppArmor are Docker's: not tested here.)
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap

import pytest
import yaml

from tests.processes import ROOT

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("bwrap") or not shutil.which("setpriv"),
    reason="needs root, bubblewrap and setpriv (as in the worker container)",
)

PROBE = textwrap.dedent(
    """
    import sys
    from workers.jobs import JobSpec, Limits
    from workers.sandbox import run_job

    code = b'''
    import os, subprocess, time
    os.makedirs("/work/d/e"); open("/work/d/e/f", "w").write("x")
    os.chmod("/work/d/e", 0); os.chmod("/work/d", 0)
    with open("/output/predictions.npy", "wb") as out:
        out.write(b"42")
    os.chmod("/output/predictions.npy", 0)
    print("job uid", os.getuid(), flush=True)
    for _ in range(4):  # still running when the wall clock runs out: the worker kills them
        subprocess.Popen(["sleep", "300"])
    time.sleep(300)
    '''
    spec = JobSpec(
        job_id="capabilities",
        files={"main.py": code},
        entrypoint="main.py",
        limits=Limits(wall_seconds=3, memory_mb=256, processes=16, disk_mb=16, log_bytes=10_000),
    )
    try:
        result = run_job(spec, backend="bwrap", allow_degraded=False)
        job_folder = result.output_dir.parent
        predictions = (result.output_dir / "predictions.npy").read_bytes()
        result.cleanup()
    except Exception as error:
        print("PROBE FAILED", type(error).__name__, error)
        sys.exit(1)
    print(result.outcome.value, result.message)
    print("predictions", predictions, "removed", not job_folder.exists())
    """
)


def compose_worker_capabilities() -> list[str]:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    worker = compose["services"]["worker-cpu"]
    assert worker["cap_drop"] == ["ALL"]
    return [name.lower() for name in worker["cap_add"]]


def run_probe(capabilities: list[str], tmp_path) -> subprocess.CompletedProcess[str]:
    jobs = tmp_path / "jobs"
    env = {
        **os.environ,
        "TOPDOWN_JOBS_DIR": str(jobs),
        "TOPDOWN_WARM_START": "0",
        "PYTHONPATH": str(ROOT),
    }
    bounding = ",".join(["-all", *(f"+{name}" for name in capabilities)])
    return subprocess.run(
        ["setpriv", f"--bounding-set={bounding}", "--inh-caps=-all", sys.executable, "-c", PROBE],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_compose_capabilities_run_a_sandboxed_job_start_to_finish(tmp_path):
    result = run_probe(compose_worker_capabilities(), tmp_path)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "timeout" in result.stdout
    assert "predictions b'42' removed True" in result.stdout


@pytest.mark.parametrize("dropped", compose_worker_capabilities())
def test_every_compose_capability_is_needed(dropped, tmp_path):
    capabilities = compose_worker_capabilities()

    result = run_probe([name for name in capabilities if name != dropped], tmp_path)

    assert (
        result.returncode != 0
        or "completed" not in result.stdout
        or "removed True" not in (result.stdout)
    ), f"the sandbox works without {dropped}: drop it from docker-compose.yml"
