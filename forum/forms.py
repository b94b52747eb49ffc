from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings

from forum.models import Category, Flag, NotificationPreference
from forum.rules import TITLE_MAX_CHARS, body_normalise

BODY_HELP = (
    "Markdown: **bold**, `code`, fenced code blocks with a language (```python), "
    "$maths$ and $$display maths$$, > quotes, and @username to mention someone."
)


class BodyField(forms.CharField):
    """Markdown as typed: leading spaces kept (they indent code), ``\\r\\n`` made ``\\n`` before
    the length check."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("label", "Your post")
        kwargs.setdefault("help_text", BODY_HELP)
        kwargs.setdefault(
            "widget",
            forms.Textarea(attrs={"rows": 10, "class": "post-editor", "spellcheck": "true"}),
        )
        kwargs.setdefault("max_length", settings.FORUM_POST_MAX_CHARS)
        super().__init__(strip=False, **kwargs)

    def to_python(self, value: object) -> str:
        return body_normalise(super().to_python(value) or "")


class ReplyForm(forms.Form):
    body = BodyField()
    contains_answer = forms.BooleanField(
        required=False,
        label="This post gives away an answer",
        help_text="It stays hidden from students who have not submitted yet.",
    )

    def __init__(self, *args: Any, answers: bool = True, **kwargs: Any) -> None:
        """``answers``: whether posts here can be marked as giving away an answer (only in
        threads about a question or an assignment)."""
        super().__init__(*args, **kwargs)
        if not answers:
            del self.fields["contains_answer"]


class ThreadForm(ReplyForm):
    title = forms.CharField(max_length=TITLE_MAX_CHARS, label="Title")
    field_order = ["title", "body", "contains_answer"]


class AskForm(forms.Form):
    """Asking about one's own run: the error is attached by the service, not typed."""

    title = forms.CharField(max_length=TITLE_MAX_CHARS, label="Title")
    body = BodyField(label="Your question")
    show_code_to_staff = forms.BooleanField(
        required=False,
        label="Show my code to the course staff",
        help_text="Only instructors and teaching assistants see it; other students never do.",
    )


class PostEditForm(ReplyForm):
    title = forms.CharField(max_length=TITLE_MAX_CHARS, label="Title")
    field_order = ["title", "body", "contains_answer"]

    def __init__(self, *args: Any, title: bool = False, **kwargs: Any) -> None:
        """``title``: the opening post's edit changes the thread's title too."""
        super().__init__(*args, **kwargs)
        if not title:
            del self.fields["title"]


class FlagForm(forms.Form):
    reason = forms.ChoiceField(
        choices=Flag.Reason.choices, widget=forms.RadioSelect, label="What is wrong with it?"
    )
    comment = forms.CharField(
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3}),
        label="Anything staff should know",
    )


class CategoryChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: Category) -> str:
        return obj.display_title


class MoveForm(forms.Form):
    category = CategoryChoiceField(queryset=Category.objects.none(), label="Move to")

    def __init__(self, *args: Any, categories: list[Category], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["category"]
        assert isinstance(field, CategoryChoiceField)
        field.queryset = Category.objects.filter(pk__in=[c.pk for c in categories]).select_related(
            "chapter"
        )


class SplitForm(MoveForm):
    title = forms.CharField(max_length=TITLE_MAX_CHARS, label="Title of the new thread")
    numbers = forms.TypedMultipleChoiceField(
        coerce=int, label="Replies to move", widget=forms.CheckboxSelectMultiple
    )
    field_order = ["numbers", "title", "category"]

    def __init__(self, *args: Any, numbers: list[tuple[int, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["numbers"]
        assert isinstance(field, forms.TypedMultipleChoiceField)
        field.choices = numbers
        self.fields["category"].label = "In the category"


class PreferenceForm(forms.ModelForm):
    class Meta:
        model = NotificationPreference
        fields = ["email_each", "email_digest"]
        labels = {
            "email_each": "Email me each notification",
            "email_digest": "Email me a daily digest of what I have not read",
        }


class SearchForm(forms.Form):
    q = forms.CharField(max_length=200, required=False, label="Search the forum")
