"""The notebook importer: parsing the variants real course books use, the command, the page.

Notebooks are built with ``nbformat`` (``new_notebook``, ``new_markdown_cell``, ``new_code_cell``)
and written with ``nbformat.writes``, exactly as Jupyter saves them.
"""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.urls import reverse
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from courses.models import Answer, Attempt, Chapter, Question
from courses.notebook_forms import NOTEBOOK_MAX_BYTES
from courses.notebook_import import NotebookImportError, chapter_import_from_notebook
from courses.notebooks import NotebookError, notebook_parse, research_title
from grader.models import Assignment
from tests.factories import CourseFactory, UserFactory
from tests.grader.factories import DatasetFactory, SubmissionFactory


def markdown(source: str) -> nbformat.NotebookNode:
    return new_markdown_cell(source)


def code(source: str) -> nbformat.NotebookNode:
    output = new_output("stream", name="stdout", text="out\n")
    return new_code_cell(source, execution_count=1, outputs=[output])


def notebook(*cells: nbformat.NotebookNode) -> nbformat.NotebookNode:
    return new_notebook(
        cells=list(cells),
        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3"}},
    )


def written(nb: nbformat.NotebookNode) -> str:
    """The notebook's file contents, as Jupyter writes them (validated by nbformat)."""
    return nbformat.writes(nb)


def parse(*cells: nbformat.NotebookNode, name: str = "01_intro.ipynb"):
    return notebook_parse(written(notebook(*cells)), name=name)


FASTBOOK_LIKE = notebook(
    code("#hide\n! [ -e /content ] && pip install -Uqq fastbook"),
    markdown("[[chapter_intro]]"),
    markdown("# Your Deep Learning Journey"),
    markdown("Hello! As we saw in <<chapter_two>>, models learn."),
    code("learn = vision_learner(dls, resnet34)\nlearn.fine_tune(1)"),
    markdown("## Questionnaire"),
    markdown(
        "It can be hard to know in pages and pages of prose what the key things are.\n\n"
        "> tip: Answer these questions before moving on."
    ),
    markdown(
        "1. Do you need these for deep learning?\n"
        "   - Lots of math T / F\n"
        "   - Lots of data T / F\n"
        "1. Name five areas where deep learning is now the best in the world.\n"
        "1. What was the name of the first device that was based on the principle of the\n"
        "artificial neuron?\n"
        "1. What is `fit_one_cycle` for?"
    ),
    markdown("### Further Research"),
    markdown(
        "Each chapter also has a further research section.\n\n"
        "1. Why is a GPU useful for deep learning?\n"
        "1. Try to think of three areas where feedback loops might impact the use of ML."
    ),
)


# Parsing ---------------------------------------------------------------------------------------


def test_a_fastbook_chapter_gives_its_title_body_questions_and_further_research():
    parsed = notebook_parse(written(FASTBOOK_LIKE), name="01_intro.ipynb")

    assert parsed.title == "Your Deep Learning Journey"
    assert parsed.questions == [
        "Do you need these for deep learning?\n- Lots of math T / F\n- Lots of data T / F",
        "Name five areas where deep learning is now the best in the world.",
        "What was the name of the first device that was based on the principle of the\n"
        "artificial neuron?",
        "What is `fit_one_cycle` for?",
    ]
    assert parsed.further_research == [
        "Why is a GPU useful for deep learning?",
        "Try to think of three areas where feedback loops might impact the use of ML.",
    ]
    assert parsed.body == (
        "Hello! As we saw in chapter_two, models learn.\n\n"
        "```python\nlearn = vision_learner(dls, resnet34)\nlearn.fine_tune(1)\n```\n"
    )
    whys = [s.why for s in parsed.skipped]
    assert "text in the Questionnaire section that is not a list item" in whys
    assert "a tip or note in the Questionnaire section, not a list item" in whys
    assert "text in the Further Research section that is not a list item" in whys


@pytest.mark.parametrize(
    "heading", ["## Questionnaire", "## questionnaire", "## QUESTIONNAIRE:", "### Questionnaire :"]
)
def test_the_questionnaire_heading_ignores_case_level_and_a_trailing_colon(heading):
    parsed = parse(markdown("# Title"), markdown(heading), markdown("1. First?\n1. Second?"))

    assert parsed.questions == ["First?", "Second?"]


