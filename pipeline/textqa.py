"""Words as evidence and questions both mean them: general normalisation for lexical matching.

Number words and digits, ordinals and "1st", "third quarter" and "Q3", month abbreviations, plural and verb forms
all reduce to one key, so a question phrased in other words still meets the evidence that answers it. Also the
shapes of questions (a multiple-choice tail, a generic "what text is shown?") and, for banks ingested before the
evidence timeline existed, the OCR lines of their clip records.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

OCR_SEPARATOR = " | "  # how the ingest joins a clip's text spans
MERGE_GAP = 1.0  # seconds: one line seen again this soon is one appearance

STOP = set("""a an the is are was were be been being of in on at to for from by with about into over under and or
not no do does did doing done what which who whom whose when where why how this that these those there here it its
they them their he she his her you your we our i me my any some all each every much many more most other such
can could would should will shall may might must have has had having as if than then so very just also only
video clip time please tell show say says said mention mentioned talk talked speaker""".split())
# Words that ask for text in general ("what text appears on screen?") rather than for a fact.
TEXT_WORDS = {"text", "texts", "written", "writing", "write", "words", "word", "caption", "captions", "title",
              "titles", "screen", "onscreen", "appear", "appears", "appeared", "shown", "displayed", "display",
              "read", "visible", "sign", "signs", "slide", "slides", "label", "labels", "banner", "ticker", "see"}

_UNITS = {w: i for i, w in enumerate("zero one two three four five six seven eight nine ten eleven twelve thirteen "
                                     "fourteen fifteen sixteen seventeen eighteen nineteen".split())}
_TENS = {w: 10 * i for i, w in enumerate("_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()) if i > 1}
_SCALES = {"hundred": 100, "thousand": 1000, "million": 1_000_000, "billion": 1_000_000_000}
_ORDINALS = {w: i + 1 for i, w in enumerate("first second third fourth fifth sixth seventh eighth ninth tenth "
                                            "eleventh twelfth".split())}
_MONTHS = {m[:3]: m for m in "january february march april may june july august september october november "
                             "december".split()}
_MONTHS["sept"] = "september"
# Codes and decimals stay one token ("4.2m", "9:30", "v2.1"); a word glued to a number by OCR ("length:60") does not.
_TOKEN = re.compile(r"[a-z]*[0-9]+(?:[.:,][0-9]+[a-z]*)+|[a-z0-9]+")


def _ordinal(n: int) -> str:
    return f"{n}{'th' if 10 <= n % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"


def stem(word: str) -> str:
    """A light suffix stripper: "costs"/"costing"/"costed" -> "cost", "moved"/"moving"/"move" -> "mov"."""
    if not word.isalpha() or len(word) <= 3:
        return word
    for suffix, repl in (("ies", "y"), ("ied", "y"), ("sses", "ss"), ("ing", ""), ("ed", ""), ("es", ""), ("s", "")):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3 and not (suffix == "s" and word.endswith("ss")):
            word = word[: len(word) - len(suffix)] + repl
            break
    if len(word) > 3 and word[-1] == word[-2] and word[-1] not in "lsz":  # "running" -> "runn" -> "run"
        word = word[:-1]
    return word[:-1] if len(word) > 3 and word.endswith("e") else word


def tokens(text: str) -> list[str]:
    """Lower-case tokens with "%"/"$" spelt out; codes and decimals stay one token ("qx2207", "4.2m", "9:30")."""
    text = text.lower().replace("%", " percent ").replace("$", " dollar ").replace("\u2019", "'")
    return [t.rstrip(".:,") for t in _TOKEN.findall(re.sub(r"'s\b", "", text))]


def _numbers(words: list[str]) -> list[str]:
    """Spelt numbers as digits: ["twenty", "five", "people"] -> ["25", "people"]; "third quarter" -> "q3";
    "quarter 3" -> "q3"; ordinals -> "3rd"; "1st" stays."""
    out: list[str] = []
    i = 0
    while i < len(words):
        w = words[i]
        if w in _UNITS or w in _TENS:
            value, j = 0, i
            while j < len(words) and (words[j] in _UNITS or words[j] in _TENS or (words[j] in _SCALES and j > i)):
                value = value * _SCALES[words[j]] if words[j] in _SCALES else value + _UNITS.get(words[j], 0) + \
                    _TENS.get(words[j], 0)
                j += 1
            out.append(str(value))
            i = j
            continue
        nxt = words[i + 1] if i + 1 < len(words) else ""
        prev = words[i - 1] if i else ""
        rank = _ORDINALS.get(w) or (int(w[:-2]) if re.fullmatch(r"\d+(st|nd|rd|th)", w) else None)
        # "second" is a unit of time unless it ranks something ("the second slide", "second quarter").
        if rank and (w != "second" or prev == "the" or nxt in ("quarter", "half")):
            if nxt in ("quarter", "half"):
                out.append(f"{'q' if nxt == 'quarter' else 'h'}{rank}")
                i += 2
                continue
            out.append(_ordinal(rank))
        elif w in ("quarter", "half") and re.fullmatch(r"\d", nxt):
            out.append(f"{'q' if w == 'quarter' else 'h'}{nxt}")
            i += 2
            continue
        elif out and w in ("million", "billion", "thousand") and re.fullmatch(r"\d+(\.\d+)?", out[-1]):
            out[-1] += {"million": "m", "billion": "b", "thousand": "k"}[w]  # "4.2 million" is "4.2M"
        else:
            out.append(_MONTHS.get(w, w))
        i += 1
    return out


def normalised_words(text: str) -> list[str]:
    """The text's tokens with spelt numbers, ordinals, quarters and months normalised, not stemmed."""
    return _numbers(tokens(text))


