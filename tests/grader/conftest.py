from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _media_root(settings, tmp_path):
    # Dataset files go to a throwaway folder, never into var/.
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT
