"""Each category's count of threads, visible and hidden, kept by the services from now on."""

from django.db import migrations, models
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.state import StateApps
from django.db.models import Count, OuterRef, Subquery
from django.db.models.functions import Coalesce


def count_threads(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    Category = apps.get_model("forum", "Category")
    Thread = apps.get_model("forum", "Thread")

    def counted(hidden: bool) -> Coalesce:
        threads = (
            Thread.objects.filter(category=OuterRef("pk"), is_hidden=hidden)
            .order_by()
            .values("category")
            .annotate(n=Count("id"))
            .values("n")
        )
        return Coalesce(Subquery(threads), 0)

    Category.objects.update(thread_count=counted(False), hidden_thread_count=counted(True))


class Migration(migrations.Migration):

    dependencies = [("forum", "0003_search_markers")]

    operations = [
        migrations.AddField(
            model_name="category",
            name="thread_count",
            field=models.PositiveIntegerField(default=0, editable=False, help_text="Not hidden."),
        ),
        migrations.AddField(
            model_name="category",
            name="hidden_thread_count",
            field=models.PositiveIntegerField(default=0, editable=False),
        ),
        migrations.RunPython(count_threads, migrations.RunPython.noop, elidable=False),
    ]
