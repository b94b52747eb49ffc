from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from accounts.models import User
from courses.course_folder import CourseFolderError, course_folder_import
from courses.models import Role
from courses.services import enrolment_create
from grader.management.commands.datasets_load_builtin import builtin_datasets_load

DEMO_FOLDER = settings.BASE_DIR / "demo" / "course"
DEMO_PASSWORD = "topdown-demo"  # noqa: S105 - published on purpose: these are demo accounts
DEMO_USERS = [
    ("student", "Demo Student", Role.STUDENT),
    ("instructor", "Demo Instructor", Role.INSTRUCTOR),
]


class Command(BaseCommand):
    help = (
        "Load the built-in datasets, the demo course (demo/course/, with its assignment) and the "
        "demo users. Safe to run again: it changes nothing then."
    )

    def handle(self, *args: object, **options: object) -> None:
        # The demo assignment names a built-in dataset, which must be registered first.
        datasets = builtin_datasets_load()
        try:
            course, report = course_folder_import(DEMO_FOLDER)
        except CourseFolderError as error:
            raise CommandError(str(error)) from None
        created_users = []
        for username, display_name, role in DEMO_USERS:
            user = User.objects.filter(username=username).first()
            if user is None:
                user = User.objects.create_user(
                    username=username,
                    password=DEMO_PASSWORD,
                    display_name=display_name,
                    email=f"{username}@example.com",
                )
                created_users.append(username)
            enrolment_create(user=user, course=course, role=role)
        registered = [f"{d.dataset.slug} v{d.dataset.version}" for d in datasets if d.created]
        self.stdout.write(
            f"Datasets registered: {', '.join(registered) or 'none'}. "
            f"Demo course '{course.slug}': {report.summary()}. "
            f"Demo users created: {', '.join(created_users) or 'none'}."
        )
