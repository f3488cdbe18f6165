"""Cheap change detection on sampled frames: is there text the last read frame did not have, and did a picture change?

Everything here works on a 320-px-wide grayscale copy (a few milliseconds a frame), so it can run on every sampled
frame and decide which frames the expensive readers (OCR, the vision tower, the captioner) see at all.

Text is decided by text regions, not pixels: a moving camera changes almost every pixel while a burned-in caption
stays put, so a frame counts as new for text only when a region where text was read changed, or when a new
text-like region (a row of dense strokes) appeared and held still for two sampled frames.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

EDGE_WIDTH = 320  # a 20-px caption on a 640-px frame stays ~10 px tall here: its strokes still make edges
CELL = 8          # edge pixels are compared per 8x8 cell of the 320-px copy


@dataclass
class EdgeFrame:
    """A frame reduced to what change detection needs."""

    edges: np.ndarray   # [H', W'] bool: strong gradients of the 320-px-wide grayscale copy
    upright: np.ndarray  # [H', W'] bool: strong left-right gradients, the sides of upright strokes
    near: np.ndarray    # edges grown by one pixel, so codec jitter of a stroke is not a change
    scale: float        # source pixels per edge-map pixel


def edge_frame(image: np.ndarray, edge_threshold: float = 0.15) -> EdgeFrame:
    """The `EdgeFrame` of one RGB image [H, W, 3] uint8."""
    from PIL import Image

    gray = Image.fromarray(image).convert("L")
    h, w = image.shape[:2]
    ew, eh = EDGE_WIDTH, max(CELL, round(EDGE_WIDTH * h / w))
    g = np.asarray(gray.resize((ew, eh), Image.BILINEAR), dtype=np.float32) / 255.0
    gx = np.abs(np.diff(g, axis=1))[:-1, :]
    gy = np.abs(np.diff(g, axis=0))[:, :-1]
    edges = (gx + gy) > edge_threshold
    near = edges.copy()
    near[1:] |= edges[:-1]
    near[:-1] |= edges[1:]
    grown = near.copy()
    near[:, 1:] |= grown[:, :-1]
    near[:, :-1] |= grown[:, 1:]
    return EdgeFrame(edges=edges, upright=gx > edge_threshold / 2, near=near, scale=w / ew)


def _per_cell(mask: np.ndarray) -> np.ndarray:
    """Count of True pixels in each CELL x CELL block (the ragged right and bottom edges dropped)."""
    h, w = (mask.shape[0] // CELL) * CELL, (mask.shape[1] // CELL) * CELL
    return mask[:h, :w].reshape(h // CELL, CELL, w // CELL, CELL).sum(axis=(1, 3))


def changed_cells(a: EdgeFrame, b: EdgeFrame, min_pixels: int = 6) -> np.ndarray:
    """[rows, cols] bool: cells where at least `min_pixels` edge pixels of one frame have no edge near them in the
    other (a stroke that appeared, vanished or moved more than a pixel)."""
    return (_per_cell(a.edges & ~b.near) >= min_pixels) | (_per_cell(b.edges & ~a.near) >= min_pixels)


def _runs(mask: np.ndarray, min_run: int) -> np.ndarray:
    """Cells that belong to a horizontal run of at least `min_run` True cells: the shape a line of text makes."""
    if min_run <= 1:
        return mask.copy()
    # A window of `min_run` cells all True marks its cells; the union of such windows is the runs.
    n = mask.shape[1] - min_run + 1
    if n <= 0:
        return np.zeros_like(mask)
    full = np.ones((mask.shape[0], n), bool)
    for k in range(min_run):
        full &= mask[:, k:k + n]
    out = np.zeros_like(mask)
    for k in range(min_run):
        out[:, k:k + n] |= full
    return out


def _column_runs(mask: np.ndarray) -> np.ndarray:
    """For each True cell, the length of the vertical run of True cells it belongs to (0 elsewhere)."""
    down = np.zeros(mask.shape, np.int32)
    up = np.zeros(mask.shape, np.int32)
    for r in range(mask.shape[0]):
        down[r] = (down[r - 1] + 1 if r else 1) * mask[r]
    for r in range(mask.shape[0] - 1, -1, -1):
        up[r] = (up[r + 1] + 1 if r + 1 < mask.shape[0] else 1) * mask[r]
    return np.where(mask, down + up - 1, 0)


@dataclass(frozen=True)
class GateDecision:
    """Whether to read a frame, and why; `since` is when a newly appeared text was already on screen (the previous
    sampled frame held it still), `region` where, in source pixels (x0, y0, x1, y1). `strips`, when set, are the
    only parts of the frame (full-width bands y0, y1) where text may be new: the rest holds the same text as before,
    so a reader may look there first and read the whole frame only when a strip shows new text."""

    read: bool
    reason: str
    since: float | None = None
    region: tuple[float, float, float, float] | None = None
    strips: list[tuple[int, int]] | None = None


@dataclass
class TextGate:
    """Decides which sampled frames may show text the last read frame did not; feed frames in time order.

    Args:
        min_changed_cells: on a still picture, changed 8x8 cells side by side that make new text (two: "B4").
        moving_fraction: share of cells changed since the previous sampled frame above which the camera or the
            scene is moving; then only text regions count, not pixels.
        min_text_density: share of a cell's pixels that are edges for it to look like text strokes.
        min_run: cells in a row that make a text line (4 cells are ~45 px of a 448-px frame: four letters).
        max_line_cells: on moving pictures, the tallest block of such rows (in cells) that still counts as text:
            4 cells are ~45 px of a 448-px frame, two subtitle lines; a taller block is a textured object.
        refresh_seconds: while the picture differs from the last frame read, read at least this often anyway, so
            scene text that moves with the camera (a sign, a number on a shirt) is still read now and then; None:
            never.
    """

    min_changed_cells: int = 2
    moving_fraction: float = 0.2
    min_text_density: float = 0.1
    min_run: int = 4
    max_line_cells: int = 4
    refresh_seconds: float | None = 10.0
    _ref: EdgeFrame | None = field(default=None, repr=False)
    _ref_t: float = field(default=-np.inf, repr=False)
    _prev: EdgeFrame | None = field(default=None, repr=False)
    _prev_t: float = field(default=-np.inf, repr=False)
    _strokes: np.ndarray | None = field(default=None, repr=False)  # edge pixels of the text read in the reference
    _boxes: list = field(default_factory=list, repr=False)  # where that text is, in source pixels

    def decide(self, image: np.ndarray, t: float, force: bool = False) -> GateDecision:
        """Look at one sampled frame; a frame decided `read=True` becomes the reference the next frames match.
        `force`: the caller reads this frame anyway (its picture changed), so it becomes the reference."""
        frame = edge_frame(image)
        prev, prev_t = self._prev, self._prev_t
        self._prev, self._prev_t = frame, t
        ref = self._ref
        if ref is None or frame.edges.shape != ref.edges.shape or force:
            return self._read(frame, t, "first" if ref is None else "size" if not force else "forced")
        vs_ref = changed_cells(frame, ref)
        moving = prev is not None and prev.edges.shape == frame.edges.shape and \
            float(changed_cells(frame, prev).mean()) > self.moving_fraction
        # Text read in the reference that lost half of its strokes in some cell: it changed or went away. Only the
        # strokes inside the boxes count: background seen around or between outlined letters may move.
        if self._strokes is not None:
            lost = _per_cell(self._strokes & ~frame.near)
            total = _per_cell(self._strokes)
            if ((total >= 6) & (lost >= np.maximum(4, total // 2))).any():
                return self._read(frame, t, "text changed")
        # What differs from the reference and has held still since the previous frame: a change that settled.
        # Text that just appeared is read one frame later but dated from the frame before, when it was already
        # there; what keeps changing (a walking speaker, a panning camera) never settles and is not read.
        settled = self._settled(frame, prev, vs_ref)
        if moving:
            # On moving pictures only rows of strokes a few cells tall count: text lines, not a textured object
            # that happened to hold still for a second.
            settled = _runs(settled, self.min_run)
            settled &= _column_runs(settled) <= self.max_line_cells
        else:  # a still picture: any stroke row, however short ("B4") or tall (a paragraph on a slide)
            settled = _runs(settled, self.min_changed_cells)
        if settled.any():
            return self._read(frame, t, "new text", since=prev_t, region=self._box(settled, frame),
                              strips=self._strips(settled, frame, image.shape[0]))
        if self.refresh_seconds is not None and t - self._ref_t >= self.refresh_seconds and \
                int(vs_ref.sum()) >= self.min_changed_cells:
            return self._read(frame, t, "refresh")
        return GateDecision(False, "same text")

    def _strips(self, cells: np.ndarray, frame: EdgeFrame, height: int) -> list[tuple[int, int]]:
        """Full-width bands (a line is never cut) around each group of rows of `cells`, with two cells of margin
        and grown to take in whole any known line they touch."""
        rows = np.nonzero(cells.any(axis=1))[0]
        m, s = 2 * CELL * frame.scale, CELL * frame.scale
        bands: list[list[float]] = []
        for r in rows:
            y0, y1 = max(0.0, r * s - m), min(float(height), (r + 1) * s + m)
            if bands and y0 <= bands[-1][1]:
                bands[-1][1] = y1
            else:
                bands.append([y0, y1])
        for band in bands:
            for box in self._boxes:
                if box[1] < band[1] and band[0] < box[3]:
                    band[0], band[1] = min(band[0], box[1]), max(band[1], box[3])
        return [(max(0, int(y0) - 1), min(height, int(np.ceil(y1)) + 1)) for y0, y1 in bands]

    def read_boxes(self, boxes: list[tuple[float, float, float, float]], whole: bool = True) -> None:
        """Where the reader found text in the frame just read (source pixels): these strokes are watched. `whole`
        False: only strips were read and found nothing new, so the text known before is watched on."""
        ref = self._ref
        if not whole:
            boxes = self._boxes + list(boxes)
        self._boxes = list(boxes)
        inside = np.zeros_like(ref.edges)
        h, w = inside.shape
        for x0, y0, x1, y1 in boxes:
            # A reader's box pads the text a little; trim it so the margin's background is not watched.
            pad_y = 0.15 * (y1 - y0)
            r0, r1 = int((y0 + pad_y) / ref.scale), int(np.ceil((y1 - pad_y) / ref.scale))
            c0, c1 = int(x0 / ref.scale) + 1, int(np.ceil(x1 / ref.scale)) - 1
            inside[max(0, r0):min(h, r1), max(0, c0):min(w, c1)] = True
        self._strokes = ref.edges & inside if inside.any() else None

    def _settled(self, frame: EdgeFrame, prev: EdgeFrame | None, vs_ref: np.ndarray) -> np.ndarray:
        """Text-dense cells that differ from the reference and did not change since the previous frame."""
        if prev is None or prev.edges.shape != frame.edges.shape:
            return np.zeros_like(vs_ref)
        # Letters have upright strokes; a horizontal line (a horizon, a shelf) has none, and under a sideways pan it
        # looks still while everything around it moves.
        dense = (_per_cell(frame.edges) >= self.min_text_density * CELL * CELL) & \
            (_per_cell(frame.upright) >= self.min_text_density * CELL * CELL / 2)
        return vs_ref & dense & ~changed_cells(frame, prev)

    def _box(self, cells: np.ndarray, frame: EdgeFrame) -> tuple[float, float, float, float]:
        rows, cols = np.nonzero(cells)
        s = frame.scale * CELL
        return (float(cols.min() * s), float(rows.min() * s), float((cols.max() + 1) * s), float((rows.max() + 1) * s))

    def _read(self, frame: EdgeFrame, t: float, reason: str, since: float | None = None,
              region: tuple[float, float, float, float] | None = None,
              strips: list[tuple[int, int]] | None = None) -> GateDecision:
        self._ref, self._ref_t = frame, t
        return GateDecision(True, reason, since, region, strips)


class PictureGate:
    """Whether a frame shows what the last frame looked at showed: a close thumbnail and no new text. Then what a
    reader made of that frame (vision tokens, a caption) can stand for this one; feed frames in time order.

    Args:
        max_distance: mean thumbnail change (0-1) still counted as the same picture; 0.02 lets a small speaker
            pace in front of a slide (a few percent of the frame) but not a cut, a pan or a new slide.
    """

    def __init__(self, max_distance: float = 0.02):
        self.max_distance = max_distance
        self._text = TextGate(refresh_seconds=None)
        self._thumb: np.ndarray | None = None

    def same(self, image: np.ndarray, t: float) -> bool:
        """True when `image` looks like the last frame looked at; otherwise it becomes that frame."""
        thumb = thumbnail(image)
        close = self._thumb is not None and thumb.shape == self._thumb.shape and \
            float(np.abs(thumb - self._thumb).mean()) <= self.max_distance
        if self._text.decide(image, t, force=not close).read:
            self._thumb = thumb
            return False
        return True


LOOK_WIDTH = 16  # a look is a 16-cell-wide grid: coarse enough to store with every clip, fine enough for a cut


def look(image: np.ndarray) -> str:
    """What a picture looks like, small enough to store with a clip: on a 16-cell-wide grid, the mean gray and the
    share of edge pixels (where the strokes are) per cell, one byte each, as hex."""
    from PIL import Image

    frame = edge_frame(image)
    h, w = image.shape[:2]
    size = (LOOK_WIDTH, max(1, round(LOOK_WIDTH * h / w)))
    gray = np.asarray(Image.fromarray(image).convert("L").resize(size, Image.BOX), dtype=np.uint8)
    strokes = Image.fromarray(frame.edges.astype(np.uint8) * 255).resize(size, Image.BOX)
    return gray.tobytes().hex() + np.asarray(strokes, dtype=np.uint8).tobytes().hex()


def looks_same(a: str, b: str, max_distance: float = 0.02, max_changed: float = 0.05) -> bool:
    """Whether two looks show the same picture: mean gray within `max_distance` (0-1) and the strokes moved in at
    most `max_changed` of the cells (a speaker pacing in front of a slide, not a new slide or a cut)."""
    if len(a) != len(b):
        return False
    va = np.frombuffer(bytes.fromhex(a), np.uint8).astype(np.float32) / 255.0
    vb = np.frombuffer(bytes.fromhex(b), np.uint8).astype(np.float32) / 255.0
    half = len(va) // 2
    gray = float(np.abs(va[:half] - vb[:half]).mean())
    strokes = float((np.abs(va[half:] - vb[half:]) > 0.05).mean())
    return gray <= max_distance and strokes <= max_changed


class TokenReuse:
    """A vision tower's tokens per frame, computed only for frames whose picture changed (`PictureGate`); the
    others reuse the tokens of the frame they match. Only for towers that encode each frame on its own.

    Args:
        encode: frames [T, H, W, 3] uint8 -> tokens [T, h, w, D].
    """

    def __init__(self, encode, max_distance: float = 0.02):
        self.encode = encode
        self.gate = PictureGate(max_distance)
        self.encoded = 0
        self.reused = 0
        self._last = None  # tokens [h, w, D] of the last frame encoded

    def tokens(self, frames: np.ndarray, times) -> object:
        """Tokens [T, h, w, D] of the clip's frames (a torch tensor)."""
        import torch

        fresh = [not self.gate.same(f, float(t)) for f, t in zip(frames, times)]  # the first frame never is
        new = iter(self.encode(frames[np.asarray(fresh)])) if any(fresh) else iter(())
        out = []
        for is_new in fresh:
            if is_new:
                self._last = next(new)
            out.append(self._last)
        self.encoded += sum(fresh)
        self.reused += len(fresh) - sum(fresh)
        return torch.stack(out)