def test_the_heading_and_its_list_may_share_a_cell():
    parsed = parse(
        markdown("# Title\n\nIntro."),
        markdown("## Questionnaire\n\n1. First?\n2. Second?\n\n### Further research:\n\n1. Dig."),
    )

    assert parsed.questions == ["First?", "Second?"]
    assert parsed.further_research == ["Dig."]
    assert parsed.body == "Intro.\n"


def test_a_list_split_over_cells_keeps_every_item():
    parsed = parse(
        markdown("# T"), markdown("## Questionnaire"), markdown("1. A?"), markdown("1. B?")
    )

    assert parsed.questions == ["A?", "B?"]


def test_indented_sub_items_and_continuation_paragraphs_belong_to_their_item():
    parsed = parse(
        markdown("# T"),
        markdown(
            "## Questionnaire\n\n"
            "1. Which are true?\n"
            "    1. a numbered sub-item\n"
            "    2. another\n"
            "\n"
            "   A second paragraph of the same item.\n"
            "1. Next?"
        ),
    )

    assert parsed.questions == [
        "Which are true?\n 1. a numbered sub-item\n 2. another\n\nA second paragraph of the same item.",
        "Next?",
    ]


def test_cross_references_lose_their_markup_but_not_their_text_and_code_is_untouched():
    parsed = parse(
        markdown("# The <<chapter_intro>> chapter"),
        markdown(
            "## Questionnaire\n"
            "1. What did <<chapter_mnist_basics>> show?\n"
            "1. Reread <<sec_sgd, the SGD section>>.\n"
            "1. What does `x << 2 >> 1` or `<<kept>>` do?"
        ),
    )

    assert parsed.title == "The chapter_intro chapter"
    assert parsed.questions == [
        "What did chapter_mnist_basics show?",
        "Reread the SGD section.",
        "What does `x << 2 >> 1` or `<<kept>>` do?",
    ]


def test_images_beside_the_notebook_become_their_alt_text_and_are_reported():
    parsed = parse(
        markdown("# T\n\n![a cat](images/cat.jpg) and ![remote](https://example.com/dog.png)"),
        markdown(
            '## Questionnaire\n1. What does <img src="images/net.png" alt="this network"> do?'
        ),
    )

    assert parsed.body == "*[image: a cat]* and ![remote](https://example.com/dog.png)\n"
    assert parsed.questions == ["What does *[image: this network]* do?"]
    assert {s.what for s in parsed.skipped} >= {"image images/cat.jpg", "image images/net.png"}


def test_sections_after_further_research_are_reported_not_swallowed():
    # The shape of fastbook's 03_ethics: a colon after "Further research", then a closing section.
    parsed = parse(
        markdown("# Data Ethics"),
        markdown("### Sidebar: Acknowledgement"),
        markdown("## Questionnaire"),
        markdown('1. Does ethics provide a list of "right answers"?\n1. What is bias?'),
        markdown("### Further research:"),
        markdown("1. Read the article.\n1. Consider your team."),
        markdown("## Section 1: that's a wrap!"),
        markdown("Congratulations!\n\n- Run the first notebook"),
        code(""),
    )

    assert parsed.questions == ['Does ethics provide a list of "right answers"?', "What is bias?"]
    assert parsed.further_research == ["Read the article.", "Consider your team."]
    assert parsed.body == "### Sidebar: Acknowledgement\n"
    assert any(s.what == "2 cells after the questionnaire" for s in parsed.skipped)


def test_a_code_cell_inside_the_questionnaire_is_reported_not_a_question():
    parsed = parse(markdown("# T\n## Questionnaire\n1. A?"), code("print(1)"), markdown("1. B?"))

    assert parsed.questions == ["A?", "B?"]
    assert any(s.what == "a code cell" for s in parsed.skipped)


def test_a_bulleted_questionnaire_is_read_when_there_is_no_numbered_list():
    parsed = parse(markdown("# T\n## Questionnaire\n- A?\n- B?"))

    assert parsed.questions == ["A?", "B?"]


