"""What ``Post.search_vector`` holds on PostgreSQL, so that the GIN index finds the newest matches
in a course without reading every match.

Besides the words (the thread's title at weight A on opening posts, the body at B), each vector
carries marker lexemes: the post's course (``C12``), and the blocks of post ids it falls in, at
three sizes, within that course (``C12P244`` for ids in blocks of 4,096, ``C12Q30`` in blocks of
32,768, ``C12R3`` in blocks of 262,144). Markers start with a capital letter, which no text run
through the search configuration can produce (it lowercases), so no query typed by a reader
matches one. None ever changes for a post: its id is fixed, and a thread keeps its course when
it is moved or split.

Search ANDs the reader's query with the markers of the newest blocks, smallest first (see
``forum.search``): GIN intersects the entries of a query by walking the shortest and skipping
through the others, so a common word costs what the newest block holds, a rarer one what it
matches there, and only the rarest queries go through the whole course.
"""

from __future__ import annotations

from django.contrib.postgres.search import SearchVector, SearchVectorCombinable
from django.db.models import Func, TextField, Value

from forum.models import Post

SEARCH_CONFIG = "english"
# Block sizes as powers of two (4,096, 32,768 and 262,144 ids), each with its letter.
LEVELS = (("P", 12), ("Q", 15), ("R", 18))


def course_marker(course_id: int) -> str:
    return f"C{course_id}"


def block_marker(course_id: int, letter: str, block: int) -> str:
    return f"C{course_id}{letter}{block}"


def post_markers(*, course_id: int, post_id: int) -> list[str]:
    return [course_marker(course_id)] + [
        block_marker(course_id, letter, post_id >> shift) for letter, shift in LEVELS
    ]


class Markers(SearchVectorCombinable, Func):
    """Lexemes as given (``'C12 C12P244'::tsvector``), not parsed as text."""

    template = "%(expressions)s::tsvector"
    output_field = Post._meta.get_field("search_vector")

    def __init__(self, markers: list[str]) -> None:
        super().__init__(Value(" ".join(markers), output_field=TextField()))
        self.config = None


def post_vector_update(*, post_id: int, course_id: int, title: str, body: str) -> None:
    """Write the post's search vector: its words and its markers."""
    vector = (
        SearchVector(Value(title, output_field=TextField()), weight="A", config=SEARCH_CONFIG)
        + SearchVector(Value(body, output_field=TextField()), weight="B", config=SEARCH_CONFIG)
        + Markers(post_markers(course_id=course_id, post_id=post_id))
    )
    Post.objects.filter(pk=post_id).update(search_vector=vector)
