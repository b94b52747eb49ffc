from __future__ import annotations

from django.contrib.auth.models import AbstractUser
from django.db import models


class User(AbstractUser):
    """A person on Topdown. Roles are per course (see ``courses.Enrolment``), not global."""

    display_name = models.CharField(
        max_length=80, blank=True, help_text="Shown to others instead of the username."
    )

    class Meta(AbstractUser.Meta):
        swappable = "AUTH_USER_MODEL"

    @property
    def public_name(self) -> str:
        return self.display_name or self.username

    def __str__(self) -> str:
        return self.public_name
