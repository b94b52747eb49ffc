"""The per-request user lookup (``accounts.backends``) returns what the ORM would."""

from __future__ import annotations

import datetime

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse
from django.utils import timezone

from accounts.backends import user_by_id
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db
User = get_user_model()


def _field_values(user) -> dict[str, object]:
    return {field.attname: getattr(user, field.attname) for field in User._meta.concrete_fields}


def test_user_by_id_builds_the_same_user_as_the_orm():
    user = UserFactory(display_name="Ada <L.>", is_staff=True)
    User.objects.filter(pk=user.pk).update(
        last_login=timezone.now() - datetime.timedelta(days=2, microseconds=7)
    )
    expected = User.objects.get(pk=user.pk)

    loaded = user_by_id(user.pk)

    assert loaded is not None and loaded == expected
    assert _field_values(loaded) == _field_values(expected)
    assert isinstance(loaded.last_login, datetime.datetime) and loaded.last_login.tzinfo
    assert loaded._state.adding is False and loaded._state.db == "default"
    # A loaded user saves like an ORM one: an update, not an insert.
    loaded.display_name = "Ada"
    loaded.save(update_fields=["display_name"])
    assert User.objects.get(pk=user.pk).display_name == "Ada"


def test_user_by_id_accepts_the_session_value_and_finds_nobody_for_a_missing_id():
    user = UserFactory()
    assert user_by_id(str(user.pk)) == user
    assert user_by_id(user.pk + 10_000) is None


def test_a_logged_in_session_ends_when_the_user_is_deactivated_or_deleted(client):
    user = UserFactory()
    client.force_login(user)
    assert client.get(reverse("profile")).status_code == 200

    User.objects.filter(pk=user.pk).update(is_active=False)
    assert client.get(reverse("profile")).status_code == 302

    User.objects.filter(pk=user.pk).update(is_active=True)
    assert client.get(reverse("profile")).status_code == 200
    user.delete()
    assert client.get(reverse("profile")).status_code == 302


def test_a_password_change_elsewhere_ends_the_session(client):
    user = UserFactory()
    client.force_login(user)
    user.set_password("another-long-passphrase")
    user.save()
    assert client.get(reverse("profile")).status_code == 302
