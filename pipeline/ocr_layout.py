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
_COLUMN_GAP = 0.4  # ... and may separate table cells: narrow columns on a small frame sit ~0.5 heights apart
_ALIGN = 0.6  # text heights within which cell edges or centres count as one column
_CELL_WORDS = 3  # table cells are labels or values of a few words; rows of longer phrases are text columns
_TITLE_SCALE = 1.1  # the top row is the slide title when its text is at least this much taller than the rest
_TITLE_WIDTH = 1.2  # ... or nearly as tall (descenders and bullets stretch boxes) and this much wider
_TITLE_MIN_HEIGHT = 0.85  # "nearly as tall": a clean title's box can be this much lower than bullet boxes


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
    cells are joined with " | " and every row under the first gets that header row as context (unless the first
    row reads like data). A box spanning several columns (a header or cells OCR read as one) is split onto them
    by its words' positions. Rows of long phrases side by side are two text columns, not a table. A top row in
    larger type is the slide title, the context of every row below it.
    """
    if not lines:
        return []
    grouped = _group_rows(lines)
    rows = [_cells(row, _CELL_GAP) for row in grouped]
    pieces = [_cells(row, _COLUMN_GAP) for row in grouped]  # cells as a table would have them
    in_table = [False] * len(rows)
    header_of: dict[int, str] = {}
    for start, end, columns in _table_blocks(pieces, grouped):
        if start == 0 or not in_table[start - 1]:  # the last row of a table above is not this one's header
            start = _with_header(start, pieces, grouped, columns)
        table = [_fit(grouped[i], columns, _tolerance(pieces[i])) or pieces[i] for i in range(start, end)]
        if _is_prose(table):
            continue
        rows[start:end] = table
        in_table[start:end] = [True] * (end - start)
        if not _is_data(table[0], table[1]):
            header = CELL_SEPARATOR.join(c.text for c in table[0])
            header_of.update((i, header) for i in range(start + 1, end))
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


def _cells(row: list, gap: float) -> list[_Cell]:
    """A row's fragments, with those closer than `gap` text heights joined into one cell (a line OCR broke apart)."""
    height = statistics.median(_height(ln.box) for ln in row)
    cells = [_Cell(row[0].text, row[0].confidence, tuple(row[0].box), _height(row[0].box))]
    for line in row[1:]:
        last = cells[-1]
        if line.box[0] - last.box[2] <= gap * height:
            cells[-1] = _Cell(f"{last.text} {line.text}", min(last.confidence, line.confidence),
                              _union([last.box, line.box]), max(last.height, _height(line.box)))
        else:
            cells.append(_Cell(line.text, line.confidence, tuple(line.box), _height(line.box)))
    return cells


def _overlap(a0: float, a1: float, b0: float, b1: float) -> float:
    return min(a1, b1) - max(a0, b0)


def _column_of(box, columns: list[tuple[float, float]], tolerance: float) -> int | None:
    """The column a box lines up with: the one it overlaps most, else one whose left, centre or right edge is
    within tolerance of the box's."""
    x0, x1 = box[0], box[2]
    overlaps = [_overlap(x0, x1, c0, c1) for c0, c1 in columns]
    best = max(range(len(columns)), key=overlaps.__getitem__)
    if overlaps[best] > 0:
        return best
    for i, (c0, c1) in enumerate(columns):
        if min(abs(x0 - c0), abs(x1 - c1), abs((x0 + x1) / 2 - (c0 + c1) / 2)) <= tolerance:
            return i
    return None


def _spans(box, columns: list[tuple[float, float]]) -> bool:
    """Whether a box overlaps more than one column (cells OCR read as one box)."""
    return sum(_overlap(box[0], box[2], c0, c1) > 0 for c0, c1 in columns) > 1


def _tolerance(cells: list[_Cell]) -> float:
    return _ALIGN * statistics.median(c.height for c in cells)


def _aligned(cells: list[_Cell], columns: list[tuple[float, float]]) -> list[int] | None:
    """The column of each cell of a row when every cell sits in a different column of the table so far."""
    taken = [_column_of(c.box, columns, _tolerance(cells)) for c in cells]
    return taken if None not in taken and len(set(taken)) == len(taken) else None


def _words(row: list, columns: list[tuple[float, float]]) -> list[tuple[_Cell, bool]]:
    """A row's words, each placed within its OCR box in proportion to its character offset, and whether that box
    spans several columns (then it holds several cells; proportional fonts make the placement approximate, which
    column gaps of a text height or more absorb)."""
    words = []
    for line in row:
        x0, y0, x1, y1 = line.box
        per_char = (x1 - x0) / max(1, len(line.text))
        spanning = _spans(line.box, columns)
        offset = 0
        for word in line.text.split(" "):
            if word:
                box = (x0 + offset * per_char, y0, x0 + (offset + len(word)) * per_char, y1)
                words.append((_Cell(word, line.confidence, box, _height(line.box)), spanning))
            offset += len(word) + 1
    return words


