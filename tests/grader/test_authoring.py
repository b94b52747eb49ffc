"""Instructors author further-research assignments in the browser: drafts, the editor, publishing,
datasets uploaded with a report of what was found, baselines run through the real pipeline."""

from __future__ import annotations

import hashlib
import io
import json
import os

import numpy as np
import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.urls import reverse
from lxml import html as lxml_html

from grader import authoring, submissions
from grader.datasets import DatasetInvalid
from grader.models import Assignment, BaselineRun, Dataset
from tests.factories import ChapterFactory, CourseFactory, EnrolmentFactory, UserFactory
from tests.grader.factories import (
    AssignmentFactory,
    BaselineFactory,
    DatasetFactory,
    small_arrays,
)
from tests.processes import celery_worker_args, running, wait_for
from topdown import charts

pytestmark = pytest.mark.django_db

# The factories' test split has 12 rows labelled 0, 1, 2, 0, 1, 2, ...
PERFECT = "import numpy as np, topdown_task as tt\ntt.save_predictions(np.arange(12) % 3)\n"
ALL_ZERO = "import numpy as np, topdown_task as tt\ntt.save_predictions(np.zeros(12, int))\n"
CRASHES = "raise RuntimeError('no model today')\n"


@pytest.fixture
def chapter(cast):
    return cast.questionnaire.chapter


@pytest.fixture
def dataset(cast):
    return DatasetFactory(slug="digits-small", name="Small digits", created_by=None)


@pytest.fixture
def assignment(chapter, dataset):
    return AssignmentFactory(
        chapter=chapter, slug="digits", dataset=dataset, wall_seconds=20, memory_mb=512
    )


@pytest.fixture
def draft(chapter):
    return authoring.assignment_create(chapter=chapter, title="Why is a GPU useful?")


@pytest.fixture
def eager_celery():
    """Tasks run in this process when enqueued, through Celery's real task path."""
    from topdown.celery import app

    before = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield app
    app.conf.task_always_eager = before


def npz(arrays: dict[str, np.ndarray]) -> bytes:
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    return buffer.getvalue()


def upload(data: bytes, name: str = "data.npz") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type="application/octet-stream")


def page(response) -> lxml_html.HtmlElement:
    return lxml_html.fromstring(response.content.decode())


def editor_data(assignment: Assignment, **changes) -> dict[str, object]:
    data = {
        "title": assignment.title,
        "slug": assignment.slug,
        "description": assignment.description,
        "dataset": assignment.dataset_id or "",
        "metric": assignment.metric,
        "public_fraction": assignment.public_fraction,
        "wall_seconds": assignment.wall_seconds,
        "memory_mb": assignment.memory_mb,
        "submissions_per_day": assignment.submissions_per_day,
        "gpu_seconds_per_day": assignment.gpu_seconds_per_day,
        "pass_rule": assignment.pass_rule,
        "pass_baseline": assignment.pass_baseline_id or "",
        "pass_threshold": "" if assignment.pass_threshold is None else assignment.pass_threshold,
        "due_at": "",
        "starter_code": assignment.starter_code,
    }
    if assignment.needs_gpu:
        data["needs_gpu"] = "on"
    data.update(changes)
    return data


def messages_of(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]


# --- Services -----------------------------------------------------------------------------------


