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
    assert rows[2].context == ""  # "A | 1" reads as data (a number where the row below has one), not a header


def _table_lines(title: str | None, rows: list[list[str]], lefts: list[float], top: float = 100,
                 align: str = "left", char: float = 10, height: float = 20) -> list[OcrLine]:
    """A table as OCR boxes: one box per cell, columns at `lefts` (cells aligned left, right or centre within the
    column's widest cell), rows 40 px apart, under an optional title in larger type."""
    out = [line(title, lefts[0], 20, lefts[0] + char * 1.5 * len(title), height=34)] if title else []
    widths = [max(len(r[k]) for r in rows) * char for k in range(len(lefts))]
    for n, cells in enumerate(rows):
        for k, text in enumerate(cells):
            x0 = lefts[k] + (widths[k] - len(text) * char) * {"left": 0, "centre": 0.5, "right": 1}[align]
            out.append(line(text, x0, top + 40 * n, x0 + len(text) * char, height=height))
    return out


def _merge(lines: list[OcrLine], *texts: str) -> list[OcrLine]:
    """The boxes of `texts` (adjacent cells of one row) read by OCR as one box."""
    parts = [ln for ln in lines if ln.text in texts]
    merged = OcrLine(" ".join(p.text for p in parts), min(p.confidence for p in parts),
                     (parts[0].box[0], min(p.box[1] for p in parts), parts[-1].box[2], max(p.box[3] for p in parts)))
    return [ln for ln in lines if ln.text not in texts] + [merged]


TABLE = [["Quarter", "City", "Cost", "Units"], ["Q1", "Houston", "2.4M", "182"], ["Q2", "Denver", "8.8M", "757"],
         ["Q3", "Chicago", "1.9M", "332"], ["Q4", "Phoenix", "9.1M", "632"]]


def test_a_header_and_cells_read_as_one_box_are_split_onto_the_columns_the_other_rows_set():
    lines = _table_lines("Project Numbers", TABLE, [60, 200, 340, 480])
    lines = _merge(_merge(lines, "Quarter", "City", "Cost", "Units"), "1.9M", "332")
    rows = screen_rows(lines)
    header = " | ".join(TABLE[0])
    assert [(r.text, r.context, r.table) for r in rows] == [
        ("Project Numbers", "", False), (header, "Project Numbers", True),
        *((" | ".join(cells), f"Project Numbers. {header}", True) for cells in TABLE[1:])]


@pytest.mark.parametrize("n_columns", [2, 3, 5])
@pytest.mark.parametrize("align", ["left", "right", "centre"])
@pytest.mark.parametrize("merged", [False, True])
def test_tables_of_two_to_five_columns_keep_their_cells_aligned_left_right_or_centre(n_columns, align, merged):
    table = [["Item", "Region", "Cost", "Units", "Share"][:n_columns]] + [
        [f"Part {n}", f"Zone {n}", f"{n}.5M", f"{n}21", f"{n}0%"][:n_columns] for n in range(1, 4)]
    lines = _table_lines("Inventory", table, [50 + 150 * k for k in range(n_columns)], align=align)
    if merged:  # the header as one box, and the last two cells of the middle row (of three or more)
        lines = _merge(lines, *table[0])
        lines = _merge(lines, *table[2][-2:]) if n_columns > 2 else lines
    rows = screen_rows(lines)
    header = " | ".join(table[0])
    assert [(r.text, r.context) for r in rows] == [("Inventory", ""), (header, "Inventory")] + [
        (" | ".join(cells), f"Inventory. {header}") for cells in table[1:]]


def test_a_table_without_a_header_has_only_the_title_as_context():
    table = [["Q1", "3.1M"], ["Q2", "3.8M"], ["Q3", "4.2M"]]
    rows = screen_rows(_table_lines("Costs", table, [60, 300]))
    assert [(r.text, r.context, r.table) for r in rows] == [("Costs", "", False)] + [
        (" | ".join(cells), "Costs", True) for cells in table]


