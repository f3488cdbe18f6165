"""Whether a generated sentence may be shown beside its quotes: it must not add, change or cut a fact.

Every number, code and name in the sentence has to appear in the quoted evidence, and a sentence that uses part of
the top quote's fact ("tangerine") must carry all of that fact's numbers and codes ("tangerine 42").
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from longwatch.pipeline.textqa import (STOP, content_words, is_code, keys, normalised_words, question_stem,
                                       squash)

SUPPORTED_SHARE = 0.7  # content words of a sentence that must come from the evidence or the question's wording
_COPULAS = {"is", "are", "was", "were"}
_QUOTED = re.compile(r"[\"“‘']([^\"”’']{2,60})[\"”’']")


_TITLES = {"dr", "mr", "mrs", "ms", "prof", "st", "sir", "doctor", "professor", "dame", "lord", "lady"}
# No sentence ends after a title or an initial ("Dr. Moreau", "J. Smith"): cut there, a name loses its surname.
_NOT_AN_END = r"(?<!\b[Dd]r\.)(?<!\b[MmSs]t\.)(?<!\b[Mm]r\.)(?<!\b[Mm]s\.)(?<!\bMrs\.)(?<!\bProf\.)(?<!\b[A-Z]\.)"


def sentences(text: str) -> list[str]:
    """Sentences split at . ! ? followed by a space (a decimal point, a time, a title or an initial is not an end)."""
    return [s.strip() for s in re.split(_NOT_AN_END + r"(?<=[.!?])\s+", text.strip()) if s.strip()]


def _name_runs(clause: str) -> list[list[str]]:
    """Names of two or more title-case words in a clause, titles aside ("Amara Okafor" in "Doctor Amara Okafor"):
    a name is one fact, like a code. All-caps text (signs, OCR) and table cells say nothing about names."""
    runs = []
    for m in re.finditer(r"[A-Z][a-z'-]+(?:[ \t]+[A-Z][a-z'-]+)+", clause):
        run = [w for w in m.group().split() if w.lower().rstrip(".") not in _TITLES]
        if len(run) >= 2:
            runs.append(run)
    return runs


def names(sentence: str) -> list[str]:
    """Capitalised words past the sentence's first word, and words inside quotes."""
    words = re.findall(r"[A-Za-z][\w'-]*", sentence)
    found = [w for w in words[1:] if w[0].isupper() and w != "I"]
    for phrase in _QUOTED.findall(sentence):
        found += re.findall(r"[A-Za-z0-9][\w'-]*", phrase)
    return found


def _number_in(code: str, evidence: str) -> bool:
    """A number or code of the sentence appears in the evidence, separators aside ("6438" in "6-4-3-8")."""
    chars = [re.escape(c) for c in squash(code)]
    if not chars:
        return True
    return re.search(r"(?<![0-9])" + r"[^a-z0-9]?".join(chars) + r"(?![0-9])", evidence.lower()) is not None


def _clauses(text: str) -> list[str]:
    return [c for c in re.split(r"[;,]\s|(?<=[.!?])\s+", text) if c.strip()]


def grounded_sentence(sentence: str, quotes: Sequence[str], question: str, facts_only: bool = False) -> bool:
    """True when `sentence` says only what `quotes` (best first) state; see the module docstring.

    `facts_only` (summaries, which restate many quotes at once) checks numbers, codes and names alone.
    """
    if not sentence.strip() or not (quotes or facts_only):
        return False
    evidence = " \n ".join(quotes)
    ev_keys, squashed = set(keys(evidence)), squash(evidence)
    said = keys(sentence)
    if any(k not in ev_keys and not _number_in(k, evidence) for k in said if is_code(k)):
        return False
    if any(not stem_in(w, ev_keys, squashed) for w in names(sentence)):
        return False
    if facts_only:
        return True
    asked = content_words(question_stem(question))
    words = content_words(sentence)
    known = content_words(evidence) | asked

    def supported(word: str) -> bool:  # from the evidence or the question, or inside glued OCR text
        return word in known or (len(word) >= 4 and word in squashed)

    if not words or sum(map(supported, words)) < SUPPORTED_SHARE * len(words):
        return False
    # What the sentence says something is comes from the evidence word for word: "star anise" for "anise" adds a fact.
    if not all(map(supported, _stated_value(sentence))):
        return False
    # The sentence must state something the top quote adds to the question, and all of it when it is a code.
    used_new = False
    for clause in _clauses(quotes[0]):
        new = content_words(clause) - asked
        codes = [k for k in dict.fromkeys(keys(clause)) if k in new and is_code(k)]
        # "6438" states "6-4-3-8": a run of numbers counts as said when the sentence holds them joined.
        joined = len(codes) > 1 and _number_in("".join(squash(k) for k in codes), sentence)
        present = [k in words or _number_in(k, sentence) for k in codes]
        if not (new & words or any(present) or joined):
            continue
        used_new = True
        if not (joined or all(present)):
            return False
        for run in _name_runs(clause):
            said_parts = [stem_in(w, words | set(said), squash(sentence)) for w in run]
            if any(said_parts) and not all(said_parts):
                return False
        # What the clause says something is, after its last "is"/"was", is one fact like a name: "star anise"
        # restated as "anise" is another spice.
        stated = _stated_value(clause) - asked
        if stated & words and not stated <= words:
            return False
    return used_new


def _stated_value(clause: str) -> set[str]:
    """The words of the phrase after the clause's last copula, its articles aside ("The chef's secret spice is star
    anise" -> star, anise; "The room is being moved to the fourth floor" -> moved); empty without a copula."""
    pairs = list(zip(normalised_words(clause), keys(clause)))
    last = max((i for i, (w, _) in enumerate(pairs) if w in _COPULAS), default=None)
    if last is None:
        return set()
    value: set[str] = set()
    for w, k in pairs[last + 1:]:
        if w in STOP or k in STOP:
            if value:
                break
            continue
        value.add(k)
    return value


def stem_in(word: str, ev_keys: set[str], squashed: str) -> bool:
    """A name of the sentence appears in the evidence (its normalised key, or inside glued OCR text)."""
    key = keys(word)
    return bool(key) and all(k in ev_keys or (len(k) >= 4 and k in squashed) for k in key)


def grounded(reply: str, quotes: Sequence[str], question: str, *, first_only: bool = True,
             facts_only: bool = False) -> str:
    """The reply's sentences that pass `grounded_sentence` (only its first, by default); "" when none does.
    A sentence cut off by the token limit ("opens at 9:30 on Friday at 9:", "The contact is Dr.") is never shown."""
    said = [s for s in sentences(reply) if re.search(r"[.!?][\"”’')]?$", s)
            and not re.search(r"\b(?:[DdMm]r|[MmSs]t|[Mm]s|Mrs|Prof|[A-Z])\.$", s)]
    said = said[:1] if first_only else said
    return " ".join(s for s in said if grounded_sentence(s, quotes, question, facts_only))