class TestAssignmentServices:
    def test_a_new_assignment_is_a_draft_at_the_end_of_its_chapter(self, chapter, assignment):
        created = authoring.assignment_create(chapter=chapter, title="Try a bigger model")
        assert not created.published and created.dataset is None
        assert created.slug == "try-a-bigger-model" and created.uid == created.slug
        assert created.position > assignment.position

    def test_a_taken_slug_gets_a_number(self, chapter, assignment):
        created = authoring.assignment_create(chapter=chapter, title="Digits")
        assert created.slug == "digits-2"

    def test_an_explicit_slug_that_is_taken_is_refused(self, chapter, assignment):
        with pytest.raises(ValidationError) as error:
            authoring.assignment_create(chapter=chapter, title="Again", slug="digits")
        assert "slug" in error.value.message_dict

    def test_a_metric_that_does_not_suit_the_dataset_is_refused(self, assignment):
        with pytest.raises(ValidationError) as error:
            authoring.assignment_update(assignment=assignment, changes={"metric": "mse"})
        assert "does not suit" in error.value.message_dict["metric"][0]
        assignment.refresh_from_db()
        assert assignment.metric == "accuracy"

    def test_a_published_assignment_cannot_lose_its_dataset(self, assignment):
        with pytest.raises(ValidationError) as error:
            authoring.assignment_update(assignment=assignment, changes={"dataset": None})
        assert "Choose a dataset before publishing" in str(error.value)

    def test_changing_the_pass_rule_clears_what_the_old_rule_needed(self, assignment):
        authoring.assignment_update(
            assignment=assignment, changes={"pass_rule": "threshold", "pass_threshold": 0.8}
        )
        authoring.assignment_update(assignment=assignment, changes={"pass_rule": "none"})
        assignment.refresh_from_db()
        assert assignment.pass_rule == "none" and assignment.pass_threshold is None

    def test_publishing_a_draft_without_a_dataset_is_refused(self, draft):
        with pytest.raises(ValidationError) as error:
            authoring.assignment_publish(assignment=draft, published=True)
        assert error.value.messages == ["Choose a dataset before publishing this assignment."]
        draft.refresh_from_db()
        assert not draft.published

    def test_publishing_with_an_unscored_pass_baseline_is_refused_until_it_is_scored(
        self, draft, dataset
    ):
        baseline = authoring.baseline_create(assignment=draft, name="Oracle", code=PERFECT)
        authoring.assignment_update(
            assignment=draft,
            changes={
                "dataset": dataset,
                "wall_seconds": 20,
                "memory_mb": 512,
                "pass_rule": "beat_baseline",
                "pass_baseline": baseline,
            },
        )
        with pytest.raises(ValidationError) as error:
            authoring.assignment_publish(assignment=draft, published=True)
        assert "Oracle, which has no score on this dataset yet" in error.value.messages[0]

        submissions.baselines_run_missing(assignment=draft, now=True)
        authoring.assignment_publish(assignment=draft, published=True)
        draft.refresh_from_db()
        assert draft.published

    def test_unpublishing_keeps_the_submissions(self, assignment, student):
        submission = submissions.submission_create(
            user=student, assignment=assignment, filename="main.py", content=PERFECT.encode()
        )
        authoring.assignment_publish(assignment=assignment, published=False)
        assignment.refresh_from_db()
        assert not assignment.published
        assert assignment.submissions.filter(pk=submission.pk).exists()


class TestBaselineServices:
    def test_the_pass_baseline_cannot_be_deleted(self, assignment):
        baseline = BaselineFactory(assignment=assignment, name="Majority", code=ALL_ZERO)
        authoring.assignment_update(
            assignment=assignment,
            changes={"pass_rule": "beat_baseline", "pass_baseline": baseline},
        )
        with pytest.raises(ValidationError) as error:
            authoring.baseline_delete(baseline=baseline)
        assert "change the pass rule first" in error.value.messages[0]
        assert assignment.baselines.filter(pk=baseline.pk).exists()

    def test_deleting_a_baseline_takes_its_runs(self, assignment):
        baseline = BaselineFactory(assignment=assignment, code=ALL_ZERO)
        submissions.baselines_run_missing(assignment=assignment, now=True)
        authoring.baseline_delete(baseline=baseline)
        assert not BaselineRun.objects.filter(baseline_id=baseline.pk).exists()

    def test_empty_code_and_a_duplicate_name_are_refused(self, assignment):
        BaselineFactory(assignment=assignment, name="Majority")
        with pytest.raises(ValidationError) as error:
            authoring.baseline_create(assignment=assignment, name="Majority", code="  \n")
        assert "empty" in error.value.message_dict["code"][0]
        assert "__all__" in error.value.message_dict  # the name is taken

    def test_running_baselines_needs_a_dataset(self, draft):
        authoring.baseline_create(assignment=draft, name="Oracle", code=PERFECT)
        with pytest.raises(ValidationError, match="Choose a dataset first"):
            authoring.baselines_run(assignment=draft)


