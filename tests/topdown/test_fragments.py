"""Template fragments kept per process: rendered again whenever anything they show changes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from django import forms
from django.http import QueryDict
from django.utils import timezone
from django.utils.autoreload import file_changed

from topdown import fragments

ROW = "{{ row.name }} at {{ row.at|date:'H:i' }}{% if flag %} (flagged){% endif %}"
FORM = "{{ form.non_field_errors }}{% for field in form %}{{ field }}{{ field.errors }}{% endfor %}"


@dataclass(frozen=True)
class Row:
    name: str
    at: datetime


class RangeForm(forms.Form):
    low = forms.IntegerField(required=False)
    high = forms.IntegerField(required=False)

    def clean(self):
        data = super().clean() or {}
        if (data.get("low") or 0) > (data.get("high") or 0):
            raise forms.ValidationError("Low is above high.")
        return data


@pytest.fixture
def renders(settings, monkeypatch):
    """Templates held in memory, and a count of the times each is actually rendered."""
    settings.TEMPLATES = [
        {
            "BACKEND": "django.template.backends.django.DjangoTemplates",
            "OPTIONS": {
                "loaders": [
                    ("django.template.loaders.locmem.Loader", {"row.html": ROW, "form.html": FORM})
                ]
            },
        }
    ]
    counted: list[str] = []
    render_to_string = fragments.render_to_string

    def counting(template_name, context=None, *args, **kwargs):
        counted.append(template_name)
        return render_to_string(template_name, context, *args, **kwargs)

    monkeypatch.setattr(fragments, "render_to_string", counting)
    fragments._forget()
    yield counted
    fragments._forget()


NOON = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def test_the_same_rows_are_rendered_once_and_changed_rows_again(renders):
    rows = [Row("Ada", NOON), Row("Bob", NOON)]

    first = fragments.render_fragments("row.html", ({"row": r, "flag": False} for r in rows))
    again = fragments.render_fragments("row.html", ({"row": r, "flag": False} for r in rows))
    renamed = fragments.render_fragments(
        "row.html", ({"row": r, "flag": False} for r in [Row("Ada L.", NOON), rows[1]])
    )

    assert first == again == "Ada at 12:00Bob at 12:00"
    assert renamed == "Ada L. at 12:00Bob at 12:00"
    assert len(renders) == 3  # Ada, Bob, then Ada's new name only


def test_every_context_value_is_part_of_the_key(renders):
    row = Row("Ada", NOON)

    plain = fragments.render_fragment("row.html", row=row, flag=False)
    flagged = fragments.render_fragment("row.html", row=row, flag=True)

    assert (plain, flagged) == ("Ada at 12:00", "Ada at 12:00 (flagged)")


def test_a_fragment_follows_the_active_time_zone(renders):
    row = Row("Ada", NOON)

    with timezone.override("Europe/Paris"):
        paris = fragments.render_fragment("row.html", row=row, flag=False)
    with timezone.override("UTC"):
        utc = fragments.render_fragment("row.html", row=row, flag=False)

    assert (paris, utc) == ("Ada at 13:00", "Ada at 12:00")


def test_an_edited_template_is_rendered_again(renders):
    fragments.render_fragment("row.html", row=Row("Ada", NOON), flag=False)

    file_changed.send(sender=None, file_path=Path("templates/row.html"))
    fragments.render_fragment("row.html", row=Row("Ada", NOON), flag=False)

    assert len(renders) == 2


def test_a_form_is_rendered_once_per_submitted_data(renders):
    unbound = fragments.render_form("form.html", RangeForm, None)
    again = fragments.render_form("form.html", RangeForm, None)
    reversed_range = fragments.render_form("form.html", RangeForm, QueryDict("low=5&high=1"))
    same_data = fragments.render_form("form.html", RangeForm, QueryDict("high=1&low=5"))

    assert unbound == again and 'name="low"' in unbound and "Low is above" not in unbound
    assert "Low is above high." in reversed_range and 'value="5"' in reversed_range
    assert same_data == reversed_range
    assert len(renders) == 2


def test_a_memoised_context_is_built_only_for_a_new_key(renders):
    built: list[str] = []

    def context(name: str):
        def build():
            built.append(name)
            return {"row": Row(name, NOON), "flag": False}

        return build

    first = fragments.render_memoised("row.html", key="ada-v1", context=context("Ada"))
    again = fragments.render_memoised("row.html", key="ada-v1", context=context("Ada"))
    changed = fragments.render_memoised("row.html", key="ada-v2", context=context("Ada L."))

    assert (first, again, changed) == ("Ada at 12:00", "Ada at 12:00", "Ada L. at 12:00")
    assert built == ["Ada", "Ada L."]


def test_memoised_fragments_are_bounded(renders, monkeypatch):
    monkeypatch.setattr(fragments, "MAX_MEMOISED", 2)

    for key in ("a", "b", "c", "a"):
        fragments.render_memoised(
            "row.html", key=key, context=lambda key=key: {"row": Row(key, NOON)}
        )

    assert len(fragments._memoised) == 2
    assert renders.count("row.html") == 4  # "a" was dropped for "c", then drawn again