def test_a_notebook_without_the_sections_is_reported_not_failed():
    parsed = parse(markdown("# Just prose\n\nNo questions here."), code("1 + 1"))

    assert parsed.questions == [] and parsed.further_research == []
    assert parsed.body == "No questions here.\n\n```python\n1 + 1\n```\n"
    assert {s.what for s in parsed.skipped} >= {
        "the Questionnaire section",
        "the Further Research section",
    }


def test_without_a_heading_the_file_name_is_the_title():
    parsed = parse(markdown("Only text."), name="folder/04_mnist-basics.ipynb")

    assert parsed.title == "04 mnist basics"
    assert any(s.what == "the title" for s in parsed.skipped)


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("{not json", "not valid JSON"),
        (json.dumps([1, 2]), "no list of 'cells'"),
        (json.dumps({"nbformat": 3, "cells": []}), "not an nbformat 4 notebook"),
        (json.dumps({"nbformat": 4, "cells": [{"source": "x"}]}), "cell 1 has no 'cell_type'"),
        (b"\xff\xfe\x00garbage", "not valid JSON"),
    ],
)
def test_what_is_not_a_notebook_raises_a_clear_error(source, message):
    with pytest.raises(NotebookError, match=message):
        notebook_parse(source, name="bad.ipynb")


# The service and re-import --------------------------------------------------------------------


@pytest.mark.django_db
def test_importing_creates_free_text_questions_and_a_draft_assignment_per_research_item(course):
    parsed = notebook_parse(written(FASTBOOK_LIKE), name="01_intro.ipynb")

    result = chapter_import_from_notebook(course=course, notebook=parsed)

    chapter = Chapter.objects.get(course=course, slug="your-deep-learning-journey")
    questions = list(chapter.questionnaire.questions.all())
    assert result.created and result.chapter == chapter.slug
    assert [q.kind for q in questions] == [Question.Kind.FREE_TEXT] * 4
    assert [q.key for q in questions] == ["q-01", "q-02", "q-03", "q-04"]
    assert questions[3].prompt == "What is `fit_one_cycle` for?"
    assert "Further research" not in chapter.body and "GPU" not in chapter.body
    drafts = list(chapter.assignments.order_by("position"))
    assert [(a.slug, a.uid, a.published, a.dataset) for a in drafts] == [
        (
            "your-deep-learning-journey-research-01",
            "your-deep-learning-journey-research-01",
            False,
            None,
        ),
        (
            "your-deep-learning-journey-research-02",
            "your-deep-learning-journey-research-02",
            False,
            None,
        ),
    ]
    assert drafts[0].title == "Why is a GPU useful for deep learning?"
    assert drafts[1].description == (
        "Try to think of three areas where feedback loops might impact the use of ML."
    )
    assert result.further_research == 2


@pytest.mark.django_db
def test_reimporting_updates_the_chapter_in_place_and_keeps_answers_and_reference_answers(cast):
    first = parse(markdown("# Chapter One"), markdown("## Questionnaire\n1. Old A?\n1. B?"))
    chapter_import_from_notebook(course=cast.course, notebook=first)
    question = Question.objects.get(key="q-01", questionnaire__chapter__slug="chapter-one")
    question.reference_answer = "The instructor's answer."
    question.save()
    attempt = Attempt.objects.create(
        questionnaire=question.questionnaire, user=cast.student, number=1
    )
    answer = Answer.objects.create(attempt=attempt, question=question, response="My answer")

    second = parse(
        markdown("# Chapter One\n\nNew text."),
        markdown("## Questionnaire\n1. New A?\n1. B?\n1. C?"),
    )
    result = chapter_import_from_notebook(course=cast.course, notebook=second)

    question.refresh_from_db()
    assert result.updated and not result.created
    assert Chapter.objects.filter(course=cast.course, slug="chapter-one").count() == 1
    assert question.prompt == "New A?"
    assert question.reference_answer == "The instructor's answer."
    assert Answer.objects.filter(pk=answer.pk, question=question).exists()
    assert question.questionnaire.questions.count() == 3