class TestDatasetServices:
    def register(self, cast, data: bytes, slug: str = "mine", **kw):
        return authoring.dataset_register_upload(
            course=cast.course,
            user=cast.instructor,
            file=io.BytesIO(data),
            slug=slug,
            name=kw.pop("name", "Mine"),
            task=kw.pop("task", "classification"),
            **kw,
        )

    def test_a_new_upload_then_the_same_data_then_new_data(self, cast):
        first = self.register(cast, npz(small_arrays()))
        assert first.created and first.previous is None and first.dataset.version == 1
        assert first.dataset.created_by == cast.instructor
        assert "new dataset (version 1)" in first.outcome

        again = self.register(cast, npz(small_arrays()), name="Mine, renamed")
        assert not again.created and again.dataset.pk == first.dataset.pk
        assert "exactly the data of Mine, renamed version 1" in again.outcome

        changed = self.register(cast, npz(small_arrays(seed=5)))
        assert changed.created and changed.dataset.version == 2
        assert changed.previous.pk == first.dataset.pk
        assert "the data differ from version 1" in changed.outcome

    def test_the_report_lists_every_file_with_its_arrays_and_the_class_counts(self, cast):
        outcome = self.register(cast, npz(small_arrays(n_train=30, n_valid=6)))
        report = outcome.report
        files = {file.name: file for file in report.files}
        assert set(files) == {"train.npz", "valid.npz", "test_inputs.npz", "test_labels.npz"}
        assert files["test_labels.npz"].hidden and not files["train.npz"].hidden
        assert ("x", (30, 4, 4), "uint8") in files["train.npz"].arrays
        assert ("y", (12,), "int64") in files["test_labels.npz"].arrays
        assert files["train.npz"].sha256 == outcome.dataset.train_sha256
        assert [c.train_count for c in report.summary.classes] == [10, 10, 10]
        assert "<svg" in report.class_chart and report.sample_grid is not None

    def test_an_invalid_file_stores_nothing(self, cast, settings):
        arrays = small_arrays()
        del arrays["y_test"]
        with pytest.raises(DatasetInvalid, match="missing arrays: y_test"):
            self.register(cast, npz(arrays))
        assert not Dataset.objects.exists()
        media = settings.MEDIA_ROOT
        assert not media.exists() or not any(p.is_file() for p in media.rglob("*"))

    def test_another_courses_slug_or_a_built_in_one_is_refused(self, cast, dataset):
        other_course = CourseFactory()
        other = UserFactory()
        EnrolmentFactory(user=other, course=other_course, role="instructor")
        DatasetFactory(slug="theirs", created_by=other)
        for slug in ("theirs", dataset.slug):
            with pytest.raises(ValidationError) as error:
                self.register(cast, npz(small_arrays()), slug=slug)
            assert "is taken by another dataset" in error.value.message_dict["slug"][0]

    def test_a_course_sees_built_in_datasets_and_its_instructors_ones(self, cast, dataset):
        mine = DatasetFactory(created_by=cast.instructor)
        by_ta = DatasetFactory(created_by=cast.ta)
        stranger = DatasetFactory(created_by=UserFactory())
        visible = set(authoring.datasets_for_course(course=cast.course))
        assert {dataset, mine} <= visible
        assert by_ta not in visible and stranger not in visible


# --- The pages ----------------------------------------------------------------------------------


