"""Forms of the instructors' assignment editor, baselines and dataset upload.

They normalise input; the rules live in ``grader.authoring`` (whose ``ValidationError``s the views
put back on these forms).
"""

from __future__ import annotations

from pathlib import PurePath
from typing import Any

from django import forms
from django.conf import settings
from django.db.models import QuerySet
from django.template.defaultfilters import filesizeformat

from grader.datasets import CLASSIFICATION, DEFAULT_MAX_BYTES, REGRESSION
from grader.metrics import METRICS
from grader.models import Assignment, Baseline, Dataset
from grader.pipeline import MAX_CODE_BYTES

CODE_WIDGET_ATTRS = {
    "rows": 18,
    "spellcheck": "false",
    "autocapitalize": "off",
    "autocomplete": "off",
    "data-code-editor": "",
    "class": "code-input",
}
DESCRIPTION_PREVIEW_ID = "description-preview"


def dataset_upload_max_bytes() -> int:
    """The largest ``.npz`` an instructor may upload (``GRADER_DATASET_MAX_BYTES``, 200 MB)."""
    return int(getattr(settings, "GRADER_DATASET_MAX_BYTES", DEFAULT_MAX_BYTES))


def _metric_choices() -> list[tuple[str, list[tuple[str, str]]]]:
    groups: dict[str, list[tuple[str, str]]] = {"Classification": [], "Regression": []}
    for name, metric in METRICS.items():
        groups["Classification" if metric.classification else "Regression"].append(
            (name, metric.label)
        )
    return [(f"{group} datasets", choices) for group, choices in groups.items()]


def _description_field(label: str) -> forms.CharField:
    return forms.CharField(
        label=label,
        required=False,
        strip=False,
        help_text="Markdown, with $maths$. The preview below shows it as students will see it.",
        widget=forms.Textarea(attrs={"rows": 10, "data-markdown-preview": DESCRIPTION_PREVIEW_ID}),
    )


class DatasetChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: Dataset) -> str:
        kind = obj.get_task_display().lower()
        classes = f", {obj.n_classes} classes" if obj.n_classes else ""
        return f"{obj.name} v{obj.version} ({obj.slug}: {kind}{classes}, {obj.n_train} training)"


class AssignmentCreateForm(forms.Form):
    title = forms.CharField(max_length=200)
    slug = forms.SlugField(
        max_length=80,
        required=False,
        help_text="The assignment's address; left empty, it is made from the title.",
    )
    description = _description_field("Description")


