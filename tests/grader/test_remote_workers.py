"""Workers on other machines: two worker processes that share only the database, the broker and
S3-compatible storage (a local moto server) grade from the same queue at the same time.

Each worker has its own scratch folders (jobs, dataset cache, MEDIA_ROOT that must stay unused);
none of them is the web side's. The dataset reaches the workers through the bucket, is cached by
sha256 on each worker, and is verified against that digest.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import boto3
import pytest
from django.db import connection
from moto.server import ThreadedMotoServer

from grader import submissions
from grader.models import RunStatus, Submission, WorkerHeartbeat
from tests.factories import UserFactory
from tests.grader.factories import AssignmentFactory
from tests.processes import celery_worker_args, free_port, running, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

BUCKET = "topdown-media"
HIDDEN_BUCKET = "topdown-hidden"
# Long enough that the two workers' runs overlap: one job per worker process at a time.
SLOW_PERFECT = (
    "import time, numpy as np, topdown_task as tt\n"
    "time.sleep(1.5)\n"
    "tt.save_predictions(np.arange(12) % 3)\n"
)


@pytest.fixture
def s3_endpoint():
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id="test",
        aws_secret_access_key="test",
        region_name="us-east-1",
    )
    for bucket in (BUCKET, HIDDEN_BUCKET):
        client.create_bucket(Bucket=bucket)
    yield endpoint, client
    server.stop()


@pytest.fixture
def s3_storage(settings, s3_endpoint, monkeypatch):
    """The web side (this test process) stores uploads in the bucket, as in production."""
    endpoint, client = s3_endpoint
    options = {
        "bucket_name": BUCKET,
        "endpoint_url": endpoint,
        "region_name": "us-east-1",
        "access_key": "test",
        "secret_key": "test",
        "default_acl": None,
        "querystring_auth": True,
        "file_overwrite": False,
    }
    backend = "storages.backends.s3.S3Storage"
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": backend, "OPTIONS": options},
        "grader_hidden": {
            "BACKEND": backend,
            "OPTIONS": {**options, "bucket_name": HIDDEN_BUCKET, "location": "hidden"},
        },
    }
    # A FileField resolves a callable storage once, when models load; the workers start with
    # these settings, this process must switch the hidden-labels field by hand.
    from django.core.files.storage import storages

    from grader.models import Dataset

    monkeypatch.setattr(
        Dataset._meta.get_field("test_labels_file"), "storage", storages["grader_hidden"]
    )
    return endpoint, client


def worker_env(tmp_path: Path, name: str, endpoint: str) -> tuple[dict[str, str], Path]:
    db = connection.settings_dict
    home = tmp_path / name
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "S3_BUCKET": BUCKET,
        "S3_HIDDEN_BUCKET": HIDDEN_BUCKET,
        "S3_ENDPOINT_URL": endpoint,
        "S3_REGION": "us-east-1",
        "S3_ACCESS_KEY_ID": "test",
        "S3_SECRET_ACCESS_KEY": "test",
        # This worker's own scratch space; MEDIA_ROOT must never be created.
        "TOPDOWN_VAR_DIR": str(home / "var"),
        "MEDIA_ROOT": str(home / "media"),
        "GRADER_CACHE_DIR": str(home / "cache"),
        "GRADER_JOBS_DIR": str(home / "jobs"),
    }
    (home / "jobs").mkdir(parents=True)
    return env, home


def test_two_workers_on_separate_machines_grade_concurrently_through_s3(
    s3_storage, tmp_path, settings
):
    endpoint, client = s3_storage
    # Given an assignment whose dataset lives only in the buckets
    assignment = AssignmentFactory(wall_seconds=30, memory_mb=512)
    dataset = assignment.dataset
    stored = {o["Key"] for o in client.list_objects_v2(Bucket=BUCKET).get("Contents", [])}
    hidden = {o["Key"] for o in client.list_objects_v2(Bucket=HIDDEN_BUCKET).get("Contents", [])}
    assert dataset.train_file.name in stored and dataset.test_inputs_file.name in stored
    assert f"hidden/{dataset.test_labels_file.name}" in hidden
    assert dataset.test_labels_file.name not in stored  # the labels never sit beside the inputs
    assert not Path(settings.MEDIA_ROOT, dataset.train_file.name).exists()

    env_a, home_a = worker_env(tmp_path, "a", endpoint)
    env_b, home_b = worker_env(tmp_path, "b", endpoint)
    with (
        running(celery_worker_args("remote-a@%h"), env=env_a, log=tmp_path / "a.log"),
        running(celery_worker_args("remote-b@%h"), env=env_b, log=tmp_path / "b.log"),
    ):
        wait_for(
            lambda: WorkerHeartbeat.objects.filter(hostname__startswith="remote-").count() == 2,
            timeout=60,
            what="both workers up",
        )
        # When students submit six times at once
        queued = [
            submissions.submission_create(
                user=UserFactory(),
                assignment=assignment,
                filename="main.py",
                content=SLOW_PERFECT.encode(),
            )
            for _ in range(6)
        ]
        wait_for(
            lambda: Submission.objects.filter(status=RunStatus.SCORED).count() == len(queued),
            timeout=120,
            what="every submission scored",
        )

    # Then each was graded exactly once, by both workers between them, at overlapping times
    graded = list(Submission.objects.order_by("started_at"))
    assert all(s.public_score == 1.0 and s.attempts == 1 for s in graded)
    workers = {s.worker_id.split("@")[0] for s in graded}
    assert workers == {"remote-a", "remote-b"}, workers
    overlaps = [
        (x.pk, y.pk)
        for x in graded
        for y in graded
        if x.worker_id != y.worker_id
        and x.started_at < y.finished_at
        and y.started_at < x.finished_at
    ]
    assert overlaps, "the two workers never graded at the same time"

    # and each worker fetched the public files once into its own cache, verified by sha256
    for home in (home_a, home_b):
        cached = sorted((home / "cache" / "datasets").glob("*.npz"))
        for path in cached:
            assert hashlib.sha256(path.read_bytes()).hexdigest() == path.stem
        assert {p.stem for p in cached} == {dataset.train_sha256, dataset.test_inputs_sha256}
        assert not (home / "media").exists()  # nothing came through a shared folder