class TestEditor:
    def test_new_assignment_from_the_chapter_page(self, cast, chapter, client_for):
        client = client_for(cast.instructor)
        chapter_page = client.get(reverse("chapter_detail", args=[cast.course.slug, chapter.slug]))
        create_url = reverse("assignment_create", args=[cast.course.slug, chapter.slug])
        assert page(chapter_page).xpath(f'//a[@href="{create_url}"]')

        response = client.post(
            create_url, {"title": "Why is a GPU useful?", "description": "*Why*"}
        )

        created = Assignment.objects.get(slug="why-is-a-gpu-useful")
        assert response.url == reverse("assignment_edit", args=[created.slug])
        assert not created.published and created.chapter == chapter
        assert created.description == "*Why*"

    def test_the_editor_shows_every_setting_with_a_live_preview_and_a_code_editor(
        self, cast, assignment, client_for
    ):
        response = client_for(cast.instructor).get(reverse("assignment_edit", args=["digits"]))
        doc = page(response)
        for name in editor_data(assignment):
            assert doc.xpath(f'//*[@name="{name}"]'), name
        assert doc.xpath('//textarea[@name="description"][@data-markdown-preview]')
        assert doc.xpath('//textarea[@name="starter_code"][@data-code-editor]')
        assert doc.xpath('//input[@name="due_at"][@type="datetime-local"]')
        assert not doc.xpath("//script[not(@src)]") and not doc.xpath("//*[@style]")

    def test_saving_changes_limits_metric_pass_rule_and_due_date(
        self, cast, assignment, client_for
    ):
        data = editor_data(
            assignment,
            title="Digits, harder",
            wall_seconds=60,
            memory_mb=1024,
            submissions_per_day=0,
            needs_gpu="on",
            gpu_seconds_per_day=900,
            metric="macro_f1",
            pass_rule="threshold",
            pass_threshold="0.75",
            due_at="2030-05-01T12:30",
            public_fraction="0.3",
            starter_code="import numpy as np\r\n",
        )
        response = client_for(cast.instructor).post(
            reverse("assignment_edit", args=["digits"]), data
        )
        assert response.status_code == 302
        assignment.refresh_from_db()
        assert assignment.title == "Digits, harder" and assignment.wall_seconds == 60
        assert assignment.needs_gpu and assignment.submissions_per_day == 0
        assert assignment.gpu_seconds_per_day == 900
        assert assignment.metric == "macro_f1" and assignment.pass_threshold == 0.75
        assert assignment.due_at.isoformat().startswith("2030-05-01T12:30")
        assert assignment.public_fraction == 0.3
        assert assignment.starter_code == "import numpy as np\n"

    def test_a_regression_metric_on_a_classification_dataset_is_shown_on_the_field(
        self, cast, assignment, client_for
    ):
        response = client_for(cast.instructor).post(
            reverse("assignment_edit", args=["digits"]), editor_data(assignment, metric="rmse")
        )
        assert response.status_code == 200
        assert "does not suit Small digits" in response.context["form"].errors["metric"][0]

    def test_another_courses_dataset_cannot_be_chosen(self, cast, assignment, client_for):
        theirs = DatasetFactory(created_by=UserFactory())
        response = client_for(cast.instructor).post(
            reverse("assignment_edit", args=["digits"]), editor_data(assignment, dataset=theirs.pk)
        )
        assert "dataset" in response.context["form"].errors
        assignment.refresh_from_db()
        assert assignment.dataset_id != theirs.pk

    def test_beat_a_baseline_needs_one(self, cast, draft, client_for):
        response = client_for(cast.instructor).post(
            reverse("assignment_edit", args=[draft.slug]),
            editor_data(draft, pass_rule="beat_baseline"),
        )
        assert "Choose the baseline" in response.context["form"].errors["pass_baseline"][0]

    def test_publish_is_refused_with_the_reason_then_works(self, cast, draft, dataset, client_for):
        client = client_for(cast.instructor)
        publish_url = reverse("assignment_publish", args=[draft.slug])
        editor = client.get(reverse("assignment_edit", args=[draft.slug]))
        assert "Choose a dataset before publishing" in editor.content.decode()

        refused = client.post(publish_url, {"published": "1"}, follow=True)
        assert "Not published: Choose a dataset before publishing this assignment." in (
            messages_of(refused)
        )

        authoring.assignment_update(assignment=draft, changes={"dataset": dataset})
        published = client.post(publish_url, {"published": "1"}, follow=True)
        draft.refresh_from_db()
        assert draft.published
        assert any("Published" in message for message in messages_of(published))

        client.post(publish_url, {"published": "0"})
        draft.refresh_from_db()
        assert not draft.published

    def test_the_assignment_page_links_to_the_editor_for_instructors_only(
        self, cast, assignment, client_for, client
    ):
        edit_url = reverse("assignment_edit", args=["digits"])
        for user, sees in ((cast.instructor, True), (cast.ta, False), (cast.student, False)):
            client.force_login(user)
            doc = page(client.get(reverse("assignment_detail", args=["digits"])))
            assert bool(doc.xpath(f'//a[@href="{edit_url}"]')) is sees