@pytest.mark.django_db
def test_reimporting_unchanged_reports_no_update(course):
    parsed = notebook_parse(written(FASTBOOK_LIKE), name="01_intro.ipynb")
    chapter_import_from_notebook(course=course, notebook=parsed)

    again = chapter_import_from_notebook(course=course, notebook=parsed)

    assert not again.created and not again.updated


@pytest.mark.django_db
def test_a_reimport_that_would_drop_an_answered_question_fails_and_changes_nothing(cast):
    chapter_import_from_notebook(
        course=cast.course,
        notebook=parse(markdown("# Ch\n\nOld body."), markdown("## Questionnaire\n1. A?\n1. B?")),
    )
    question = Question.objects.get(key="q-02", questionnaire__chapter__slug="ch")
    attempt = Attempt.objects.create(
        questionnaire=question.questionnaire, user=cast.student, number=1
    )
    Answer.objects.create(attempt=attempt, question=question, response="x")

    with pytest.raises(NotebookImportError, match="q-02"):
        chapter_import_from_notebook(
            course=cast.course,
            notebook=parse(markdown("# Ch\n\nNew body."), markdown("## Questionnaire\n1. A?")),
        )

    assert Chapter.objects.get(course=cast.course, slug="ch").body == "Old body.\n"
    assert Question.objects.filter(pk=question.pk).exists()


# The command -----------------------------------------------------------------------------------


@pytest.fixture
def notebook_folder(tmp_path) -> Path:
    (tmp_path / "02_second.ipynb").write_text(
        written(notebook(markdown("# Second\n## Questionnaire\n1. Q?")))
    )
    (tmp_path / "01_intro.ipynb").write_text(written(FASTBOOK_LIKE))
    (tmp_path / "notes.txt").write_text("not a notebook")
    return tmp_path


def run_command(*args: str) -> str:
    from io import StringIO

    out = StringIO()
    call_command("import_notebooks", *args, stdout=out)
    return out.getvalue()


@pytest.mark.django_db
def test_the_command_imports_a_folder_in_order_and_prints_json(
    course, questionnaire, notebook_folder
):
    out = run_command(str(notebook_folder), "--course", course.slug, "--json")

    rows = [json.loads(line) for line in out.splitlines()]
    assert [Path(r["notebook"]).name for r in rows] == ["01_intro.ipynb", "02_second.ipynb"]
    assert rows[0] | {"notebook": "", "skipped": []} == {
        "notebook": "",
        "title": "Your Deep Learning Journey",
        "chapter": "your-deep-learning-journey",
        "created": True,
        "updated": False,
        "questions": 4,
        "further_research": 2,
        "skipped": [],
    }
    assert {"what", "why"} == set(rows[0]["skipped"][0])
    assert list(Chapter.objects.filter(course=course).values_list("slug", flat=True)) == [
        "first-model",
        "your-deep-learning-journey",
        "second",
    ]


@pytest.mark.django_db
def test_a_dry_run_writes_nothing_but_reports_what_it_would_do(course, notebook_folder):
    before = (Chapter.objects.count(), Question.objects.count())

    out = run_command(str(notebook_folder), "--course", course.slug, "--dry-run", "--json")

    assert (Chapter.objects.count(), Question.objects.count()) == before
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["created"] for r in rows] == [True, True]
    assert [r["questions"] for r in rows] == [4, 1]


@pytest.mark.django_db
def test_the_plain_output_says_what_would_happen_and_what_was_skipped(course, notebook_folder):
    out = run_command(str(notebook_folder / "01_intro.ipynb"), "--course", course.slug, "--dry-run")

    assert "would import “Your Deep Learning Journey” as your-deep-learning-journey (new)" in out
    assert "4 questions, 2 further research" in out
    assert "skipped “> tip: Answer these questions before moving on.”: a tip or note" in out
    assert not Chapter.objects.filter(slug="your-deep-learning-journey").exists()


