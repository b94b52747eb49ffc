from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand

from accounts.models import User
from courses.course_folder import course_folder_import
from courses.models import Role
from courses.services import enrolment_create

DEMO_FOLDER = settings.BASE_DIR / "demo" / "course"
DEMO_PASSWORD = "topdown-demo"  # noqa: S105 - published on purpose: these are demo accounts
DEMO_USERS = [
    ("student", "Demo Student", Role.STUDENT),
    ("instructor", "Demo Instructor", Role.INSTRUCTOR),
]


class Command(BaseCommand):
    help = "Load the demo course and the demo users. Safe to run again: it changes nothing then."

    def handle(self, *args: object, **options: object) -> None:
        course, report = course_folder_import(DEMO_FOLDER)
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
        self.stdout.write(
            f"Demo course '{course.slug}': {report.created} created, {report.updated} updated, "
            f"{report.unchanged} unchanged. "
            f"Demo users created: {', '.join(created_users) or 'none'}."
        )
