from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.urls import reverse

from tests.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.django_db
User = get_user_model()


def test_sign_up_logs_the_new_user_in(client):
    response = client.post(
        reverse("signup"),
        {
            "username": "ada",
            "display_name": "Ada L.",
            "email": "Ada@Example.com",
            "password1": "a-long-unusual-passphrase",
            "password2": "a-long-unusual-passphrase",
        },
    )

    assert response.status_code == 302
    user = User.objects.get(username="ada")
    assert user.email == "ada@example.com" and user.public_name == "Ada L."
    assert client.get(reverse("home")).context["user"] == user


def test_sign_up_refuses_a_taken_email_and_weak_passwords(client):
    UserFactory(email="taken@example.com")
    response = client.post(
        reverse("signup"),
        {"username": "bob", "email": "TAKEN@example.com", "password1": "123", "password2": "123"},
    )
    assert response.status_code == 200
    assert b"already exists" in response.content
    assert b"too short" in response.content
    assert not User.objects.filter(username="bob").exists()


def test_log_in_and_out(client):
    user = UserFactory(username="carol")
    response = client.post(reverse("login"), {"username": "carol", "password": PASSWORD})
    assert response.status_code == 302
    assert client.get(reverse("home")).context["user"] == user

    client.post(reverse("logout"))
    assert not client.get(reverse("home")).context["user"].is_authenticated


def test_wrong_password_is_refused(client):
    UserFactory(username="dave")
    response = client.post(reverse("login"), {"username": "dave", "password": "nope"})
    assert response.status_code == 200
    assert not response.context["user"].is_authenticated


def test_profile_changes_the_display_name(client):
    user = UserFactory()
    client.force_login(user)
    client.post(reverse("profile"), {"display_name": "  Grace   Hopper ", "email": user.email})
    user.refresh_from_db()
    assert user.display_name == "Grace Hopper"


def test_password_change(client):
    user = UserFactory()
    client.force_login(user)
    response = client.post(
        reverse("password_change"),
        {
            "old_password": PASSWORD,
            "new_password1": "another-long-passphrase",
            "new_password2": "another-long-passphrase",
        },
    )
    assert response.status_code == 302
    user.refresh_from_db()
    assert user.check_password("another-long-passphrase")


def test_password_reset_by_email(client):
    user = UserFactory(email="erin@example.com")

    client.post(reverse("password_reset"), {"email": "erin@example.com"})

    assert len(mail.outbox) == 1
    link = re.search(r"https?://[^/\s]+(/accounts/reset/\S+/)", mail.outbox[0].body).group(1)
    form_url = client.get(link).url  # Django swaps the token for a session marker
    client.post(
        form_url,
        {"new_password1": "a-fresh-passphrase-1", "new_password2": "a-fresh-passphrase-1"},
    )
    user.refresh_from_db()
    assert user.check_password("a-fresh-passphrase-1")


def test_profile_needs_login(client):
    response = client.get(reverse("profile"))
    assert response.status_code == 302 and response.url.startswith(reverse("login"))