@pytest.mark.django_db
def test_a_bad_notebook_fails_alone_and_the_command_exits_with_an_error(course, tmp_path):
    good = tmp_path / "good.ipynb"
    good.write_text(written(notebook(markdown("# Good\n## Questionnaire\n1. Q?"))))
    bad = tmp_path / "bad.ipynb"
    bad.write_text("{ nope")

    with pytest.raises(CommandError, match="1 of 2 notebooks not imported"):
        run_command(str(bad), str(good), "--course", course.slug)

    assert Chapter.objects.filter(course=course, slug="good").exists()


@pytest.mark.django_db
def test_the_command_refuses_an_unknown_course(tmp_path):
    with pytest.raises(CommandError, match="no course"):
        run_command(str(tmp_path), "--course", "nope")


# The upload page -------------------------------------------------------------------------------


def upload(name: str, content: nbformat.NotebookNode | bytes) -> SimpleUploadedFile:
    data = content if isinstance(content, bytes) else written(content).encode()
    return SimpleUploadedFile(name, data, content_type="application/x-ipynb+json")


def page(cast) -> str:
    return reverse("notebooks_import", args=[cast.course.slug])


@pytest.mark.django_db
@pytest.mark.parametrize("who", ["ta", "student", "outsider"])
def test_only_instructors_may_import_notebooks(client_for, cast, who):
    client = client_for(getattr(cast, who))

    assert client.get(page(cast)).status_code == 403
    response = client.post(page(cast), {"notebooks": upload("a.ipynb", FASTBOOK_LIKE)})
    assert response.status_code == 403
    assert not Chapter.objects.filter(slug="your-deep-learning-journey").exists()


@pytest.mark.django_db
def test_anonymous_visitors_are_sent_to_log_in(client, cast):
    response = client.get(page(cast))

    assert response.status_code == 302 and response.url.startswith(reverse("login"))


@pytest.mark.django_db
def test_the_course_page_links_the_import_for_instructors_only(client_for, cast):
    course_url = reverse("course_detail", args=[cast.course.slug])

    assert page(cast).encode() in client_for(cast.instructor).get(course_url).content
    assert b'type="file" name="notebooks"' in client_for(cast.instructor).get(page(cast)).content
    assert page(cast).encode() not in client_for(cast.ta).get(course_url).content


@pytest.mark.django_db
def test_an_instructor_previews_then_imports(client_for, cast):
    client = client_for(cast.instructor)

    preview = client.post(
        page(cast),
        {
            "notebooks": [
                upload("01_intro.ipynb", FASTBOOK_LIKE),
                upload("plain.ipynb", notebook(markdown("# Plain"))),
            ]
        },
    )

    assert preview.status_code == 200
    assert not Chapter.objects.filter(slug="your-deep-learning-journey").exists()
    html = preview.content.decode()
    assert "Your Deep Learning Journey" in html and "the notebook has none" in html
    token = preview.context["import_form"].initial["preview"]

    done = client.post(page(cast), {"preview": token, "confirm": "1"}, follow=True)

    chapter = Chapter.objects.get(course=cast.course, slug="your-deep-learning-journey")
    assert chapter.questionnaire.questions.count() == 4
    assert Chapter.objects.filter(course=cast.course, slug="plain").exists()
    assert "Imported 2 notebooks: 2 chapters created" in done.content.decode()
    chapter_page = client.get(reverse("chapter_detail", args=[cast.course.slug, chapter.slug]))
    assert "Why is a GPU useful for deep learning?" in chapter_page.content.decode()
    assert chapter.assignments.filter(published=False).count() == 2


@pytest.mark.django_db
def test_a_tampered_or_foreign_preview_imports_nothing(client_for, cast):
    instructor = client_for(cast.instructor)
    token = (
        instructor.post(page(cast), {"notebooks": upload("01_intro.ipynb", FASTBOOK_LIKE)})
        .context["import_form"]
        .initial["preview"]
    )
    other = UserFactory(username="other-instructor", is_superuser=True)

    client_for(other).post(page(cast), {"preview": token, "confirm": "1"})
    instructor.post(page(cast), {"preview": token[:-2] + "xx", "confirm": "1"})

    assert not Chapter.objects.filter(slug="your-deep-learning-journey").exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("broken.ipynb", b"{ not json", "broken.ipynb: not valid JSON"),
        ("old.ipynb", json.dumps({"nbformat": 3, "cells": []}).encode(), "nbformat 4"),
        ("notes.txt", b"{}", "notes.txt: not an .ipynb file"),
        ("huge.ipynb", b" " * (NOTEBOOK_MAX_BYTES + 1), "over the 5 MB limit"),
    ],
)
def test_a_bad_file_gets_an_inline_error_and_no_preview(client_for, cast, name, content, message):
    response = client_for(cast.instructor).post(
        page(cast),
        {"notebooks": [upload(name, content), upload("good.ipynb", FASTBOOK_LIKE)]},
    )

    assert response.status_code == 200
    assert message in response.content.decode()
    assert response.context["import_form"] is None and not response.context["results"]