class TestDatasetPages:
    def post_upload(self, client, cast, data: bytes, name="data.npz", **fields):
        form = {
            "slug": "shapes",
            "name": "Shapes",
            "task": "classification",
            "class_names": "circle\nsquare\ntriangle",
            "file": upload(data, name),
            **fields,
        }
        return client.post(reverse("dataset_upload", args=[cast.course.slug]), form, follow=True)

    def test_an_upload_shows_what_was_found(self, cast, client_for):
        client = client_for(cast.instructor)
        data = npz(small_arrays(n_train=30, n_valid=6))

        response = self.post_upload(client, cast, data)

        dataset = Dataset.objects.get(slug="shapes")
        assert response.redirect_chain[-1][0] == reverse(
            "dataset_detail", args=[cast.course.slug, dataset.pk]
        )
        text = response.content.decode()
        assert "Registered Shapes as a new dataset (version 1)" in text
        assert f"sha256 {hashlib.sha256(data).hexdigest()}" in text
        doc = page(response)
        files = " ".join(doc.xpath('//table[@class="dataset-files"]//text()'))
        for expected in ("train.npz", "valid.npz", "test_labels.npz", "(30, 4, 4)", "uint8"):
            assert expected in files
        assert dataset.test_labels_sha256 in files
        classes = [" ".join(row.itertext()) for row in doc.xpath("//details//tbody/tr")]
        assert [" ".join(c.split()) for c in classes] == [
            "0 circle 10",
            "1 square 10",
            "2 triangle 10",
        ]
        assert doc.xpath('//svg[contains(@class, "chart")]')
        image = doc.xpath('//img[@class="dataset-samples"]/@src')[0]
        png = client.get(image)
        assert png["Content-Type"] == "image/png" and png.content.startswith(b"\x89PNG")

    def test_an_upload_from_the_editor_leads_back_to_it_but_never_off_site(
        self, cast, assignment, client_for
    ):
        client = client_for(cast.instructor)
        editor = reverse("assignment_edit", args=["digits"])
        response = self.post_upload(client, cast, npz(small_arrays()), next=editor)
        assert page(response).xpath(f'//a[@href="{editor}"]')
        response = self.post_upload(
            client, cast, npz(small_arrays(seed=3)), next="https://evil.example/"
        )
        assert "evil.example" not in response.content.decode()

    def test_uploading_the_same_data_again_says_so(self, cast, client_for):
        client = client_for(cast.instructor)
        data = npz(small_arrays())
        self.post_upload(client, cast, data)
        response = self.post_upload(client, cast, data)
        assert "holds exactly the data of Shapes version 1" in response.content.decode()
        assert Dataset.objects.filter(slug="shapes").count() == 1

    @pytest.mark.parametrize(
        ("arrays", "expected"),
        [
            ({"x_train", "y_train", "x_test"}, "cannot be used: missing arrays: y_test."),
            (
                {"x_train", "y_train", "x_test", "y_test", "x_valid"},
                "x_valid and y_valid must be given together",
            ),
        ],
    )
    def test_an_invalid_file_is_refused_inline_and_nothing_is_saved(
        self, cast, client_for, arrays, expected
    ):
        full = small_arrays(n_valid=6)
        response = self.post_upload(
            client_for(cast.instructor), cast, npz({k: v for k, v in full.items() if k in arrays})
        )
        assert response.status_code == 200
        errors = response.context["form"].errors["file"]
        assert any(expected in error for error in errors), errors
        assert not Dataset.objects.exists()

    def test_mismatched_lengths_are_named(self, cast, client_for):
        arrays = small_arrays()
        arrays["y_train"] = arrays["y_train"][:-1]
        response = self.post_upload(client_for(cast.instructor), cast, npz(arrays))
        assert any(
            "x_train has 30 rows but y_train has 29" in error
            for error in response.context["form"].errors["file"]
        )

    def test_a_file_over_the_size_limit_gets_a_clear_error(self, cast, client_for, settings):
        settings.GRADER_DATASET_MAX_BYTES = 1000
        response = self.post_upload(client_for(cast.instructor), cast, npz(small_arrays()) * 2)
        assert response.status_code == 200
        error = response.context["form"].errors["file"][0]
        assert "the limit is 1000\xa0bytes" in error
        assert not Dataset.objects.exists()

    def test_a_file_that_is_not_npz_is_refused(self, cast, client_for):
        response = self.post_upload(client_for(cast.instructor), cast, b"a,b\n1,2\n", "data.csv")
        assert "Upload an .npz archive" in response.context["form"].errors["file"][0]

    def test_the_datasets_page_lists_built_in_and_the_courses_own(self, cast, dataset, client_for):
        DatasetFactory(name="Not ours", created_by=UserFactory())
        text = (
            client_for(cast.instructor)
            .get(reverse("course_datasets", args=[cast.course.slug]))
            .content.decode()
        )
        assert "Small digits" in text and "Not ours" not in text


