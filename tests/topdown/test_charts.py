"""Server-drawn SVG charts: what they draw, and that nothing in them can run or style inline."""

from __future__ import annotations

import math
from array import array

import numpy as np
from lxml import etree

from topdown import charts
from topdown.charts import Marker, Series

SVG = "{http://www.w3.org/2000/svg}"
HOSTILE = '<script>alert(1)</script>" onload="alert(2)'


def parse(markup: str) -> etree._Element:
    return etree.fromstring(markup.encode())


def assert_inert(root: etree._Element) -> None:
    for element in root.iter():
        assert not str(element.tag).endswith("script")
        for name in element.attrib:
            assert not name.startswith("on") and name != "style", (element.tag, name)


def test_ticks_are_round_numbers_that_cover_the_range():
    assert charts.nice_ticks(0.13, 0.97) == [0.2, 0.4, 0.6, 0.8]
    assert charts.nice_ticks(0, 1000) == [0, 200, 400, 600, 800, 1000]
    assert charts.nice_ticks(5, 5) == [5]
    assert charts.nice_ticks(math.nan, 1) == []


def test_a_line_chart_draws_each_series_and_marks_reference_values():
    root = parse(
        charts.line_chart(
            [Series("train", [(1, 0.5), (2, 0.7), (3, math.nan)]), Series("valid", [(1, 0.4)])],
            x_label="epoch",
            y_label="accuracy",
            markers=[Marker("baseline", 0.6)],
        )
    )
    lines = root.findall(f".//{SVG}polyline")
    assert [len(line.get("points").split()) for line in lines] == [2, 1]  # NaN dropped
    assert root.findall(f".//{SVG}line[@class='chart-marker']")
    texts = [t.text for t in root.iter(f"{SVG}text")]
    assert {"epoch", "accuracy", "baseline", "train", "valid"} <= set(texts)
    assert root.get("role") == "img" and root.get("aria-label") == "accuracy by epoch"
    assert_inert(root)


def test_nothing_to_draw_draws_nothing():
    assert charts.line_chart([Series("a", [])], x_label="x", y_label="y") == ""
    assert charts.histogram([math.inf], x_label="x") == ""
    assert charts.heatmap([[1, 2]], row_labels=["a", "b"], column_labels=["a", "b"]) == ""


def test_a_histogram_counts_values_into_bins():
    root = parse(
        charts.histogram(
            [0.1, 0.12, 0.5, 0.9, 0.91, 0.92],
            x_label="score",
            bins=4,
            markers=[Marker("pixels", 0.8)],
            highlight=0.5,
        )
    )
    bars = root.findall(f".//{SVG}rect[@class='chart-bar']")
    counts = sorted(int(bar.find(f"{SVG}title").text.split()[0]) for bar in bars)
    assert counts == [1, 2, 3]
    assert root.findall(f".//{SVG}line[@class='chart-highlight']")


def test_a_histogram_of_an_array_draws_what_the_same_list_draws():
    scores = [0.1, 0.12, 0.5, 0.9, 0.91, 0.92, 1.0]
    drawn = {
        "list": charts.histogram(scores, x_label="score", markers=[Marker("pixels", 0.8)]),
        "array": charts.histogram(
            array("d", scores), x_label="score", markers=[Marker("pixels", 0.8)]
        ),
        "numpy": charts.histogram(
            np.array(scores), x_label="score", markers=[Marker("pixels", 0.8)]
        ),
        # Anything that is not a finite number is left out.
        "mixed": charts.histogram(
            [*scores, math.nan, math.inf, None, "0.5"],
            x_label="score",
            markers=[Marker("pixels", 0.8)],
        ),
    }

    assert len(set(drawn.values())) == 1
    bars = parse(drawn["list"]).findall(f".//{SVG}rect[@class='chart-bar']")
    assert sum(int(bar.find(f"{SVG}title").text.split()[0]) for bar in bars) == 7


def test_a_heatmap_shades_by_share_of_the_row_and_tells_mistakes_apart():
    root = parse(
        charts.heatmap([[8, 2], [0, 10]], row_labels=["cat", "dog"], column_labels=["cat", "dog"])
    )
    cells = root.findall(f".//{SVG}rect")
    classes = [cell.get("class") for cell in cells]
    assert classes == [
        "chart-heat-7 chart-cell-diagonal",  # 80 % of the row
        "chart-heat-2 chart-cell-off",  # 20 %: a mistake
        "chart-heat-0 chart-cell-off",
        "chart-heat-8 chart-cell-diagonal",
    ]
    assert cells[1].find(f"{SVG}title").text == "true cat, predicted dog: 2 (20% of the row)"


def test_labels_from_users_are_escaped():
    for markup in (
        charts.line_chart([Series(HOSTILE, [(1, 1)])], x_label=HOSTILE, y_label=HOSTILE),
        charts.histogram([1.0, 2.0], x_label=HOSTILE, markers=[Marker(HOSTILE, 1.5)]),
        charts.heatmap([[1]], row_labels=[HOSTILE], column_labels=[HOSTILE], title=HOSTILE),
    ):
        root = parse(markup)
        assert_inert(root)
        assert HOSTILE in "".join(root.itertext())