# Further research: every variant, then draft assignments --------------------------------------

GPU = "Why is a GPU useful for deep learning?"
LOOPS = "Try to think of three areas where feedback loops might impact the use of ML."


@pytest.mark.parametrize(
    "cells",
    [
        pytest.param(
            [markdown("# T"), markdown("### Further Research"), markdown(f"1. {GPU}\n1. {LOOPS}")],
            id="separate-cells",
        ),
        pytest.param(
            [markdown(f"# T\n\n### Further research\n\n1. {GPU}\n2. {LOOPS}")],
            id="heading-and-list-in-the-title-cell",
        ),
        pytest.param(
            [markdown("# T"), markdown(f"### FURTHER RESEARCH:\n1. {GPU}\n1. {LOOPS}")],
            id="upper-case-trailing-colon-shared-cell",
        ),
        pytest.param(
            [markdown("# T"), markdown("## further research :"), markdown(f"1. {GPU}\n1. {LOOPS}")],
            id="lower-case-spaced-colon",
        ),
        pytest.param(
            [
                markdown("# T"),
                markdown("### Further Research"),
                markdown("Each chapter also has a further research section."),
                markdown("> tip: Pick the one you like best."),
                markdown(f"1. {GPU}"),
                markdown(f"1. {LOOPS}"),
            ],
            id="paragraph-and-tip-cells-between-and-items-over-cells",
        ),
        pytest.param(
            [
                markdown("# T"),
                markdown(
                    "### Further Research\n\nA paragraph first.\n\n> note: a note\n\n"
                    f"1. {GPU}\n1. {LOOPS}"
                ),
            ],
            id="paragraph-and-tip-in-the-same-cell",
        ),
    ],
)
def test_further_research_variants_give_the_same_items(cells):
    parsed = parse(*cells)

    assert parsed.further_research == [GPU, LOOPS]


def test_further_research_items_keep_lines_sub_items_code_images_and_references():
    parsed = parse(
        markdown("# T"),
        markdown(
            "### Further Research\n"
            "1. Complete the notebook using\n"
            "a different dataset, as in <<chapter_intro>>:\n"
            "    - the `ImageDataLoaders` way\n"
            "    - the <<sec_datablock, data block API>> way\n"
            '1. Explain ![diagram](images/sgd.svg) and <img src="https://x.org/a.png" alt="a">.\n'
            "1. What does `x << 1 >> 1` print?"
        ),
    )

    assert parsed.further_research == [
        "Complete the notebook using\na different dataset, as in chapter_intro:\n"
        " - the `ImageDataLoaders` way\n - the data block API way",
        'Explain *[image: diagram]* and <img src="https://x.org/a.png" alt="a">.',
        "What does `x << 1 >> 1` print?",
    ]
    assert any(s.what == "image images/sgd.svg" for s in parsed.skipped)


def test_a_notebook_without_further_research_reports_it_and_imports_no_assignment(db, course):
    parsed = parse(markdown("# Only questions\n## Questionnaire\n1. A?"))

    result = chapter_import_from_notebook(course=course, notebook=parsed)

    assert result.further_research == 0 and not result.error
    assert {"what": "the Further Research section", "why": "the notebook has none"} in (
        result.skipped
    )
    assert not Assignment.objects.exists()