class TestBaselinePages:
    def test_add_a_baseline_typed_in_the_editor_or_uploaded(self, cast, assignment, client_for):
        client = client_for(cast.instructor)
        url = reverse("baseline_create", args=["digits"])
        client.post(url, {"name": "Majority", "description": "Always 0.", "code": ALL_ZERO})
        client.post(
            url,
            {"name": "Oracle", "code": "", "code_file": upload(PERFECT.encode(), "oracle.py")},
        )
        baselines = {b.name: b for b in assignment.baselines.all()}
        assert baselines["Majority"].code == ALL_ZERO
        assert baselines["Majority"].filename == "baseline.py"
        assert baselines["Oracle"].code == PERFECT and baselines["Oracle"].filename == "oracle.py"

    def test_a_baseline_without_code_is_refused_on_the_form(self, cast, assignment, client_for):
        response = client_for(cast.instructor).post(
            reverse("baseline_create", args=["digits"]), {"name": "Nothing", "code": ""}
        )
        assert "Write the baseline's code" in response.context["form"].errors["code"][0]

    def test_edit_and_delete(self, cast, assignment, client_for):
        client = client_for(cast.instructor)
        baseline = BaselineFactory(assignment=assignment, name="Majority", code=ALL_ZERO)
        client.post(
            reverse("baseline_edit", args=["digits", baseline.pk]),
            {"name": "Oracle", "description": "", "code": PERFECT},
        )
        baseline.refresh_from_db()
        assert baseline.name == "Oracle" and baseline.code == PERFECT
        client.post(reverse("baseline_delete", args=["digits", baseline.pk]))
        assert not assignment.baselines.exists()

    def test_deleting_the_pass_baseline_is_refused_with_the_reason(
        self, cast, assignment, client_for
    ):
        baseline = BaselineFactory(assignment=assignment, name="Majority", code=ALL_ZERO)
        Assignment.objects.filter(pk=assignment.pk).update(
            pass_rule="beat_baseline", pass_baseline=baseline
        )
        response = client_for(cast.instructor).post(
            reverse("baseline_delete", args=["digits", baseline.pk]), follow=True
        )
        assert any("change the pass rule first" in m for m in messages_of(response))
        assert assignment.baselines.exists()

    def test_run_baselines_and_watch_them_queue_then_score_or_fail(
        self, cast, assignment, client_for, django_capture_on_commit_callbacks, eager_celery
    ):
        client = client_for(cast.instructor)
        BaselineFactory(assignment=assignment, name="Oracle", code=PERFECT)
        BaselineFactory(assignment=assignment, name="Broken", code=CRASHES)
        status_url = reverse("assignment_baselines_status", args=["digits"])

        def statuses() -> dict[str, dict]:
            data = json.loads(client.get(status_url).content)
            return {row["name"]: row for row in data["baselines"]} | {"": data}

        assert statuses()["Oracle"]["status"] == "not_run"
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            client.post(reverse("assignment_baselines_run", args=["digits"]), {"scope": "missing"})
        before = statuses()
        assert before["Oracle"]["status"] == "queued" and before[""]["active"]
        assert 'data-status="queued"' in before["Oracle"]["html"]
        editor = client.get(reverse("assignment_edit", args=["digits"]))
        assert page(editor).xpath("//section[@data-baseline-status-url][@data-active]")

        for callback in callbacks:  # the commit happens: each run goes through Celery
            callback()

        after = statuses()
        assert not after[""]["active"]
        assert after["Oracle"]["status"] == "scored" and after["Oracle"]["score"] == 1.0
        assert "100.00%" in after["Oracle"]["html"]
        assert after["Broken"]["status"] == "failed"
        assert after["Broken"]["failure_reason"] == "crashed"
        assert "no model today" in after["Broken"]["html"]
        log = client.get(reverse("baseline_run_detail", args=["digits", after["Broken"]["run_id"]]))
        assert "RuntimeError: no model today" in log.content.decode()

        # Nothing is missing now; "Rerun all" queues both again.
        with django_capture_on_commit_callbacks(execute=False):
            again = client.post(
                reverse("assignment_baselines_run", args=["digits"]),
                {"scope": "missing"},
                follow=True,
            )
        assert any("already run on this dataset" in m for m in messages_of(again))
        with django_capture_on_commit_callbacks(execute=False):
            client.post(reverse("assignment_baselines_run", args=["digits"]), {"scope": "all"})
        assert {row["status"] for name, row in statuses().items() if name} == {"queued"}

    def test_status_endpoint_costs_the_same_for_many_baselines(
        self, cast, assignment, client_for, django_assert_num_queries
    ):
        client = client_for(cast.instructor)
        url = reverse("assignment_baselines_status", args=["digits"])
        BaselineFactory(assignment=assignment)
        client.get(url)  # warm the session
        with django_assert_num_queries(4) as one:
            client.get(url)
        for _ in range(5):
            BaselineFactory(assignment=assignment)
        with django_assert_num_queries(len(one.captured_queries)):
            client.get(url)

    def test_the_editor_costs_the_same_for_many_baselines(
        self, cast, assignment, client_for, django_assert_num_queries, django_assert_max_num_queries
    ):
        client = client_for(cast.instructor)
        url = reverse("assignment_edit", args=["digits"])
        BaselineFactory(assignment=assignment)
        client.get(url)
        with django_assert_max_num_queries(12) as one:
            client.get(url)
        for _ in range(5):
            BaselineFactory(assignment=assignment)
        with django_assert_num_queries(len(one.captured_queries)):
            client.get(url)


