from __future__ import annotations

import pytest
from django.contrib import admin
from django.core.management import call_command
from django.urls import reverse

from tests.factories import UserFactory

APPS = {"accounts", "courses", "grader"}


@pytest.mark.django_db
def test_every_model_is_in_the_admin_and_its_pages_load(client, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"  # demo_load registers the built-in datasets
    call_command("demo_load")
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    registered = {model for model in admin.site._registry if model._meta.app_label in APPS}
    from django.apps import apps

    ours = {m for app in APPS for m in apps.get_app_config(app).get_models()}
    assert ours <= registered, ours - registered

    for model in ours:
        meta = model._meta
        changelist = reverse(f"admin:{meta.app_label}_{meta.model_name}_changelist")
        assert client.get(changelist).status_code == 200, changelist
        obj = model.objects.first()
        if obj is not None:
            change = reverse(f"admin:{meta.app_label}_{meta.model_name}_change", args=[obj.pk])
            assert client.get(change).status_code == 200, change
