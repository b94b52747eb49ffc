"""Course and id-block markers in every post's search vector (see forum.indexing), and an index
of each course's hidden threads, which search leaves out. The vectors are PostgreSQL's only:
SQLite (the embedded set-up) searches with icontains.

The vectors are rewritten with the GIN index dropped: building it once is far quicker than
updating it row by row. A big forum's post table takes twice its room until the next VACUUM.
"""

from django.db import migrations, models
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.state import StateApps

INDEX = "forum_post_search"
# forum.indexing.post_markers in SQL: keep the two in step.
MARKERS = (
    "ARRAY['C' || t.course_id, 'C' || t.course_id || 'P' || (p.id >> 12), "
    "'C' || t.course_id || 'Q' || (p.id >> 15), 'C' || t.course_id || 'R' || (p.id >> 18)]"
)


def _rewrite(schema_editor: BaseDatabaseSchemaEditor, vector: str) -> None:
    schema_editor.execute(f"DROP INDEX IF EXISTS {INDEX}")
    schema_editor.execute(
        f"UPDATE forum_post p SET search_vector = {vector} "
        "FROM forum_thread t WHERE t.id = p.thread_id"
    )
    schema_editor.execute(f"CREATE INDEX {INDEX} ON forum_post USING gin (search_vector)")
    schema_editor.execute("ANALYZE forum_post")


def add_markers(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        _rewrite(schema_editor, f"coalesce(p.search_vector, '') || array_to_tsvector({MARKERS})")


def remove_markers(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        _rewrite(schema_editor, f"ts_delete(p.search_vector, {MARKERS})")


class Migration(migrations.Migration):

    dependencies = [("forum", "0002_post_search_index")]

    operations = [
        migrations.AddIndex(
            model_name="thread",
            index=models.Index(
                condition=models.Q(("is_hidden", True)),
                fields=["course"],
                name="forum_thread_hidden",
            ),
        ),
        migrations.RunPython(add_markers, remove_markers, elidable=False),
    ]
