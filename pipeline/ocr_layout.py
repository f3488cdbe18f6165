"""Screen layout of one frame's OCR lines: rows in reading order, table rows rebuilt from box positions.

PP-OCR returns a box per text fragment: a table row comes back as one box per cell and a long line may come back
in pieces. Quoting a cell alone ("Q3") loses the fact; quoting its row with the header ("Q3 | 4.2M" under
"Quarter | Cost") keeps it. `screen_rows` is the `OcrLane(arrange=...)` hook that does this per frame.
"""

from __future__ import annotations

import statistics
from typing import NamedTuple

CELL_SEPARATOR = " | "  # between the cells of a rebuilt table row; OCR never reads this sequence off a slide
_ROW_OVERLAP = 0.5  # share of the shorter box's height two boxes must overlap vertically to sit on one row
_CELL_GAP = 0.8  # a horizontal gap wider than this many text heights separates cells (a word space is ~0.3)
_ALIGN = 0.6  # text heights within which cell edges or centres count as one column
_TITLE_SCALE = 1.1  # the top row is the slide title when its text is at least this much taller than the rest


class Row(NamedTuple):
    """One row of a screen: what `OcrLane` keeps as a line (.text, .confidence, .box) plus `context`, the text it
    sits under (the slide title; for a table row, also its header row), and whether it is a table row."""

    text: str
    confidence: float
    box: tuple[float, float, float, float]
    context: str = ""
    table: bool = False


def is_table_text(text: str) -> bool:
    """Whether a row's text was rebuilt from table cells (what `screen_rows` joins with CELL_SEPARATOR)."""
    return CELL_SEPARATOR in text


def screen_rows(lines: list) -> list[Row]:
    """Group one frame's OCR lines (.text, .confidence, .box = (x0, y0, x1, y1)) into rows, top to bottom.

    Boxes that overlap vertically form a row, read left to right; fragments closer than a word gap are one line
    broken by OCR and are joined with a space. Consecutive rows whose cells line up in columns are a table: their
    cells are joined with " | " and every row under the first gets that header row as context. A taller top row
    is the slide title, the context of every row below it.
    """
    if not lines:
        return []
    rows = [_cells(row) for row in _group_rows(lines)]
    in_table = [False] * len(rows)
    header_of: dict[int, str] = {}
    for start, end in _table_blocks(rows):
        header = CELL_SEPARATOR.join(c.text for c in rows[start])
        for i in range(start, end):
            in_table[i] = True
            if i > start:
                header_of[i] = header
    title_index = _title_index(rows, in_table)
    title = _joined(rows[title_index], " ") if title_index is not None else ""
    out = []
    for i, cells in enumerate(rows):
        text = _joined(cells, CELL_SEPARATOR if in_table[i] else " ")
        above = title if title_index is not None and i > title_index else ""
        context = ". ".join(p for p in (above, header_of.get(i, "")) if p)
        out.append(Row(text, min(c.confidence for c in cells), _union([c.box for c in cells]), context, in_table[i]))
    return out


def _height(box) -> float:
    return max(1.0, box[3] - box[1])


def _union(boxes) -> tuple[float, float, float, float]:
    return (min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes))


def _group_rows(lines: list) -> list[list]:
    """Lines grouped by vertical overlap, rows top to bottom, each row's lines left to right."""
    rows: list[list] = []
    for line in sorted(lines, key=lambda ln: (ln.box[1] + ln.box[3]) / 2):
        if rows:
            row_box = _union([ln.box for ln in rows[-1]])
            overlap = min(row_box[3], line.box[3]) - max(row_box[1], line.box[1])
            if overlap >= _ROW_OVERLAP * min(_height(row_box), _height(line.box)):
                rows[-1].append(line)
                continue
        rows.append([line])
    return [sorted(row, key=lambda ln: ln.box[0]) for row in rows]


class _Cell(NamedTuple):
    text: str
    confidence: float
    box: tuple[float, float, float, float]
    height: float  # the tallest fragment's text height (the joined box also spans their vertical offsets)


def _cells(row: list) -> list[_Cell]:
    """A row's fragments, with those closer than a word gap joined into one cell (a line OCR broke apart)."""
    height = statistics.median(_height(ln.box) for ln in row)
    cells = [_Cell(row[0].text, row[0].confidence, tuple(row[0].box), _height(row[0].box))]
    for line in row[1:]:
        last = cells[-1]
        if line.box[0] - last.box[2] <= _CELL_GAP * height:
            cells[-1] = _Cell(f"{last.text} {line.text}", min(last.confidence, line.confidence),
                              _union([last.box, line.box]), max(last.height, _height(line.box)))
        else:
            cells.append(_Cell(line.text, line.confidence, tuple(line.box), _height(line.box)))
    return cells


def _column_of(cell: _Cell, columns: list[tuple[float, float]], tolerance: float) -> int | None:
    """The column a cell lines up with: overlapping x-ranges, or left, centre or right edges within tolerance."""
    x0, x1 = cell.box[0], cell.box[2]
    for i, (c0, c1) in enumerate(columns):
        if min(x1, c1) - max(x0, c0) > 0 or min(abs(x0 - c0), abs(x1 - c1),
                                                 abs((x0 + x1) / 2 - (c0 + c1) / 2)) <= tolerance:
            return i
    return None


def _aligned(cells: list[_Cell], columns: list[tuple[float, float]]) -> list[int] | None:
    """The column of each cell of a row when every cell sits in a different column of the table so far."""
    tolerance = _ALIGN * statistics.median(c.height for c in cells)
    taken = [_column_of(c, columns, tolerance) for c in cells]
    return taken if None not in taken and len(set(taken)) == len(taken) else None


def _table_blocks(rows: list[list[_Cell]]) -> list[tuple[int, int]]:
    """[start, end) ranges of two or more consecutive multi-cell rows whose cells line up in columns."""
    blocks = []
    i = 0
    while i < len(rows):
        if len(rows[i]) < 2:
            i += 1
            continue
        columns = [(c.box[0], c.box[2]) for c in rows[i]]
        end = i + 1
        while end < len(rows) and len(rows[end]) >= 2 and (taken := _aligned(rows[end], columns)) is not None:
            for cell, k in zip(rows[end], taken):  # a wider cell widens its column for the rows below
                columns[k] = (min(columns[k][0], cell.box[0]), max(columns[k][1], cell.box[2]))
            end += 1
        if end - i >= 2:
            blocks.append((i, end))
        i = end
    return blocks


def _title_index(rows: list[list[_Cell]], in_table: list[bool]) -> int | None:
    """Index 0 when the top row is a title: one line, not in a table, taller than the median row below it."""
    if len(rows) < 2 or in_table[0] or len(rows[0]) != 1:
        return None
    below = statistics.median(statistics.median(c.height for c in cells) for cells in rows[1:])
    return 0 if rows[0][0].height >= _TITLE_SCALE * below else None


def _joined(cells: list[_Cell], separator: str) -> str:
    return separator.join(c.text for c in cells)