class AssignmentForm(forms.Form):
    """Everything the editor changes. ``changes()`` is what ``assignment_update`` takes."""

    title = forms.CharField(max_length=200)
    slug = forms.SlugField(
        max_length=80, help_text="The assignment's address. Links to the old one stop working."
    )
    description = _description_field("Description")
    dataset = DatasetChoiceField(
        queryset=Dataset.objects.none(),
        required=False,
        empty_label="No dataset yet (a draft)",
        help_text="The data submissions run on. Upload a new one from the datasets page.",
    )
    metric = forms.ChoiceField(
        choices=_metric_choices(), help_text="It must suit the dataset's task."
    )
    public_fraction = forms.FloatField(
        label="Public share of the test set",
        min_value=0.01,
        max_value=0.99,
        help_text="Scored on the public leaderboard while the assignment is open; the rest "
        "decides the final ranking after the due date.",
        widget=forms.NumberInput(attrs={"step": "0.01"}),
    )
    wall_seconds = forms.IntegerField(
        label="Time limit (seconds)", min_value=1, max_value=24 * 3600
    )
    memory_mb = forms.IntegerField(label="Memory limit (MB)", min_value=64, max_value=512 * 1024)
    needs_gpu = forms.BooleanField(label="Runs on a GPU", required=False)
    submissions_per_day = forms.IntegerField(
        label="Submissions per day",
        min_value=0,
        max_value=1000,
        help_text="Per student, over any 24 hours; 0 means unlimited.",
    )
    gpu_seconds_per_day = forms.IntegerField(
        label="GPU-seconds per day",
        min_value=0,
        max_value=7 * 24 * 3600,
        help_text="GPU assignments: each student's GPU time over any 24 hours; 0 means "
        "unlimited. A run never gets more wall time than its student has left.",
    )
    pass_rule = forms.ChoiceField(choices=Assignment.PassRule.choices)
    pass_baseline = forms.ModelChoiceField(
        queryset=Baseline.objects.none(),
        required=False,
        label="Baseline to beat",
        help_text="For “Beat a baseline”.",
    )
    pass_threshold = forms.FloatField(
        required=False,
        label="Threshold",
        help_text="For “Reach a threshold”: the score to reach, in the metric's units "
        "(accuracy 0.9, not 90%).",
    )
    due_at = forms.DateTimeField(
        required=False,
        label="Due",
        help_text="Empty: no due date. After it, no submissions and the private split is shown.",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )
    starter_code = forms.CharField(
        required=False,
        strip=False,
        label="Starter code",
        help_text="What the students' editor starts with.",
        widget=forms.Textarea(attrs=CODE_WIDGET_ATTRS),
    )

    def __init__(
        self,
        *args: Any,
        assignment: Assignment,
        datasets: QuerySet[Dataset],
        **kwargs: Any,
    ) -> None:
        initial = {
            field: getattr(assignment, field)
            for field in (
                "title",
                "slug",
                "description",
                "metric",
                "public_fraction",
                "wall_seconds",
                "memory_mb",
                "needs_gpu",
                "submissions_per_day",
                "gpu_seconds_per_day",
                "pass_rule",
                "pass_threshold",
                "due_at",
                "starter_code",
            )
        }
        initial["dataset"] = assignment.dataset_id
        initial["pass_baseline"] = assignment.pass_baseline_id
        kwargs["initial"] = initial
        super().__init__(*args, **kwargs)
        # The assignment's own dataset stays choosable even if its owner left the course.
        dataset_field = self.fields["dataset"]
        assert isinstance(dataset_field, forms.ModelChoiceField)
        dataset_field.queryset = datasets | Dataset.objects.filter(
            pk__in=[assignment.dataset_id] if assignment.dataset_id else []
        )
        baseline_field = self.fields["pass_baseline"]
        assert isinstance(baseline_field, forms.ModelChoiceField)
        baseline_field.queryset = Baseline.objects.filter(assignment=assignment).order_by("name")
        if not assignment.pk or not baseline_field.queryset.exists():
            baseline_field.help_text = "Add a baseline below first."

    def clean_description(self) -> str:
        return self.cleaned_data["description"].replace("\r\n", "\n")

    def clean_starter_code(self) -> str:
        code: str = self.cleaned_data["starter_code"].replace("\r\n", "\n")
        if len(code.encode()) > MAX_CODE_BYTES:
            raise forms.ValidationError(f"Keep the starter code under {MAX_CODE_BYTES // 1024} KB.")
        return code

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        assert data is not None
        rule = data.get("pass_rule")
        if rule == Assignment.PassRule.BEAT_BASELINE and not data.get("pass_baseline"):
            self.add_error("pass_baseline", "Choose the baseline students must beat.")
        if rule == Assignment.PassRule.THRESHOLD and data.get("pass_threshold") is None:
            self.add_error("pass_threshold", "Give the score students must reach.")
        dataset = data.get("dataset")
        metric = METRICS.get(data.get("metric", ""))
        is_classification = dataset is not None and dataset.task == Dataset.Task.CLASSIFICATION
        if (
            dataset is not None
            and metric is not None
            and metric.classification != is_classification
        ):
            self.add_error(
                "metric",
                f"{metric.label} does not suit {dataset.name}, a "
                f"{dataset.get_task_display().lower()} dataset.",
            )
        return data

    def changes(self) -> dict[str, Any]:
        return dict(self.cleaned_data)