def test_the_class_chart_escapes_labels_and_refuses_mismatched_input():
    svg = charts.bar_chart([3, 5], labels=["<cat>", "dog"], x_label="class")
    assert "&lt;cat&gt;" in svg and "<cat>" not in svg and svg.count("<rect") == 2
    assert charts.bar_chart([1, 2], labels=["one"], x_label="class") == ""
    assert charts.bar_chart([], labels=[], x_label="class") == ""


class TestDrafts:
    def test_a_draft_is_hidden_from_students(self, cast, chapter, draft, client_for):
        client = client_for(cast.student)
        assert client.get(reverse("assignment_detail", args=[draft.slug])).status_code == 404
        chapter_page = client.get(reverse("chapter_detail", args=[cast.course.slug, chapter.slug]))
        assert draft.title not in chapter_page.content.decode()

    def test_a_draft_with_a_dataset_refuses_submissions(self, cast, draft, dataset):
        Assignment.objects.filter(pk=draft.pk).update(dataset=dataset)
        draft.refresh_from_db()
        with pytest.raises(submissions.SubmissionRefused, match="draft"):
            submissions.submission_create(
                user=cast.student, assignment=draft, filename="main.py", content=PERFECT.encode()
            )

    def test_staff_see_a_draft_listed_and_its_page(self, cast, chapter, draft, client_for):
        for user in (cast.instructor, cast.ta):
            client = client_for(user)
            chapter_page = client.get(
                reverse("chapter_detail", args=[cast.course.slug, chapter.slug])
            )
            assert draft.title in chapter_page.content.decode()
            response = client.get(reverse("assignment_detail", args=[draft.slug]))
            assert response.status_code == 200 and "Draft" in response.content.decode()

    def test_pages_that_need_a_dataset_are_404_for_a_draft_without_one(
        self, cast, draft, client_for
    ):
        client = client_for(cast.instructor)
        for name in ("assignment_leaderboard", "assignment_history", "assignment_samples"):
            assert client.get(reverse(name, args=[draft.slug])).status_code == 404, name

    def test_a_published_assignment_in_a_draft_chapter_stays_hidden(
        self, cast, assignment, client_for
    ):
        chapter = ChapterFactory(course=cast.course, published=False)
        Assignment.objects.filter(pk=assignment.pk).update(chapter=chapter)
        client = client_for(cast.student)
        assert client.get(reverse("assignment_detail", args=["digits"])).status_code == 404


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_scores_the_baselines_the_editor_queued(cast, client_for, settings, tmp_path):
    assignment = AssignmentFactory(
        chapter=cast.questionnaire.chapter, slug="digits", wall_seconds=30, memory_mb=512
    )
    BaselineFactory(assignment=assignment, name="Oracle", code=PERFECT)
    db = connection.settings_dict
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
    }
    client = client_for(cast.instructor)
    status_url = reverse("assignment_baselines_status", args=["digits"])

    def oracle() -> dict:
        return json.loads(client.get(status_url).content)["baselines"][0]

    args = [*celery_worker_args("authoring@%h"), "--queues=default,cpu,gpu"]
    with running(args, env=env, log=tmp_path / "worker.log"):
        client.post(reverse("assignment_baselines_run", args=["digits"]), {"scope": "missing"})
        assert oracle()["status"] in ("queued", "running")
        wait_for(lambda: oracle()["status"] == "scored", timeout=90, what="the baseline's score")
    assert oracle()["score"] == 1.0
