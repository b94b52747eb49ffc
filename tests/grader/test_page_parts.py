"""The grader pages' fragments drawn for one response share its language and time zone."""

from __future__ import annotations

from datetime import UTC, datetime

from django.utils import timezone

from grader.leaderboards import LeaderboardRow
from grader.views import LEADERBOARD_ROW
from topdown import fragments

ROW = LeaderboardRow(
    position=1,
    score=0.9,
    name="Ada",
    rank=1,
    submitted_at=datetime(2026, 1, 15, 10, 30, tzinfo=UTC),
)


def test_a_renderer_draws_what_render_fragment_draws():
    context = {"row": ROW, "revealed": False, "pinned": False}

    assert fragments.Renderer().fragment(LEADERBOARD_ROW, **context) == (
        fragments.render_fragment(LEADERBOARD_ROW, **context)
    )
    assert fragments.Renderer().fragments(LEADERBOARD_ROW, [context, context]) == (
        fragments.render_fragments(LEADERBOARD_ROW, [context, context])
    )


def test_a_renderer_made_in_another_time_zone_draws_its_times():
    context = {"row": ROW, "revealed": False, "pinned": False}
    in_utc = fragments.Renderer().fragment(LEADERBOARD_ROW, **context)

    with timezone.override("Europe/Paris"):
        in_paris = fragments.Renderer().fragment(LEADERBOARD_ROW, **context)

    assert "15 Jan, 10:30" in in_utc
    assert "15 Jan, 11:30" in in_paris