def test_label_value_bullets_and_two_text_columns_are_not_tables():
    bullets = [line("Course logistics", 40, 20, 400, height=34),
               line("Submission deadline:", 40, 80, 250), line("May 6", 262, 80, 312),
               line("Room:", 40, 120, 95), line("204", 107, 120, 137),
               line("Exam length:", 40, 160, 160), line("90 minutes", 172, 160, 272)]
    rows = screen_rows(bullets)
    assert [(r.text, r.context, r.table) for r in rows] == [
        ("Course logistics", "", False), ("Submission deadline: May 6", "Course logistics", False),
        ("Room: 204", "Course logistics", False), ("Exam length: 90 minutes", "Course logistics", False)]
    left = ["Sensors drift as they warm up", "so measure the offset daily", "and log every reading you take"]
    right = ["Filters trade phase for gain", "so pick the order with care", "and test it on real signals"]
    columns = [line(text, 40, 100 + 40 * n, 40 + 10 * len(text)) for n, text in enumerate(left)]
    columns += [line(text, 480, 100 + 40 * n, 480 + 10 * len(text)) for n, text in enumerate(right)]
    assert [(r.text, r.table) for r in screen_rows(columns)] == [(f"{a} {b}", False) for a, b in zip(left, right)]


def test_a_table_between_bullets_ends_where_its_columns_end():
    lines = _table_lines("Budget", TABLE[:3], [60, 200, 340, 480], top=140)
    lines += [line("Figures are in US dollars", 60, 100, 310), line("Costs fell in spring", 60, 260, 250)]
    rows = screen_rows(lines)
    assert [(r.text, r.table) for r in rows] == [("Budget", False), ("Figures are in US dollars", False)] + [
        (" | ".join(cells), True) for cells in TABLE[:3]] + [("Costs fell in spring", False)]
    assert rows[-1].context == "Budget" and rows[3].context == "Budget. " + " | ".join(TABLE[0])


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


@pytest.fixture(scope="module")
def engine():
    from longwatch.pipeline.ocr import OcrEngine

    return OcrEngine(threads=2)


def _as_ingest_sees(slide) -> np.ndarray:
    """A lecture slide at the size ingest reads frames (448 px wide), through lossy compression like a video's."""
    import io

    from PIL import Image

    from longwatch.pipeline.config import PipelineConfig
    from longwatch.samples.lecture_slides import render_slide

    image = render_slide(slide)
    side = PipelineConfig().max_side
    buffer = io.BytesIO()
    image.resize((side, round(side * image.height / image.width)), Image.BILINEAR).save(buffer, "JPEG", quality=50)
    return np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"))


def _same_cells(got: str, want: str) -> bool:
    """Same cells in the same order; a cell may differ by an OCR misread letter or space ('Alanta', 'Boston.')."""
    import difflib

    def norm(text: str) -> str:
        return text.casefold().replace(" ", "").strip("·•.")

    got_cells, want_cells = got.split(" | "), want.split(" | ")
    return len(got_cells) == len(want_cells) and all(
        difflib.SequenceMatcher(None, norm(a), norm(b)).ratio() >= 0.8 for a, b in zip(got_cells, want_cells))


@pytest.mark.parametrize("seed, columns", [(1, 4), (6, 3), (9, 2)])
def test_lecture_table_slides_read_by_real_ocr_at_ingest_size_keep_rows_header_and_title(engine, seed, columns):
    from dataclasses import replace

    from longwatch.samples.lecture import plan_lecture

    slide = next(s for s in plan_lecture(3, seed).slides if s.table)
    slide = replace(slide, table=tuple(row[:columns] for row in slide.table), font=seed % 5, theme=seed % 6)
    rows = [r for r in screen_rows(engine.read(_as_ingest_sees(slide))) if r.table]
    header = " | ".join(slide.table[0])
    assert len(rows) == len(slide.table), [r.text for r in rows]
    for row, cells, context in zip(rows, slide.table, [slide.title] + [f"{slide.title} | {header}"] * 4):
        assert _same_cells(row.text, " | ".join(cells)), (row.text, cells)
        assert _same_cells(row.context.replace(". ", " | ", 1), context), (row.context, context)


def test_lecture_bullet_slide_read_by_real_ocr_is_rows_under_its_title_and_no_table(engine):
    from longwatch.samples.lecture import plan_lecture

    slide = next(s for s in plan_lecture(3, 2).slides if any(":" in b for b in s.bullets))
    rows = screen_rows(engine.read(_as_ingest_sees(slide)))
    assert _same_cells(rows[0].text, slide.title) and not any(r.table for r in rows)
    assert len(rows) == 1 + len(slide.bullets)
    for row, bullet in zip(rows[1:], slide.bullets):
        assert _same_cells(row.text, bullet) and row.context == rows[0].text, (row.text, row.context)
