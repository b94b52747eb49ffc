"""The student's assignment page and the dataset's sample picture."""

from __future__ import annotations

import html
import struct
import zlib
from datetime import timedelta

import numpy as np
import pytest
from django.core.cache import cache
from django.urls import reverse
from django.utils import timezone

from grader import assignment_overview
from grader.images import (
    CELL_TARGET,
    GAP,
    PER_CLASS,
    ImageLayout,
    image_layout,
    png_bytes,
    sample_grid,
)
from grader.models import RunStatus
from grader.services import dataset_create_from_arrays
from tests.factories import ChapterFactory, EnrolmentFactory, UserFactory
from tests.grader.factories import (
    AssignmentFactory,
    BaselineFactory,
    BaselineRunFactory,
    DatasetFactory,
    SubmissionFactory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _empty_cache():
    # Summaries and pictures are cached by content digest; each test starts without them.
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def assignment(cast):
    dataset = DatasetFactory(n_train=30, n_test=12, class_names=["cat", "dog", "bird"])
    return AssignmentFactory(
        chapter=ChapterFactory(course=cast.course),
        dataset=dataset,
        description="Beat the baseline on *digits*.",
        wall_seconds=900,
        memory_mb=2048,
        needs_gpu=True,
        submissions_per_day=3,
        public_fraction=0.5,
    )


def scored_baseline(assignment, name: str, score: float):
    baseline = BaselineFactory(assignment=assignment, name=name)
    return BaselineRunFactory(
        baseline=baseline,
        status=RunStatus.SCORED,
        public_score=score,
        finished_at=timezone.now(),
    )


def page_text(response) -> str:
    return html.unescape(response.content.decode())


def page(client, user, assignment):
    client.force_login(user)
    response = client.get(reverse("assignment_detail", args=[assignment.slug]))
    assert response.status_code == 200
    return page_text(response)


# --- The page ---------------------------------------------------------------------------------


def test_the_page_describes_the_public_dataset(client, cast, assignment):
    text = page(client, cast.student, assignment)

    assert "<em>digits</em>" in text  # the description is rendered markdown
    assert "version 1" in text
    # Shapes and dtypes of every public array, read from the files.
    assert "<code>train.npz</code>" in text and "<code>test_inputs.npz</code>" in text
    assert "(30, 4, 4)" in text and "(30,)" in text and "(12, 4, 4)" in text
    assert "uint8" in text and "int64" in text
    # Classes with their names and how many training examples each has.
    for name in ("cat", "dog", "bird"):
        assert f"<td>{name}</td><td>10</td>" in text
    assert "3 classes" in text
    # Split sizes, and how the test set splits into public and private rows.
    assert "<strong>30</strong> examples with labels" in text
    assert "<strong>12</strong> inputs, labels hidden" in text
    assert "Your predictions on 6 of the 12 test inputs" in text
    assert "test_labels" not in text


def test_the_page_shows_the_metric_and_the_limits(client, cast, assignment):
    text = page(client, cast.student, assignment)

    assert "<strong>Accuracy</strong> higher is better" in text
    assert "<strong>900 seconds</strong> (about 15 minutes)" in text
    assert "<strong>2048 MB</strong> of memory" in text
    assert "on <strong>one GPU</strong>" in text


def test_a_cpu_assignment_says_it_has_no_gpu(client, cast, assignment):
    assignment.needs_gpu = False
    assignment.save()

    assert "on the <strong>CPU</strong> (no GPU)" in page(client, cast.student, assignment)


def test_the_page_lists_the_baselines_with_their_scores_and_the_pass_rule(client, cast, assignment):
    run = scored_baseline(assignment, "Pixel similarity", 0.8125)
    scored_baseline(assignment, "Majority class", 1 / 3)
    assignment.pass_rule = "beat_baseline"
    assignment.pass_baseline = run.baseline
    assignment.save()

    text = page(client, cast.student, assignment)

    assert "Pixel similarity" in text and "81.25%" in text
    assert "Majority class" in text and "33.33%" in text
    assert "To pass, beat the <strong>Pixel similarity</strong> baseline." in text
    assert text.count("beat this to pass") == 1


def test_the_page_counts_the_submissions_left_today(client, cast, assignment):
    SubmissionFactory(user=cast.student, assignment=assignment)
    SubmissionFactory(user=cast.student, assignment=assignment)
    SubmissionFactory(user=cast.other_student, assignment=assignment)
    SubmissionFactory(  # ours failed: does not count
        user=cast.student,
        assignment=assignment,
        status=RunStatus.FAILED,
        failure_reason="infrastructure",
        message="The grader failed.",
        finished_at=timezone.now(),
        counts_against_limit=False,
    )

    assert "<strong>1 of 3</strong> in the last 24 hours" in page(client, cast.student, assignment)


def test_the_page_links_the_students_best_score_only(client, cast, assignment):
    SubmissionFactory(user=cast.student, assignment=assignment, scored=True, public_score=0.5)
    best = SubmissionFactory(
        user=cast.student, assignment=assignment, scored=True, public_score=0.75
    )
    SubmissionFactory(user=cast.other_student, assignment=assignment, scored=True, public_score=1)

    text = page(client, cast.student, assignment)

    best_url = reverse("submission_detail", args=[best.pk])
    assert f'<strong><a href="{best_url}">75.00%</a></strong>' in text
    assert "100.00%" not in text
    best_block = text.split("data-best-score>")[1].split("</dd>")[0]
    assert "rank" not in best_block.lower() and "#" not in best_block


def test_before_any_score_the_page_says_so(client, cast, assignment):
    SubmissionFactory(user=cast.student, assignment=assignment)  # queued

    assert "nothing scored yet" in page(client, cast.student, assignment)


def test_the_best_score_follows_the_metrics_direction(client, cast):
    rng = np.random.default_rng(0)
    dataset = dataset_create_from_arrays(
        slug="house-prices",
        name="House prices",
        task="regression",
        x_train=rng.random((20, 5)),
        y_train=rng.random(20),
        x_test=rng.random((8, 5)),
        y_test=rng.random(8),
    )
    assignment = AssignmentFactory(
        chapter=ChapterFactory(course=cast.course), dataset=dataset, metric="mse"
    )
    SubmissionFactory(user=cast.student, assignment=assignment, scored=True, public_score=0.4)
    SubmissionFactory(user=cast.student, assignment=assignment, scored=True, public_score=0.1)

    text = page(client, cast.student, assignment)

    assert "<strong>Mean squared error</strong> lower is better" in text
    assert ">0.1</a>" in text
    assert "Classes (" not in text  # regression: no classes
    assert "sample-grid" not in text  # flat feature vectors: no pictures


def test_a_past_due_date_closes_the_assignment(client, cast, assignment):
    assignment.due_at = timezone.now() - timedelta(hours=1)
    assignment.save()

    text = page(client, cast.student, assignment)

    assert "</time></strong>\n          closed" in text
    assert "it no longer accepts submissions" in text
    assert text.count("for grading</button>") == 2
    assert text.count(" disabled>Submit") == 2


def test_an_open_assignment_shows_its_due_date(client, cast, assignment):
    assignment.due_at = timezone.now() + timedelta(days=3)
    assignment.save()

    text = page(client, cast.student, assignment)

    assert "</time></strong>\n          open" in text
    assert " disabled>Submit" not in text


def test_the_recent_submissions_are_listed(client, cast, assignment):
    mine = SubmissionFactory(user=cast.student, assignment=assignment, filename="mine.py")
    theirs = SubmissionFactory(user=cast.other_student, assignment=assignment, filename="theirs.py")

    text = page(client, cast.student, assignment)

    assert reverse("submission_detail", args=[mine.pk]) in text and "mine.py" in text
    assert reverse("submission_detail", args=[theirs.pk]) not in text


@pytest.mark.parametrize("who", ["outsider", "member_of_another_course"])
def test_non_members_cannot_see_the_assignment(client, cast, assignment, who):
    user = cast.outsider
    if who == "member_of_another_course":
        user = UserFactory()
        EnrolmentFactory(user=user)  # a course of its own
    client.force_login(user)

    response = client.get(reverse("assignment_detail", args=[assignment.slug]))

    assert response.status_code == 403
    assert "digits" not in response.content.decode()


def test_anonymous_visitors_are_sent_to_log_in(client, assignment):
    response = client.get(reverse("assignment_detail", args=[assignment.slug]))

    assert response.status_code == 302 and "/login/" in response["Location"]


def test_the_assignment_page_query_count(client, cast, assignment, django_assert_num_queries):
    for score in (0.5, 0.6, 0.7):
        scored_baseline(assignment, f"Baseline {score}", score)
    for score in (0.2, 0.4, 0.6, 0.8):
        SubmissionFactory(user=cast.student, assignment=assignment, scored=True, public_score=score)
    for _ in range(10):
        SubmissionFactory(user=cast.student, assignment=assignment)
    url = reverse("assignment_detail", args=[assignment.slug])
    client.force_login(cast.student)
    client.get(url)  # warms the session and the dataset summary

    # the user, the assignment with its chapter, course, dataset and the membership, the
    # submissions left today, the best submission, the recent ones, the baselines' scores,
    # the forum's thread count ("Discuss this")
    with django_assert_num_queries(7):
        response = client.get(url)
    assert response.status_code == 200


# --- The dataset summary ----------------------------------------------------------------------


def test_the_summary_reads_the_files_once_per_dataset_version(cast, assignment):
    dataset = assignment.dataset
    first = assignment_overview.dataset_summary(dataset=dataset)
    for public in dataset.public_files():
        public.file.storage.delete(public.file.name)

    again = assignment_overview.dataset_summary(dataset=dataset)

    assert again == first
    assert [f.name for f in again.files] == ["train.npz", "test_inputs.npz"]


def test_renaming_a_class_shows_at_once(cast, assignment):
    dataset = assignment.dataset
    assignment_overview.dataset_summary(dataset=dataset)
    dataset.class_names = ["lion", "wolf", "eagle"]

    summary = assignment_overview.dataset_summary(dataset=dataset)

    assert [c.name for c in summary.classes] == ["lion", "wolf", "eagle"]


# --- The sample picture -----------------------------------------------------------------------


def png_pixels(data: bytes) -> np.ndarray:
    """Decode the 8-bit, unfiltered PNGs the grader writes; check every chunk's CRC."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    position, chunks = 8, {}
    while position < len(data):
        (length,) = struct.unpack(">I", data[position : position + 4])
        kind = data[position + 4 : position + 8]
        body = data[position + 8 : position + 8 + length]
        (crc,) = struct.unpack(">I", data[position + 8 + length : position + 12 + length])
        assert zlib.crc32(kind + body) & 0xFFFFFFFF == crc, kind
        chunks[kind] = chunks.get(kind, b"") + body
        position += 12 + length
    assert b"IEND" in chunks
    width, height, depth, colour, *_ = struct.unpack(">IIBBBBB", chunks[b"IHDR"])
    channels = {0: 1, 2: 3}[colour]
    assert depth == 8
    raw = np.frombuffer(zlib.decompress(chunks[b"IDAT"]), dtype=np.uint8)
    rows = raw.reshape(height, 1 + width * channels)
    assert not rows[:, 0].any()  # filter "none" on every row
    return rows[:, 1:].reshape(height, width, channels)


@pytest.fixture
def striped(cast):
    """Training images whose every pixel is their class (0, 1 or 2); the test inputs are 9s."""
    x_train = np.repeat(np.arange(3, dtype=np.uint8), 10)[:, None, None] * np.ones(
        (1, 4, 4), dtype=np.uint8
    )
    dataset = dataset_create_from_arrays(
        slug="striped",
        name="Striped",
        x_train=x_train,
        y_train=np.repeat(np.arange(3), 10),
        x_test=np.full((6, 4, 4), 9, dtype=np.uint8),
        y_test=np.arange(6) % 3,
    )
    return AssignmentFactory(chapter=ChapterFactory(course=cast.course), dataset=dataset)


def samples_url(assignment) -> str:
    return reverse("assignment_samples", args=[assignment.slug])


def test_the_sample_picture_shows_eight_training_images_per_class(client, cast, striped):
    client.force_login(cast.student)

    response = client.get(samples_url(striped))

    assert response.status_code == 200 and response["Content-Type"] == "image/png"
    pixels = png_pixels(response.content)
    cell = CELL_TARGET  # 4x4 images drawn 14 times larger
    assert pixels.shape == (GAP + 3 * (cell + GAP), GAP + PER_CLASS * (cell + GAP), 1)
    for label, expected in enumerate((0, 128, 255)):  # stretched from 0, 1, 2
        top = GAP + label * (cell + GAP)
        row = pixels[top : top + cell, GAP : GAP + PER_CLASS * (cell + GAP), 0]
        images = row.reshape(cell, PER_CLASS, cell + GAP)[:, :, :cell]
        assert (images == expected).all(), label
    assert (pixels[:GAP] == 255).all()  # the background between images


def test_the_sample_picture_is_drawn_from_the_training_split_only(
    client, cast, striped, monkeypatch
):
    loaded = []
    real_load = assignment_overview.dataset_file_load

    def recording_load(*, dataset, part):
        loaded.append(part)
        return real_load(dataset=dataset, part=part)

    monkeypatch.setattr(assignment_overview, "dataset_file_load", recording_load)
    dataset = striped.dataset
    dataset.test_labels_file.storage.delete(dataset.test_labels_file.name)
    client.force_login(cast.student)

    assert client.get(reverse("assignment_detail", args=[striped.slug])).status_code == 200
    assert client.get(samples_url(striped)).status_code == 200
    assert loaded == ["train"]


def test_the_sample_picture_is_cached_and_revalidated_with_its_etag(client, cast, striped):
    client.force_login(cast.student)
    first = client.get(samples_url(striped))
    etag = first["ETag"]
    assert etag.startswith('"') and striped.dataset.train_sha256 in etag
    assert first["Cache-Control"] == "private, max-age=86400"

    # Drawn once: the training file is no longer needed.
    striped.dataset.train_file.storage.delete(striped.dataset.train_file.name)
    again = client.get(samples_url(striped))
    assert again.status_code == 200 and again.content == first.content

    unchanged = client.get(samples_url(striped), HTTP_IF_NONE_MATCH=etag)
    assert unchanged.status_code == 304 and unchanged.content == b""
    assert unchanged["ETag"] == etag
    assert client.get(samples_url(striped), HTTP_IF_NONE_MATCH='"other"').status_code == 200


def test_course_staff_see_the_sample_picture(client, cast, striped):
    client.force_login(cast.ta)

    assert client.get(samples_url(striped)).status_code == 200


@pytest.mark.parametrize("who", ["outsider", "member_of_another_course"])
def test_non_members_cannot_see_the_sample_picture(client, cast, striped, who):
    user = cast.outsider
    if who == "member_of_another_course":
        user = UserFactory()
        EnrolmentFactory(user=user)
    client.force_login(user)

    response = client.get(samples_url(striped))

    assert response.status_code == 403
    assert not response.content.startswith(b"\x89PNG")


def test_there_is_no_picture_of_data_that_is_not_images(client, cast):
    rng = np.random.default_rng(1)
    dataset = dataset_create_from_arrays(
        slug="tabular",
        name="Tabular",
        x_train=rng.random((12, 6)),
        y_train=np.arange(12) % 2,
        x_test=rng.random((4, 6)),
        y_test=np.arange(4) % 2,
    )
    assignment = AssignmentFactory(chapter=ChapterFactory(course=cast.course), dataset=dataset)
    client.force_login(cast.student)

    assert client.get(samples_url(assignment)).status_code == 404
    assert client.get("/assignments/no-such-assignment/samples.png").status_code == 404


def test_the_page_labels_each_row_of_the_picture(client, cast, assignment):
    text = page(client, cast.student, assignment)

    assert f'href="{samples_url(assignment)}?v={assignment.dataset.train_sha256[:12]}"' in text
    labels = [f'dominant-baseline="middle">{name}</text>' for name in ("cat", "dog", "bird")]
    positions = [text.index(label) for label in labels]
    assert positions == sorted(positions)


@pytest.mark.parametrize(
    ("shape", "expected"),
    [
        ((28, 28), ImageLayout(28, 28, 1, channels_first=False)),
        ((32, 32, 3), ImageLayout(32, 32, 3, channels_first=False)),
        ((32, 32, 4), ImageLayout(32, 32, 3, channels_first=False)),  # alpha dropped
        ((3, 32, 32), ImageLayout(32, 32, 3, channels_first=True)),
        ((1, 28, 28), ImageLayout(28, 28, 1, channels_first=True)),
        ((64,), None),  # a feature vector
        ((10, 1), None),
        ((5, 6, 7), None),
    ],
)
def test_which_inputs_are_drawn_as_pictures(shape, expected):
    assert image_layout(shape) == expected


def test_colour_images_stored_channels_first_are_drawn_in_colour():
    red = np.zeros((3, 40, 40), dtype=np.float32)
    red[0] = 1.0  # channels first, floats between 0 and 1
    layout = image_layout(red.shape)

    pixels = png_pixels(png_bytes(sample_grid(red[None], [[0]], layout)))

    assert pixels.shape[2] == 3
    assert tuple(pixels[GAP + 1, GAP + 1]) == (255, 0, 0)
    assert tuple(pixels[0, 0]) == (255, 255, 255)