class EveryFrame:
    """A gate that reads every sampled frame: the baseline `TextGate` is measured against."""

    def decide(self, image: np.ndarray, t: float) -> GateDecision:
        return GateDecision(True, "every frame")

    def read_boxes(self, boxes: list[tuple[float, float, float, float]], whole: bool = True) -> None:
        pass


def overlaps(a: tuple[float, float, float, float], b: tuple[float, float, float, float] | None) -> bool:
    """Whether two (x0, y0, x1, y1) boxes share any area; None stands for everywhere."""
    return b is None or (a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3])


def thumbnail(image: np.ndarray, width: int = 64) -> np.ndarray:
    """A [h, 64] float32 grayscale thumbnail in [0, 1]: what a picture looks like, not what it says."""
    from PIL import Image

    h, w = image.shape[:2]
    gray = Image.fromarray(image).convert("L").resize((width, max(4, round(width * h / w))), Image.BILINEAR)
    return np.asarray(gray, dtype=np.float32) / 255.0


def picture_distance(a: np.ndarray, b: np.ndarray) -> float:
    """How different two pictures look (0 = same, 1 = black vs white): mean change of their thumbnails."""
    ta, tb = thumbnail(a), thumbnail(b)
    return 1.0 if ta.shape != tb.shape else float(np.abs(ta - tb).mean())