@pytest.mark.parametrize(
    ("item", "title"),
    [
        (GPU, GPU),
        ("What is `fit_one_cycle` for?", "What is fit_one_cycle for?"),
        ("Read [the article](https://x.org). Then discuss it with a friend.", "Read the article"),
        (
            "Complete the notebook using a different dataset:\n- one\n- two",
            "Complete the notebook using a different dataset",
        ),
        (
            "Look up the ImageNet competition results over the years and plot the winning error "
            "rates against the year on a logarithmic scale",
            "Look up the ImageNet competition results over the years and plot the winning…",
        ),
    ],
)
def test_a_research_items_title_is_its_first_sentence_in_plain_text(item, title):
    assert research_title(item) == title
    assert len(research_title(item)) <= 80


def research_notebook(*items: str, title: str = "Chapter One"):
    listed = "\n".join(f"1. {item}" for item in items)
    return parse(markdown(f"# {title}"), markdown(f"### Further Research\n{listed}"))


@pytest.mark.django_db
def test_a_reimport_updates_drafts_in_place_and_keeps_what_the_instructor_set(course):
    chapter_import_from_notebook(course=course, notebook=research_notebook(GPU, LOOPS))
    first = Assignment.objects.get(slug="chapter-one-research-01")
    dataset = DatasetFactory()
    Assignment.objects.filter(pk=first.pk).update(dataset=dataset, metric="macro_f1")

    result = chapter_import_from_notebook(
        course=course, notebook=research_notebook("Why are GPUs fast?", LOOPS)
    )

    first.refresh_from_db()
    assert result.updated and first.title == "Why are GPUs fast?"
    assert first.description == "Why are GPUs fast?"
    assert (first.dataset, first.metric, first.published) == (dataset, "macro_f1", False)
    assert Assignment.objects.count() == 2

    again = chapter_import_from_notebook(
        course=course, notebook=research_notebook("Why are GPUs fast?", LOOPS)
    )
    assert not again.updated


@pytest.mark.django_db
def test_a_dropped_item_deletes_its_draft_but_never_one_with_submissions(course):
    chapter_import_from_notebook(course=course, notebook=research_notebook(GPU, LOOPS, "Third."))
    worked_on = Assignment.objects.get(slug="chapter-one-research-02")
    dataset = DatasetFactory()
    Assignment.objects.filter(pk=worked_on.pk).update(dataset=dataset)
    SubmissionFactory(assignment=Assignment.objects.get(pk=worked_on.pk))

    result = chapter_import_from_notebook(course=course, notebook=research_notebook(GPU))

    slugs = set(Assignment.objects.values_list("slug", flat=True))
    assert slugs == {"chapter-one-research-01", "chapter-one-research-02"}
    assert {
        "what": "assignment chapter-one-research-02",
        "why": "kept although its item left the notebook: it has submissions",
    } in result.skipped


@pytest.mark.django_db
def test_a_second_course_importing_the_same_notebook_gets_its_own_drafts(course):
    other = CourseFactory(slug="other-course")
    chapter_import_from_notebook(course=course, notebook=research_notebook(GPU))
    chapter_import_from_notebook(course=other, notebook=research_notebook(GPU))
    chapter_import_from_notebook(course=other, notebook=research_notebook(GPU))  # in place

    assert sorted(Assignment.objects.values_list("slug", "chapter__course__slug")) == [
        ("chapter-one-research-01", course.slug),
        ("other-course-chapter-one-research-01", "other-course"),
    ]


@pytest.mark.django_db
def test_a_dry_run_creates_no_assignment(course):
    result = chapter_import_from_notebook(
        course=course, notebook=research_notebook(GPU, LOOPS), dry_run=True
    )

    assert result.created and result.further_research == 2
    assert not Assignment.objects.exists()


@pytest.mark.django_db
def test_imported_drafts_are_listed_for_staff_but_not_students(client_for, cast):
    chapter_import_from_notebook(course=cast.course, notebook=research_notebook(GPU))
    url = reverse("chapter_detail", args=[cast.course.slug, "chapter-one"])

    assert GPU in client_for(cast.instructor).get(url).content.decode()
    assert GPU not in client_for(cast.student).get(url).content.decode()
    draft = reverse("assignment_detail", args=["chapter-one-research-01"])
    assert client_for(cast.student).get(draft).status_code == 404
