"""The SVG chart of a phrase's series: valid, escaped, self-contained."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from papertide.charts import svg_chart

SVG = "{http://www.w3.org/2000/svg}"
POINTS = [("2024-W01", 2, 10_000), ("2024-W02", 0, 0), ("2024-W03", 5, 12_000), ("2024-W04", 40, 11_000)]


def test_chart_is_valid_svg_with_the_title_escaped():
    points = POINTS
    title = 'Rise of "<state> & space" \x01'
    svg = svg_chart(points, title=title)
    root = ET.fromstring(svg)
    assert root.tag == SVG + "svg"
    assert root.find(SVG + "title").text.startswith('Rise of "<state> & space"')
    bars = root.findall(SVG + "rect")
    assert len(bars) == len(points)
    heights = [float(b.get("height")) for b in bars]
    assert heights.index(max(heights)) == len(points) - 1  # the last week is the highest
    assert "<script" not in svg and "http" not in svg.replace("http://www.w3.org/2000/svg", "")
    counts = ET.fromstring(svg_chart(points, value="count"))
    assert len(counts.findall(SVG + "rect")) == len(points)
    assert ET.fromstring(svg_chart([])).find(SVG + "title").text == "phrase frequency"
    with pytest.raises(ValueError, match="rate, count"):
        svg_chart(points, value="share")
