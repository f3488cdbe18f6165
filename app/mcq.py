"""Question sets for batch runs: plain questions and LVBench / Video-MME / MLVU-style multiple choice.

Reads one JSONL format, renders options into the question, and scores the letter an answer names.
"""

from __future__ import annotations

import json
import re
import string
from dataclasses import dataclass, field
from pathlib import Path

LETTERS = string.ascii_uppercase


@dataclass(frozen=True)
class Question:
    """One question; `video` None means archive-wide. `answer` is a letter for multiple choice, else free text."""

    id: str
    question: str
    video: str | None = None
    options: tuple[str, ...] = ()
    answer: str | None = None
    time_reference: tuple[float, float] | None = None
    extra: dict = field(default_factory=dict, compare=False)

    @property
    def is_multiple_choice(self) -> bool:
        return bool(self.options)

    def prompt(self) -> str:
        """The text the pipeline is asked: options listed as (A) … and a request for the letter."""
        if not self.options:
            return self.question
        opts = "\n".join(f"({LETTERS[i]}) {o}" for i, o in enumerate(self.options))
        return f"{self.question}\nOptions:\n{opts}\nAnswer with the option's letter."


_TIME = re.compile(r"^\s*(\d+(?::\d+){0,2}(?:\.\d+)?)\s*[-–]\s*(\d+(?::\d+){0,2}(?:\.\d+)?)\s*$")


def parse_seconds(text: str) -> float:
    """'1:02:03.5' / '02:03' / '75' → seconds."""
    total = 0.0
    for part in text.split(":"):
        total = total * 60 + float(part)
    return total


def _time_reference(value) -> tuple[float, float] | None:
    if value in (None, "", []):
        return None
    if isinstance(value, (list, tuple)) and len(value) == 2:
        return float(value[0]), float(value[1])
    match = _TIME.match(str(value))
    if not match:
        raise ValueError(f"time reference {value!r} is not 'start-end' (seconds or hh:mm:ss) or [start, end]")
    return parse_seconds(match.group(1)), parse_seconds(match.group(2))


def _options(row: dict) -> tuple[str, ...]:
    # Video-MME writes options as "A. text"; LVBench embeds "(A) text" lines; MLVU uses a plain list ("candidates").
    raw = row.get("options") or row.get("candidates") or ()
    if isinstance(raw, dict):
        raw = [raw[k] for k in sorted(raw)]
    return tuple(re.sub(r"^\(?[A-Z][.)]\s*", "", str(o)).strip() for o in raw)


def load_questions(path: str | Path) -> list[Question]:
    """Read a JSONL question file; each line needs `question` (or `prompt`), optional `id`, `video`,
    `options`/`candidates`, `answer` (letter, or the option text, which is turned into its letter),
    `time_reference` ("12.5-30" / "00:12-00:30" / [12.5, 30])."""
    questions: list[Question] = []
    seen: set[str] = set()
    with open(path, encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{n}: not JSON ({exc.msg})") from None
            text = row.get("question") or row.get("prompt")
            if not text:
                raise ValueError(f"{path}:{n}: a question row needs a 'question' field")
            qid = str(row.get("id", row.get("question_id", f"q{n}")))
            if qid in seen:
                raise ValueError(f"{path}:{n}: question id {qid!r} is used twice; ids must be unique")
            seen.add(qid)
            options = _options(row)
            answer = row.get("answer")
            if answer is not None and options:
                answer = str(answer).strip()
                if answer in options:
                    answer = LETTERS[options.index(answer)]
                answer = answer.strip("() .").upper()[:1]
            known = {"id", "question_id", "question", "prompt", "video", "options", "candidates", "answer",
                     "time_reference"}
            questions.append(Question(id=qid, question=str(text), video=row.get("video") or None,
                                      options=options, answer=None if answer is None else str(answer),
                                      time_reference=_time_reference(row.get("time_reference")),
                                      extra={k: v for k, v in row.items() if k not in known}))
    return questions


def predicted_letter(answer_text: str, options: tuple[str, ...]) -> str | None:
    """The option an answer picks: an explicit letter ("(B)", "B.", "Answer: B", a bare "B"), else the one
    option whose text it quotes. A bare capital inside prose ("A cat …") is not a pick."""
    letters = LETTERS[: len(options)]
    text = answer_text.strip()
    for pattern in (rf"^\(?([{letters}])\)?[.:)]?$",                      # the whole answer is the letter
                    rf"\(([{letters}])\)",                                  # "(B)"
                    rf"(?i:answer|option)\s*(?:is|:)?\s*\(?([{letters}])\b",  # "Answer: B", "option B"
                    rf"^([{letters}])[.):]\s"):                             # "B. blue"
        match = re.search(pattern, text)
        if match:
            return match.group(1)
    # Else the one option the answer quotes: as a whole word, inner spaces optional (OCR reads "B7" as
    # "B 7"), ignoring bracketed time ranges so option "8" does not match "[00:00:08–…]".
    plain = re.sub(r"\[[^\]]*\]", " ", text).lower()
    quoted = [LETTERS[i] for i, o in enumerate(options) if o.strip() and re.search(
        r"(?<![a-z0-9])" + r"\s*".join(map(re.escape, re.sub(r"\s+", "", o.lower()))) + r"(?![a-z0-9])", plain)]
    return quoted[0] if len(quoted) == 1 else None


def is_correct(question: Question, answer_text: str) -> bool | None:
    """None when the question carries no reference answer."""
    if question.answer is None:
        return None
    if question.options:
        return predicted_letter(answer_text, question.options) == question.answer
    return question.answer.lower() in answer_text.lower()
