"""Questions for batch and eval runs: one Question type, multiple-choice prompts, letter extraction, scoring.

Benchmark files (LVBench, Video-MME, MLVU, LongVideoBench) and our own JSONL are read by `app/benchfiles.py`.
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

LETTERS = string.ascii_uppercase
VIDEO_SUFFIX = re.compile(r"\.(mp4|m4v|mov|mkv|webm|avi|ts|mpg|mpeg|flv|wmv|3gp)$", re.IGNORECASE)
# Duration buckets shortest first, across benchmarks (LongVideoBench groups, Video-MME's words, ours).
DURATION_ORDER = ("8-15 s", "15-60 s", "short", "<4 min", "3-10 min", "medium", "4-15 min", "long",
                  "15-60 min", ">=60 min")


@dataclass(frozen=True)
class Question:
    """One question; `video` None means archive-wide. `answer` is a letter for multiple choice, else free text.

    `task_types` may hold several labels (an LVBench question counts in each of its categories, as in the
    official scorer); `duration` is the benchmark's duration bucket; `time_references` are (t0, t1) seconds
    where the answer is shown, any of which a citation may hit. `source` is "file line N" for messages.
    """

    id: str
    question: str
    video: str | None = None
    options: tuple[str, ...] = ()
    answer: str | None = None
    time_references: tuple[tuple[float, float], ...] = ()
    task_types: tuple[str, ...] = ()
    duration: str | None = None
    benchmark: str = "longwatch"
    source: str = ""
    extra: dict = field(default_factory=dict, compare=False)

    @property
    def is_multiple_choice(self) -> bool:
        return bool(self.options)

    @property
    def time_reference(self) -> tuple[float, float] | None:
        """The first reference range (older callers knew only one)."""
        return self.time_references[0] if self.time_references else None

    def prompt(self) -> str:
        """The text the pipeline is asked: options always listed as (A) … and a request for the letter.

        pipeline/textqa.py recognises this tail ("\\nOptions:") and keeps it out of the evidence search.
        """
        if not self.options:
            return self.question
        opts = "\n".join(f"({LETTERS[i]}) {o}" for i, o in enumerate(self.options))
        return f"{self.question}\nOptions:\n{opts}\nAnswer with the option's letter."


_TIME = re.compile(r"^\s*(\d+(?::\d+){0,2}(?:\.\d+)?)\s*[-–~]\s*(\d+(?::\d+){0,2}(?:\.\d+)?)\s*$")


def parse_seconds(text: str) -> float:
    """'1:02:03.5' / '02:03' / '75' → seconds."""
    total = 0.0
    for part in text.split(":"):
        total = total * 60 + float(part)
    return total


def parse_time_references(value) -> tuple[tuple[float, float], ...]:
    """'mm:ss-mm:ss' (LVBench), several of those split by ',' ';' or ' and ', '12.5-30', [12.5, 30] or a list
    of such pairs → ((t0, t1), …). Raises ValueError naming the value when a part is not a range."""
    if value in (None, "", []):
        return ()
    if isinstance(value, (list, tuple)):
        if len(value) == 2 and all(isinstance(v, (int, float)) for v in value):
            pairs = [(float(value[0]), float(value[1]))]
        else:
            return tuple(r for v in value for r in parse_time_references(v))
    else:
        pairs = []
        for part in re.split(r"\s*(?:[,;]|\band\b)\s*", str(value).strip()):
            match = _TIME.match(part)
            if not match:
                raise ValueError(f"time reference {value!r}: {part!r} is not 'start-end' "
                                 "(seconds, mm:ss or hh:mm:ss) or [start, end]")
            pairs.append((parse_seconds(match.group(1)), parse_seconds(match.group(2))))
    for t0, t1 in pairs:
        if not 0 <= t0 <= t1:
            raise ValueError(f"time reference {value!r}: a range must have 0 <= start <= end")
    return tuple(pairs)


def duration_bucket(seconds) -> str | None:
    """Seconds → a bucket for benchmarks that give a length instead of a group (MLVU, LVBench)."""
    if seconds in (None, ""):
        return None
    s = float(seconds)
    return "<4 min" if s < 240 else "4-15 min" if s < 900 else "15-60 min" if s < 3600 else ">=60 min"


def video_stem(name: str) -> str:
    """'movie101_66.mp4' → 'movie101_66'; a name without a video suffix is returned as is."""
    return VIDEO_SUFFIX.sub("", Path(str(name)).name)


def predicted_letter(answer_text: str, options: tuple[str, ...]) -> str | None:
    """The option an answer picks: an explicit letter ("(B)", "B.", "Answer: B", a bare "B"), else the one
    option whose text it quotes as a whole phrase. None when neither is found or two options are quoted.

    Never a letter found anywhere in the text: "d" inside "dog" is not option D, and a bare capital
    opening prose ("A cat …") is not option A.
    """
    letters = LETTERS[: len(options)]
    if not letters:
        return None
    text = answer_text.strip()
    for pattern in (rf"^\(?([{letters}])\)?[.:)]?$",                      # the whole answer is the letter
                    rf"\(([{letters}])\)",                                  # "(B)"
                    rf"(?i:answer|option)\s*(?:is\s*:?|:)?\s*\(?([{letters}])\b",  # "Answer: B", "answer is: B"
                    rf"\*\*\(?([{letters}])\)?[.)]?\*\*",                     # "**B**", as chat models bold it
                    rf"^([{letters}])[.):]\s"):                                   # "B. blue"
        match = re.search(pattern, text)
        if match:
            return match.group(1)
    # Else the one option the answer quotes: as a whole word, inner spaces optional (OCR reads "B7" as
    # "B 7"), ignoring bracketed time ranges so option "8" does not match "[00:00:08–…]".
    # A full stop closing an option (Video-MME writes "A. Apples.") is not part of what an answer quotes.
    plain = re.sub(r"\[[^\]]*\]", " ", text).lower()
    cores = [re.sub(r"\s+", "", o.lower()).rstrip(".") for o in options]
    quoted = [LETTERS[i] for i, core in enumerate(cores) if core and re.search(
        _edge(core[0], "(?<!{})") + r"\s*".join(map(re.escape, core)) + _edge(core[-1], "(?!{})"), plain)]
    return quoted[0] if len(quoted) == 1 else None


def _edge(char: str, look: str) -> str:
    """A word boundary for quoted option text: a number must not continue into more digits ("8" is not in
    "18") and a word not into more letters, but OCR gluing a number to a word ("17UNITS") still quotes 17."""
    if char.isdigit():
        return look.format("[0-9]")
    return look.format("[a-z]") if char.isalpha() else ""


def is_correct(question: Question, answer_text: str) -> bool | None:
    """None when the question carries no reference answer. Multiple choice: the extracted letter must be the
    answer's letter (no recognisable choice is wrong). Free text: the reference appears in the answer."""
    if question.answer is None:
        return None
    if question.options:
        return predicted_letter(answer_text, question.options) == question.answer
    return question.answer.lower() in answer_text.lower()


def cites_reference(citations: Iterable[dict], question: Question) -> bool:
    """A citation of the question's video overlapping any of its reference ranges."""
    return any((question.video is None or c.get("video") == question.video)
               and any(c["t0"] <= t1 and t0 <= c["t1"] for t0, t1 in question.time_references)
               for c in citations)
