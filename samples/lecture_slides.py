"""Slides of the generated lecture (samples/lecture.py): a title, then bullets or a ruled table, drawn with PIL in
one of the DejaVu families, sizes and colour themes of samples/lecture_pools.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from longwatch.samples import lecture_pools as P


@dataclass(frozen=True)
class Slide:
    title: str
    bullets: tuple[str, ...] = ()
    table: tuple[tuple[str, ...], ...] = ()  # header row first
    font: int = 0  # index into lecture_pools.FONTS
    theme: int = 0  # index into lecture_pools.THEMES
    scale: float = 1.0  # font size factor

    def text(self) -> str:
        return "\n".join([self.title, *self.bullets, *(" | ".join(row) for row in self.table)])


def load_font(name: str, size: int):
    """A DejaVu font file by name at `size` px (PIL's own font where fonts-dejavu is missing)."""
    from PIL import ImageFont

    for folder in P.FONT_DIRS:
        if Path(folder, name).exists():
            return ImageFont.truetype(str(Path(folder, name)), size)
    return ImageFont.load_default(size=size)


def render_slide(slide: Slide, size: tuple[int, int] = (960, 540)):
    """One slide as a PIL image: a title, then bullets or a ruled table, in the slide's font, size and colours."""
    from PIL import Image, ImageDraw

    w, h = size
    u = h / 540 * slide.scale
    bg, fg, accent = P.THEMES[slide.theme]
    regular, bold = P.FONTS[slide.font]
    im = Image.new("RGB", size, bg)
    draw = ImageDraw.Draw(im)

    def fitted(text: str, px: float, name: str, room: float):
        px = int(px)
        while draw.textlength(text, font=load_font(name, px)) > room and px > 12:
            px -= 2
        return load_font(name, px)

    draw.text((int(48 * u), int(34 * u)), slide.title, fill=accent, font=fitted(slide.title, 50 * u, bold, w - 96))
    draw.line((48, int(104 * u), w - 48, int(104 * u)), fill=accent, width=max(2, int(4 * u)))
    y = int(140 * u)
    for bullet in slide.bullets:
        text = "\u2022 " + bullet
        draw.text((int(56 * u), y), text, fill=fg, font=fitted(text, 38 * u, regular, w - 112))
        y += int(66 * u)
    if slide.table:
        px = int(34 * u)
        widths = [max(draw.textlength(row[c], font=load_font(bold, px)) for row in slide.table) + 48
                  for c in range(len(slide.table[0]))]
        while sum(widths) > w - 96 and px > 12:
            px -= 2
            widths = [max(draw.textlength(row[c], font=load_font(bold, px)) for row in slide.table) + 48
                      for c in range(len(slide.table[0]))]
        row_h, x0 = int(px * 1.8), (w - sum(widths)) // 2
        for r, row in enumerate(slide.table):
            x = x0
            for c, cell in enumerate(row):
                font = load_font(bold if r == 0 else regular, px)
                draw.text((x + 24, y + r * row_h + px // 3), cell, fill=fg, font=font)
                x += widths[c]
            draw.line((x0, y + (r + 1) * row_h, x0 + sum(widths), y + (r + 1) * row_h), fill=accent, width=2)
    return im
