"""The Pipeline end to end on real decoders, a real bank and tiny real-architecture models; plus answer formatting.

Generated videos (PyAV) are ingested once; questions are answered from the bank with zero further decoding.
"""

from __future__ import annotations

import pytest

from longwatch.pipeline.answer import Citation, ContextItem, build_blocks, cite, format_span, format_time


# ---- answer formatting (pure) --------------------------------------------------------------------------------
def test_time_formatting():
    assert format_time(0) == "00:00:00"
    assert format_time(3668.2) == "01:01:08"
    assert format_time(3668.2, ceil=True) == "01:01:09"
    assert format_time(36000) == "10:00:00"
    assert format_span(2468.0, 2472.0) == "[00:41:08\u201300:41:12]"
    with pytest.raises(ValueError, match="finite"):
        format_time(float("nan"))


def _item(video, i, rel, caption="c", ocr=""):
    return ContextItem(video, i, 4.0 * i, 4.0 * i + 4, caption, ocr, rel)


class _Block:
    def __init__(self, text, tokens=None, text_after="", duration=None):
        self.text, self.tokens, self.text_after, self.duration = text, tokens, text_after, duration


def test_blocks_are_time_ordered_and_label_videos_only_when_several():
    items = [_item("b", 3, 0.1), _item("a", 5, 0.9, "a dog", "EXIT"), _item("a", 1, 0.5)]
    one = build_blocks([i for i in items if i.video == "a"], _Block)
    assert [b.text for b in one] == ["[00:00:04\u201300:00:08] ", "[00:00:20\u201300:00:24] "]
    assert one[1].text_after == "a dog / On-screen text: EXIT\n"
    several = build_blocks(items, _Block)
    assert [b.text.split(" ")[1] for b in several] == ["a", "a", "b"]
    assert several[0].text.startswith("Video a [00:00:04")


def test_citations_rank_by_relevance_and_merge_adjacent_clips():
    items = [_item("v", 10, 0.9), _item("v", 11, 0.8), _item("v", 40, 0.7), _item("v", 2, 0.1)]
    out = cite(items, max_citations=3)
    assert out[0] == Citation("v", 40.0, 48.0, 0.9)  # clips 10 and 11 merged into one range
    assert out[1] == Citation("v", 160.0, 164.0, 0.7)
    assert len(out) == 3 and out[2].t0 == 8.0


def test_whole_video_citations_spread_over_the_timeline():
    # Relevance bunched at the start; a summary must still point at every part of the video.
    items = [_item("v", i, 0.9 if i < 20 else 0.2) for i in range(0, 900, 10)]
    out = cite(items, max_citations=8, spread=8)
    assert len(out) == 8
    parts = sorted({int(c.t0 // (3564 / 8)) for c in out})  # the timeline ends at 3564 s
    assert parts == list(range(8))