def _fit(row: list, columns: list[tuple[float, float]], tolerance: float, strict: bool = False) -> list[_Cell] | None:
    """A row's words put onto the table's columns, one cell per column used, when every word lines up with a
    column (unless `strict`, a word of a box spanning columns may fall in a gap: it goes to the nearest), the
    columns run left to right and at least two are used; None otherwise."""
    placed: dict[int, list[_Cell]] = {}
    last = -1
    for word, spanning in _words(row, columns):
        k = _column_of(word.box, columns, tolerance)
        if k is None and spanning and not strict:  # an even spread of the box's text puts words by a wide gap into it
            k = min(range(len(columns)), key=lambda i: max(columns[i][0] - word.box[2], word.box[0] - columns[i][1]))
        if k is None or k < last:
            return None
        placed.setdefault(k, []).append(word)
        last = k
    if len(placed) < 2:
        return None
    return [_Cell(" ".join(w.text for w in ws), min(w.confidence for w in ws), _union([w.box for w in ws]),
                  max(w.height for w in ws)) for _, ws in sorted(placed.items())]


def _table_blocks(rows: list[list[_Cell]], grouped: list[list]) -> list[tuple[int, int, list[tuple[float, float]]]]:
    """[start, end) ranges of two or more consecutive multi-cell rows whose cells line up in columns, with the
    columns. A row with more cells than the columns so far sets the columns when the rows before fit them (the
    first row had cells OCR read as one box)."""
    blocks = []
    i = 0
    while i < len(rows):
        if len(rows[i]) < 2:
            i += 1
            continue
        columns = [(c.box[0], c.box[2]) for c in rows[i]]
        end = i + 1
        while end < len(rows) and len(rows[end]) >= 2:
            taken = _aligned(rows[end], columns)
            if taken is None and len(rows[end]) > len(columns):
                wider = [(c.box[0], c.box[2]) for c in rows[end]]
                if all(_fit(grouped[k], wider, _tolerance(rows[k])) for k in range(i, end)):
                    columns, taken = wider, list(range(len(wider)))
            if taken is None:
                break
            for cell, k in zip(rows[end], taken):  # a wider cell widens its column for the rows below
                if not _spans(cell.box, columns):
                    columns[k] = (min(columns[k][0], cell.box[0]), max(columns[k][1], cell.box[2]))
            end += 1
        if end - i >= 2:
            blocks.append((i, end, columns))
        i = end
    return blocks


def _is_prose(table: list[list[_Cell]]) -> bool:
    """Whether aligned rows are text columns side by side: in most rows even the shortest cell is a phrase (a
    table has a column of labels or values)."""
    return statistics.median(min(len(c.text.split()) for c in cells) for cells in table) > _CELL_WORDS


def _is_data(first: list[_Cell], second: list[_Cell]) -> bool:
    """Whether a table's first row is data rather than a header: numbers in the same columns as the row below."""
    def numeric(cells: list[_Cell]) -> list[bool]:
        return [any(ch.isdigit() for ch in c.text) for c in cells]

    return len(first) == len(second) and any(numeric(first)) and numeric(first) == numeric(second)


def _with_header(start: int, rows: list[list[_Cell]], grouped: list[list], columns) -> int:
    """The block's first row, moved up by one when the row above is its header read as fewer boxes than columns:
    its words line up with two or more columns and its text is no taller than the table's (a title is)."""
    above = start - 1
    if above < 0 or len(rows[above]) >= len(columns):
        return start
    tolerance = _tolerance(rows[start])
    gutter = min(b[0] - a[1] for a, b in zip(columns, columns[1:]))  # a header may be wider than its column's data
    if rows[above][0].box[0] < columns[0][0] - gutter or rows[above][-1].box[2] > columns[-1][1] + gutter:
        return start  # a title or a line wider than the table
    if statistics.median(c.height for c in rows[above]) >= _TITLE_SCALE * statistics.median(
            c.height for c in rows[start]):
        return start  # larger type (character widths say nothing here: one box over several cells spans the gaps)
    # strict: a line of text over the table has words in the gaps between columns; a header's words sit in them
    return above if _fit(grouped[above], columns, tolerance, strict=True) else start


def _char_width(cells: list[_Cell]) -> float:
    return sum(c.box[2] - c.box[0] for c in cells) / max(1, sum(len(c.text) for c in cells))


def _title_index(rows: list[list[_Cell]], in_table: list[bool]) -> int | None:
    """Index 0 when the top row is a title: one line, not in a table, in larger type than the rows below it.

    OCR box heights wander by a tenth or more between lines of one size, so type that is not clearly taller counts
    as larger when its characters are also clearly wider (the median over rows evens out narrow and wide letters).
    """
    if len(rows) < 2 or in_table[0] or len(rows[0]) != 1:
        return None
    height = rows[0][0].height / statistics.median(statistics.median(c.height for c in cells) for cells in rows[1:])
    width = _char_width(rows[0]) / statistics.median(_char_width(cells) for cells in rows[1:])
    return 0 if height >= _TITLE_SCALE or (height >= _TITLE_MIN_HEIGHT and width >= _TITLE_WIDTH) else None


def _joined(cells: list[_Cell], separator: str) -> str:
    return separator.join(c.text for c in cells)
