"""Recognised words cut into sentences, so each quote of what was said cites one statement.

Whisper ends most sentences with a full stop. A window decoded without timestamp tokens sometimes comes back
unpunctuated, though: "Now let us join the robot arms Small changes in joints can't have large effects The key
idea is ..." arrived as one 26-second quote, too long to cite and too diluted to be found. The pause before each new
sentence still shows in the word times: a gap between two words, or a capitalised word (or the word before it)
whose aligned span has swallowed the silence.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Protocol

SENTENCE_GAP = 1.0  # seconds of silence between two words that end a sentence, whatever follows
CAPITAL_GAP = 0.3  # seconds of silence before a capitalised word that start a new sentence
# A word aligned this long holds a pause: spoken words last about 0.15-0.6 s, and Whisper's alignment gives the
# silence before a sentence to its first word or to the last word before it ("grippers" 1.38 s, "The" 2.16 s).
SWALLOWED = 0.8
_NOT_A_START = {"I", "I'm", "I'll", "I've", "I'd"}


class TimedWord(Protocol):
    t0: float
    t1: float
    text: str


def sentences(words: Sequence[TimedWord]) -> Iterator[Sequence[TimedWord]]:
    """Split one segment's words at sentence ends: its punctuation, or the pauses an unpunctuated run still has."""
    start = 0
    for i, word in enumerate(words):
        if i > start and _pause_before(words, i):
            yield words[start:i]
            start = i
        if _ends_sentence(words, i):
            yield words[start:i + 1]
            start = i + 1
    if start < len(words):
        yield words[start:]


def _ends_sentence(words: Sequence[TimedWord], i: int) -> bool:
    return words[i].text.rstrip().endswith((".", "?", "!")) and not _is_number_dot(words, i)


def _is_number_dot(words: Sequence[TimedWord], i: int) -> bool:
    """"3." followed by a digit-led word is a decimal split by the tokenizer, not a sentence end."""
    return i + 1 < len(words) and words[i].text.strip()[:-1].isdigit() and words[i + 1].text.strip()[:1].isdigit()


def _pause_before(words: Sequence[TimedWord], i: int) -> bool:
    """A sentence starts at word i (of a run with no full stop before it): a long silence, or a capitalised word
    after a short one or with the silence swallowed into its span or its predecessor's."""
    prev, word = words[i - 1], words[i]
    gap = word.t0 - prev.t1
    if gap >= SENTENCE_GAP:
        return True
    text = word.text.strip()
    capital = text[:1].isupper() and text not in _NOT_A_START
    # A word that ends its sentence ("... the Copper Key.") may have swallowed the silence after it instead.
    swallowed_before = word.t1 - word.t0 >= SWALLOWED and i + 1 < len(words) and not _ends_sentence(words, i)
    return capital and (gap >= CAPITAL_GAP or swallowed_before or prev.t1 - prev.t0 >= SWALLOWED)
