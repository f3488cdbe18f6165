"""Screen layout: one frame's OCR boxes become rows in reading order, table rows keep their cells and header.

Synthetic boxes pin the rules; a slide rendered with PIL and read by the real OcrEngine shows they hold on real OCR.
"""

from __future__ import annotations

import numpy as np
import pytest

from longwatch.pipeline.ocr import OcrLine
from longwatch.pipeline.ocr_layout import Row, is_table_text, screen_rows


def line(text: str, x0: float, y0: float, x1: float, height: float = 20, confidence: float = 0.9) -> OcrLine:
    return OcrLine(text, confidence, (x0, y0, x1, y0 + height))


def test_a_table_is_rebuilt_row_by_row_under_its_header_and_the_title():
    lines = [  # shuffled: OCR's own order is not trusted
        line("Q3", 60, 182, 90), line("4.2M", 300, 180, 350), line("Quarterly costs", 40, 20, 330, height=34),
        line("Quarter", 60, 100, 150), line("Cost", 300, 102, 345), line("Q1", 60, 140, 88, confidence=0.8),
        line("3.1M", 300, 141, 348), line("Costs rose every quarter", 40, 240, 330),
    ]
    rows = screen_rows(lines)
    assert [r.text for r in rows] == ["Quarterly costs", "Quarter | Cost", "Q1 | 3.1M", "Q3 | 4.2M",
                                      "Costs rose every quarter"]
    title, header, q1, q3, bullet = rows
    assert title.context == "" and not title.table
    assert header.context == "Quarterly costs" and header.table
    assert q3.context == "Quarterly costs. Quarter | Cost" and q3.table and is_table_text(q3.text)
    assert bullet.context == "Quarterly costs" and not bullet.table and not is_table_text(bullet.text)
    assert q1.confidence == pytest.approx(0.8) and q1.box == (60, 140, 348, 161)


def test_a_line_broken_by_ocr_is_joined_with_a_space_and_same_size_text_has_no_title():
    rows = screen_rows([line("Flight QX2207", 40, 50, 200), line("now boarding", 212, 52, 350),
                        line("Gate 14", 40, 100, 130)])
    assert [(r.text, r.context, r.table) for r in rows] == [("Flight QX2207 now boarding", "", False),
                                                            ("Gate 14", "", False)]


def test_one_multi_cell_row_alone_is_not_a_table_and_misaligned_rows_end_it():
    rows = screen_rows([line("Left note", 20, 10, 120), line("Right note", 400, 10, 520),
                        line("A", 20, 60, 40), line("1", 200, 60, 215),
                        line("B", 20, 90, 40), line("2", 200, 90, 215),
                        line("wide", 90, 120, 130), line("x", 500, 120, 515)])
    assert [r.text for r in rows] == ["Left note Right note", "A | 1", "B | 2", "wide x"]
    assert [r.table for r in rows] == [False, True, True, False]
    assert rows[2].context == "A | 1"


def test_empty_frame_and_row_type_fit_the_ocr_lane_hook():
    assert screen_rows([]) == []
    row = screen_rows([line("Only line", 0, 0, 100)])[0]
    assert isinstance(row, Row) and (row.text, row.confidence, row.context) == ("Only line", 0.9, "")


def _slide() -> np.ndarray:
    from longwatch.samples.videos import draw_text

    image = np.full((360, 640, 3), 250, np.uint8)
    ink = (10, 10, 10)
    image = draw_text(image, "Quarterly costs", xy=(40, 24), font_size=36, fg=ink, box=None)
    for y, (left, right) in zip((100, 145, 190, 235), (("Quarter", "Cost"), ("Q2", "3.8M"), ("Q3", "4.2M"),
                                                       ("Q4", "5.0M"))):
        image = draw_text(image, left, xy=(60, y), font_size=24, fg=ink, box=None)
        image = draw_text(image, right, xy=(330, y), font_size=24, fg=ink, box=None)
    return draw_text(image, "Costs rose every quarter", xy=(40, 300), font_size=24, fg=ink, box=None)


def test_a_rendered_slide_read_by_real_ocr_keeps_each_table_row_whole():
    from longwatch.pipeline.ocr import OcrEngine

    rows = screen_rows(OcrEngine(threads=2).read(_slide()))
    by_text = {r.text: r for r in rows}
    print([(r.text, r.context) for r in rows])
    assert "Q3 | 4.2M" in by_text, [r.text for r in rows]
    q3 = by_text["Q3 | 4.2M"]
    assert q3.table and q3.context == "Quarterly costs. Quarter | Cost"
    assert [r.text for r in rows][0] == "Quarterly costs"
    assert by_text["Costs rose every quarter"].context == "Quarterly costs"
    assert [r.text for r in rows].index("Q2 | 3.8M") < [r.text for r in rows].index("Q3 | 4.2M")