def keys(text: str) -> list[str]:
    """The normalised keys of a text, in order (stop words kept): what lexical matching compares."""
    return [stem(w) for w in _numbers(tokens(text))]


def content_words(text: str) -> set[str]:
    """Normalised keys that carry meaning (stop words dropped)."""
    return {k for w, k in zip(_numbers(tokens(text)), keys(text)) if w not in STOP and k not in STOP}


def squash(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "", text.lower())


def coverage(topic: set[str], text: str) -> float:
    """Fraction of the question's content words the text mentions; OCR often drops spaces ("Thelaunch is at"),
    so words of four letters or more also count when found inside the text with its spaces removed."""
    if not topic:
        return 0.0
    words, squashed = content_words(text), squash(text)
    return sum(1 for w in topic if w in words or (len(w) >= 4 and w in squashed)) / len(topic)


def is_code(token: str) -> bool:
    """Numbers and codes: any token holding a digit ("42", "QX2207", "4.2M", "9:30", "Q3")."""
    return any(c.isdigit() for c in token)


def unglued(text: str) -> str:
    """Text for the embedder: letter runs of six or more split into words ("meetingmoved toroom" -> "meeting
    moved to room"). PP-OCR drops spaces between tight words, and glued words embed as noise. Display keeps
    the text as read."""
    from longwatch import optional

    if not optional.installed("wordninja"):
        return text
    import wordninja
    return re.sub(r"[A-Za-z]{6,}", lambda m: " ".join(wordninja.split(m.group())) or m.group(), text)


def question_stem(question: str) -> str:
    """The question without a multiple-choice tail ("Options: (A) …", "Answer with the letter")."""
    return re.split(r"\n\s*(?:options?:|\(?[A-H][.)]\s)", question, maxsplit=1, flags=re.IGNORECASE)[0].strip()


_AT_START = {"start", "beginning", "first", "opening", "intro"}
_AT_END = {"end", "ending", "last", "final", "closing", "outro"}


def asks_for_any_text(question: str) -> bool:
    """True for generic questions about on-screen text, with no topic of their own ("What does the end screen
    say?" included: where in the video is not a topic)."""
    words = {w for w in tokens(question) if w not in STOP}
    return bool(words & TEXT_WORDS) and not (words - TEXT_WORDS - _AT_START - _AT_END)


def asks_about_the_end(question: str) -> bool:
    return bool(set(tokens(question)) & _AT_END)


_QUANTITY = re.compile(r"\b(how (much|many|long|old|tall|far|big|often)|what (number|percentage|price|amount)|"
                       r"which (floor|number|platform|gate|room)|number(?=\W*$))\b", re.IGNORECASE)
_WHEN = re.compile(r"\b(when|what (time|year|date|day)|at what time|which (year|day|month))\b", re.IGNORECASE)
_DATE_WORDS = set(_MONTHS.values()) | {"monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday",
                                       "today", "tomorrow", "tonight", "yesterday", "noon", "midnight", "morning",
                                       "evening", "afternoon", "spring", "summer", "autumn", "fall", "winter"}


def answer_kind(question: str) -> str | None:
    """"number" for questions answered by an amount, "when" for a time or date, else None: evidence without a
    number (or, for "when", a month, weekday or day word) cannot answer them."""
    if _WHEN.search(question):
        return "when"
    return "number" if _QUANTITY.search(question) else None


_WHO = re.compile(r"^\W*(?:\w+ )?(?:who|whom|whose)\b", re.IGNORECASE)


def value_kind(question: str) -> str | None:
    """answer_kind, plus "person" for who/whom/whose: what the answering text must state. Kept apart from
    answer_kind because a speech segment may name the person only in the next one ("The guest speaker next week
    is" | "Laura Turner.")."""
    return answer_kind(question) or ("person" if _WHO.search(question) else None)


def can_answer_kind(kind: str | None, text: str, given: Sequence[str] = ()) -> bool:
    """Whether `text` can answer a question of `kind`; the numbers the question itself `given` ("platform 6" of
    "How much did the repairs on platform 6 cost?") are not an answer. A person is named by a capital letter and
    lower-case letters ("B12" is a code); a weekday or a month names no one."""
    if kind is None:
        return True
    if kind == "person":
        return any(w.lower() not in _DATE_WORDS for w in re.findall(r"\b[A-Z][a-z][\w'-]*", text))
    words = _numbers(tokens(text))
    return any(is_code(w) and w not in given for w in words) or (kind == "when" and any(w in _DATE_WORDS for w in words))


def collect_lines(video: str, records: Sequence) -> list[tuple[float, float, str]]:
    """(t0, t1, text) of each distinct OCR line of a bank ingested before the evidence timeline, in clip order.

    Ranges come from the OCR lane's spans (`meta["ocr_spans"]`) when the record has them, else the clip's own
    range; a line seen again within MERGE_GAP seconds extends its range instead of starting a new one.
    """
    lines: list[list] = []
    last: dict[str, list] = {}
    for r in records:
        spans = (r.meta or {}).get("ocr_spans")
        if spans is None:
            spans = [(r.t0, r.t1, raw) for raw in (r.ocr_text or "").split(OCR_SEPARATOR)]
        for t0, t1, raw in spans:
            text = " ".join(str(raw).split())
            if len(text) < 2:
                continue
            line = last.get(text.lower())
            if line is not None and t0 - line[1] <= MERGE_GAP:
                line[1] = max(line[1], float(t1))
            else:
                line = last[text.lower()] = [float(t0), float(t1), text]
                lines.append(line)
    return [tuple(line) for line in lines]
