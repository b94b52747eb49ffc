from __future__ import annotations


def format_number(value: float) -> str:
    """A float as a person would write it back: 12 rather than 12.0, and no binary noise."""
    return f"{value:.15g}"
