"""docker-compose.yml, the Dockerfiles and .env.example, checked without Docker (none runs here).

The compose file is validated against the Compose Specification's JSON schema (vendored in
deploy/schema/ with its licence), then against what docs/deployment.md promises.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft201909Validator

from deploy.seccomp.build import SANDBOX_RULE, sandbox_profile
from tests.processes import ROOT

COMPOSE = ROOT / "docker-compose.yml"
SCHEMA = ROOT / "deploy" / "schema" / "compose-spec.json"
WORKERS = ("worker-cpu", "worker-gpu")
# Variables that belong to a tool rather than to Topdown's settings.
NOT_SETTINGS = {"DJANGO_SETTINGS_MODULE", "POSTGRES_USER", "POSTGRES_DB", "POSTGRES_PASSWORD_FILE"}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


@pytest.fixture(scope="module")
def services(compose) -> dict[str, dict[str, Any]]:
    return compose["services"]


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {key: str(value) for key, value in env.items()}


def command_line(service: dict[str, Any]) -> str:
    command = service.get("command") or []
    return " ".join(command) if isinstance(command, list) else command


def schema_errors(document: dict[str, Any]) -> list[str]:
    # The vendored schema names draft 2019-09 by an address jsonschema does not recognise.
    validator = Draft201909Validator(json.loads(SCHEMA.read_text()))
    errors = sorted(validator.iter_errors(document), key=lambda error: list(error.path))
    return [f"{list(error.path)}: {error.message}" for error in errors]


def test_compose_file_follows_the_compose_specification(compose):
    errors = schema_errors(compose)

    assert not errors, "\n".join(errors)


def test_the_schema_check_catches_a_misspelt_key(compose):
    broken = json.loads(json.dumps(compose))
    broken["services"]["web"]["healthcheck"]["intervall"] = "30s"
    broken["services"]["worker-gpu"]["deploy"]["resources"]["reservations"]["gpus"] = 1

    assert len(schema_errors(broken)) == 2


def test_the_schema_is_vendored_with_its_licence():
    licence = (SCHEMA.parent / "LICENSE").read_text()

    assert "Apache License" in licence and "Version 2.0" in licence


def test_the_topology_has_every_service_the_issue_names(services):
    assert set(services) >= {
        "postgres",
        "redis",
        "web",
        "worker-cpu",
        "worker-gpu",
        "beat",
        "flower",
    }
    assert services["flower"]["profiles"] == ["flower"]
    assert "gunicorn" in command_line(services["web"])


def test_every_service_has_a_health_check(services):
    for name, service in services.items():
        check = service.get("healthcheck")
        assert check and check.get("test") and not check.get("disable"), name


def test_health_checks_name_modes_the_check_script_has(services):
    from deploy.healthcheck import CHECKS

    for name, service in services.items():
        test = service["healthcheck"]["test"]
        if "deploy/healthcheck.py" in test:
            assert test[test.index("deploy/healthcheck.py") + 1] in CHECKS, name


def test_the_gpu_worker_reserves_one_gpu_and_runs_one_process_on_the_gpu_queue(services):
    gpu = services["worker-gpu"]
    devices = gpu["deploy"]["resources"]["reservations"]["devices"]

    assert len(devices) == 1
    assert "gpu" in devices[0]["capabilities"]
    assert devices[0].get("driver") == "nvidia"
    assert len(devices[0].get("device_ids", [])) == 1 or devices[0].get("count") == 1
    command = gpu["command"]
    assert command[command.index("--concurrency") + 1] == "1"
    assert command[command.index("--queues") + 1] == "gpu"
    assert gpu["build"]["dockerfile"] == "Dockerfile.gpu"


def test_only_gpu_workers_reserve_gpus_and_cpu_workers_skip_the_gpu_queue(services):
    for name, service in services.items():
        if name != "worker-gpu":
            assert "deploy" not in service, name
    queues = services["worker-cpu"]["command"]
    assert "gpu" not in queues[queues.index("--queues") + 1].split(",")


def test_volumes_are_named_not_host_folders(compose, services):
    declared = set(compose["volumes"])
    assert declared == {"pgdata", "media", "var"}
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0] if isinstance(volume, str) else volume["source"]
            assert source in declared, f"{name} mounts {source}, not a named volume"


def test_no_service_is_privileged_or_unconfined_by_seccomp(services):
    for name, service in services.items():
        assert not service.get("privileged"), name
        assert "ALL" not in service.get("cap_add", []), name
        for option in service.get("security_opt", []):
            assert option.replace(":", "=") != "seccomp=unconfined", name
        assert service.get("pid") != "host" and service.get("network_mode") != "host", name


def test_workers_get_exactly_the_sandbox_capabilities_and_profile(services):
    for name in WORKERS:
        worker = services[name]
        assert worker["user"] == "0"  # root's bubblewrap: a uid per job
        assert worker["cap_drop"] == ["ALL"]
        assert set(worker["cap_add"]) == {
            "SYS_ADMIN",
            "NET_ADMIN",
            "SETUID",
            "SETGID",
            "CHOWN",
            "DAC_OVERRIDE",
            "KILL",
        }
        options = dict(option.split("=", 1) for option in worker["security_opt"])
        assert options == {"seccomp": "./deploy/seccomp-sandbox.json", "apparmor": "unconfined"}
        assert (ROOT / options["seccomp"]).is_file()


def test_services_other_than_workers_add_no_capabilities(services):
    for name, service in services.items():
        if name not in WORKERS:
            assert not service.get("cap_add"), name
            assert not service.get("security_opt"), name


def test_workers_refuse_the_degraded_sandbox(services):
    for name in WORKERS:
        env = environment(services[name])
        assert env["GRADER_SANDBOX"] == "bwrap", name
        # environment wins over env_file: .env cannot turn the degraded sandbox on by mistake
        assert env["GRADER_ALLOW_DEGRADED"].lower() in {"0", "false", "no", "off"}, name
    example = env_example_values()
    assert example["GRADER_ALLOW_DEGRADED"].lower() == "false"


def test_each_worker_leases_job_uids_from_its_own_range(services):
    ranges = []
    for name in WORKERS:
        first, count = (int(n) for n in environment(services[name])["TOPDOWN_JOB_UIDS"].split(":"))
        ranges.append(range(first, first + count))
    assert not set(ranges[0]) & set(ranges[1])


def test_app_services_read_their_secrets_from_files(services):
    for name in ("web", "worker-cpu", "worker-gpu", "beat"):
        env = environment(services[name])
        for secret in ("SECRET_KEY", "DATABASE_URL", "REDIS_URL", "METRICS_TOKEN"):
            assert secret not in env, f"{name} has {secret} in its environment"
            target = env[f"{secret}_FILE"]
            assert target.removeprefix("/run/secrets/") in services[name]["secrets"], name


def test_make_secrets_writes_every_secret_the_compose_file_names(compose, tmp_path):
    shutil.copy(ROOT / "deploy" / "make-secrets.sh", tmp_path / "make-secrets.sh")

    subprocess.run(["sh", str(tmp_path / "make-secrets.sh")], check=True, capture_output=True)

    for name, secret in compose["secrets"].items():
        written = tmp_path / Path(secret["file"]).relative_to("deploy")
        assert written.is_file() and written.read_text(), name
    folder = tmp_path / "secrets"
    assert folder.stat().st_mode & 0o077 == 0
    password = (folder / "postgres_password").read_text()
    assert (folder / "database_url").read_text() == (
        f"postgres://topdown:{password}@postgres:5432/topdown"
    )
    assert len((folder / "secret_key").read_text()) >= 50


def test_the_seccomp_profile_is_dockers_default_plus_pivot_root():
    upstream = json.loads((ROOT / "deploy" / "seccomp" / "docker-default.json").read_text())
    profile = json.loads((ROOT / "deploy" / "seccomp-sandbox.json").read_text())

    assert profile == sandbox_profile(upstream)
    added = [rule for rule in profile["syscalls"] if rule not in upstream["syscalls"]]
    assert added == [SANDBOX_RULE]
    assert SANDBOX_RULE["includes"] == {"caps": ["CAP_SYS_ADMIN"]}
    assert profile["defaultAction"] == "SCMP_ACT_ERRNO"


# .env.example ----------------------------------------------------------------------------------

ENV_READ = re.compile(
    r"(?:env_bool|env_list|env_secret|environ\.get|getenv|env\.get)\(\s*\"([A-Z][A-Z0-9_]+)\""
)
SOURCES = ["topdown", "accounts", "courses", "grader", "forum", "workers", "deploy"]


def variables_the_code_reads() -> set[str]:
    found: set[str] = set()
    for folder in SOURCES:
        for path in (ROOT / folder).rglob("*.py"):
            if "harness" in path.parts:
                continue  # runs inside the sandbox: TOPDOWN_TASK_DIR and friends, set per job
            found |= set(ENV_READ.findall(path.read_text()))
    for constant in re.findall(
        r'_ENV = "([A-Z0-9_]+)"', (ROOT / "workers" / "sandbox.py").read_text()
    ):
        found.add(constant)
    return found


def env_example_values() -> dict[str, str]:
    values = {}
    for line in (ROOT / ".env.example").read_text().splitlines():
        match = re.match(r"^#?([A-Z][A-Z0-9_]*)=(.*)$", line)
        if match:
            values[match.group(1)] = match.group(2)
    return values


def test_env_example_lists_every_variable_the_code_reads():
    missing = variables_the_code_reads() - set(env_example_values()) - NOT_SETTINGS

    assert not missing, f".env.example lacks {sorted(missing)}"


def test_env_example_lists_every_variable_the_compose_file_sets(compose, services):
    used: set[str] = set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)", COMPOSE.read_text()))
    for service in services.values():
        if service.get("env_file"):
            used |= set(environment(service))
    used = {name.removesuffix("_FILE") for name in used} - NOT_SETTINGS

    missing = used - set(env_example_values())

    assert not missing, f".env.example lacks {sorted(missing)}"


def test_env_example_leaves_no_setting_empty():
    # An empty value is not "unset": int(""), Path("") and CUDA_VISIBLE_DEVICES="" mean
    # something else than the default, so unset ones are commented out.
    for line in (ROOT / ".env.example").read_text().splitlines():
        assert not re.match(r"^[A-Z][A-Z0-9_]*=\s*$", line), line


# Dockerfiles -----------------------------------------------------------------------------------


def dockerfile_stage(path: Path, stage: str | None) -> str:
    text = path.read_text()
    if stage is None:
        return text
    start = re.search(rf"^FROM .* AS {stage}$", text, flags=re.MULTILINE)
    assert start, f"{path.name} has no stage {stage}"
    following = re.search(r"^FROM ", text[start.end() :], flags=re.MULTILINE)
    return text[start.start() : start.end() + following.start() if following else len(text)]


def test_images_are_python_311_slim_with_bubblewrap():
    for name in ("Dockerfile", "Dockerfile.gpu"):
        text = (ROOT / name).read_text()
        assert re.search(r"^FROM python:3\.11-slim", text, flags=re.MULTILINE), name
        assert "bubblewrap" in text, name


def test_the_web_image_collects_static_files_and_runs_as_a_user():
    web = dockerfile_stage(ROOT / "Dockerfile", "web")

    assert "collectstatic --noinput" in web
    assert re.search(r"^USER topdown$", web, flags=re.MULTILINE)
    assert "gunicorn" in web


def test_the_gpu_image_installs_the_pinned_cuda_pytorch():
    text = (ROOT / "Dockerfile.gpu").read_text()
    pins = (ROOT / "requirements" / "worker.txt").read_text()

    assert "requirements/worker.txt" in text
    assert re.search(r"^torch==\d", pins, flags=re.MULTILINE)
    assert "NVIDIA_DRIVER_CAPABILITIES=compute,utility" in text


def test_secrets_and_local_state_stay_out_of_the_build_context():
    ignored = (ROOT / ".dockerignore").read_text().split()

    assert {".env", "deploy/secrets", ".venv", "var", ".git"} <= set(ignored)