class BaselineForm(forms.Form):
    """A baseline's code typed in the editor, or uploaded (an upload replaces the typed code)."""

    name = forms.CharField(max_length=120)
    description = forms.CharField(
        required=False,
        strip=False,
        help_text="Markdown: what this baseline does (students see its name and score).",
        widget=forms.Textarea(attrs={"rows": 3}),
    )
    code = forms.CharField(
        required=False,
        strip=False,
        label="Code",
        help_text="Runs exactly like a student's submission: it writes predictions for the "
        "test inputs.",
        widget=forms.Textarea(attrs=CODE_WIDGET_ATTRS),
    )
    code_file = forms.FileField(
        required=False,
        label="Or upload a file (.py or .ipynb)",
        help_text=f"At most {MAX_CODE_BYTES // 1024} KB; replaces the code above.",
        widget=forms.ClearableFileInput(attrs={"accept": ".py,.ipynb"}),
    )

    def __init__(self, *args: Any, baseline: Baseline | None = None, **kwargs: Any) -> None:
        initial = {}
        self.filename = "baseline.py"
        if baseline is not None:
            initial = {"name": baseline.name, "description": baseline.description}
            initial["code"] = baseline.code
            self.filename = baseline.filename
        kwargs["initial"] = initial
        super().__init__(*args, **kwargs)

    def clean_code_file(self) -> Any:
        upload = self.cleaned_data.get("code_file")
        if upload is None:
            return None
        suffix = PurePath(upload.name).suffix.lower()
        if suffix not in (".py", ".ipynb"):
            raise forms.ValidationError(
                "Upload a Python file (.py) or a Jupyter notebook (.ipynb)."
            )
        if upload.size > MAX_CODE_BYTES:
            raise forms.ValidationError(
                f"The file is larger than {MAX_CODE_BYTES // 1024} KB ({upload.size // 1024} KB)."
            )
        try:
            return (PurePath(upload.name).name[:255], upload.read().decode("utf-8"))
        except UnicodeDecodeError:
            raise forms.ValidationError("The file is not UTF-8 text.") from None

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        assert data is not None
        uploaded = data.get("code_file")
        if uploaded:
            self.filename, data["code"] = uploaded
        else:
            data["code"] = (data.get("code") or "").replace("\r\n", "\n")
            if self.filename.endswith(".ipynb") and not data["code"].lstrip().startswith("{"):
                self.filename = "baseline.py"  # a notebook edited into a script in the editor
        if not data["code"].strip() and "code_file" not in self.errors:
            self.add_error("code", "Write the baseline's code or upload a file.")
        data["filename"] = self.filename
        return data


class DatasetUploadForm(forms.Form):
    file = forms.FileField(
        label="Dataset (.npz)",
        widget=forms.ClearableFileInput(attrs={"accept": ".npz"}),
        error_messages={
            "required": "Choose the .npz file to upload.",
            "empty": "The file is empty.",
        },
    )
    slug = forms.SlugField(
        max_length=80,
        label="Short name",
        help_text="Letters, digits and hyphens; uploading again under the same short name makes "
        "a new version (or finds the identical one).",
    )
    name = forms.CharField(max_length=200)
    task = forms.ChoiceField(choices=Dataset.Task.choices, initial=CLASSIFICATION)
    n_classes = forms.IntegerField(
        required=False,
        min_value=2,
        max_value=100_000,
        label="Number of classes",
        help_text="Classification only. Empty: one more than the largest label.",
    )
    class_names = forms.CharField(
        required=False,
        label="Class names",
        help_text="Optional: one per line (or separated by commas), for classes 0, 1, 2, ...",
        widget=forms.Textarea(attrs={"rows": 3}),
    )
    description = forms.CharField(
        required=False, help_text="Markdown.", widget=forms.Textarea(attrs={"rows": 3})
    )
    licence = forms.CharField(
        required=False,
        help_text="Markdown: where the data comes from and on which terms.",
        widget=forms.Textarea(attrs={"rows": 2}),
    )

    def clean_file(self) -> Any:
        upload = self.cleaned_data["file"]
        limit = dataset_upload_max_bytes()
        if not upload.name.lower().endswith(".npz"):
            raise forms.ValidationError(
                "Upload an .npz archive (numpy.savez or numpy.savez_compressed)."
            )
        if upload.size > limit:
            raise forms.ValidationError(
                f"The file is {filesizeformat(upload.size)}; the limit is {filesizeformat(limit)}."
            )
        return upload

    def clean_class_names(self) -> list[str]:
        text = self.cleaned_data["class_names"].strip()
        if not text:
            return []
        separator = "\n" if "\n" in text else ","
        return [name.strip() for name in text.split(separator) if name.strip()]

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        assert data is not None
        if data.get("task") == REGRESSION:
            if data.get("n_classes"):
                self.add_error("n_classes", "A regression dataset has no classes.")
            if data.get("class_names"):
                self.add_error("class_names", "A regression dataset has no classes.")
        return data
