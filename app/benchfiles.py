"""Question files as benchmark authors ship them (LVBench, Video-MME, MLVU, LongVideoBench) and our own JSONL,
told apart by the shape of their rows and mapped onto one Question; bad rows are reported, never re-keyed.

Formats, checked against the authors' public files and loaders:
- LVBench (github.com/zai-org/LVBench, once THUDM/LVBench: data/README.md, lvbench/metrics/compute_accuracy.py;
  the file is HF THUDM/LVBench `video_info.meta.jsonl`): one JSON line per video, `key` (the YouTube id that
  names the video file), `type`, `video_info.duration_minutes`, `qa`: [{`uid`, `question` with the options
  embedded as "…?\\n(A) …\\n(B) …", `answer` letter, `question_type` (a list), `time_reference` "mm:ss-mm:ss"}].
- Video-MME (github.com/MME-Benchmarks/Video-MME evaluation/output_test_template.json, which carries trailing
  commas; HF lmms-lab/Video-MME parquet as read by lmms-eval tasks/videomme/utils.py): per video {`video_id`,
  `duration` short|medium|long, `domain`, `sub_category`, `questions`: [{`question_id`, `task_type`,
  `question`, `options` ["A. …", …], `answer` letter}]}, or flat rows of the same fields plus `videoID`
  (the YouTube id that names the file) and `url`.
- MLVU (github.com/JUNJIE99/MLVU data/*.json, evaluation/multiple_choice_evaluation/choice_bench.py): one JSON
  array per task of {`video` "name.mp4", `duration` seconds, `question`, `candidates`, `answer` (a candidate's
  text), `question_type`}; the open-ended tasks (8_sub_scene, 9_summary) have no candidates. Rows have no id.
- LongVideoBench (github.com/longvideobench/LongVideoBench longvideobench_dataset.py, lvb_val.json; HF parquet
  as read by lmms-eval tasks/longvideobench/utils.py): {`id`, `video_id`, `video_path`, `duration`,
  `duration_group` (15/60/600/3600), `question`, `candidates` (parquet: `option0`…`option4`, "N/A" unused),
  `correct_choice` 0-based (absent from the test file), `question_category`, `topic_category`}.
"""

from __future__ import annotations

import json
import logging
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from longwatch.app.mcq import LETTERS, Question, duration_bucket, parse_time_references, video_stem
from longwatch.errors import QuestionFileError

FORMATS = ("lvbench", "videomme", "mlvu", "longvideobench", "longwatch")
# LongVideoBench's duration groups are upper bounds of the ranges its paper reports.
LVB_GROUPS = {15: "8-15 s", 60: "15-60 s", 600: "3-10 min", 3600: "15-60 min"}


@dataclass(frozen=True)
class BadRow:
    file: str
    row: str  # "line 3", "item 3" or "row 3", plus " qa[2]" for a question nested in a per-video row
    problem: str

    def __str__(self) -> str:
        return f"{self.file} {self.row}: {self.problem}"


@dataclass
class QuestionFile:
    path: str
    format: str
    questions: list[Question] = field(default_factory=list)
    bad_rows: list[BadRow] = field(default_factory=list)


class _Bad(Exception):
    """One row (or one nested question) is unusable; the message says why and what to fix."""


# A value of an unexpected type deep in a row (a list where a number belongs) is that row's problem, not a crash.
_ROW_ERRORS = (_Bad, TypeError, ValueError, AttributeError, KeyError, IndexError)


def _problem(exc: Exception) -> str:
    return str(exc) if isinstance(exc, _Bad) else f"unusable value ({type(exc).__name__}: {exc})"


@dataclass(frozen=True)
class _Unreadable:
    problem: str


def load_question_file(path: str | Path, fmt: str | None = None) -> QuestionFile:
    """Read a question file of any supported format (detected unless `fmt` names one of FORMATS).

    Every bad row becomes a BadRow with its file and row; the good rows are kept. Raises QuestionFileError
    when the file is missing or unreadable, or when not one row is good.
    """
    p = Path(path)
    if not p.is_file():
        raise QuestionFileError(f"{p}: no such question file; pass a benchmark's annotation file "
                                "(JSON, JSONL or parquet) or a JSONL of questions")
    rows = _read_rows(p)
    if fmt is not None and fmt not in FORMATS:
        raise QuestionFileError(f"unknown question format {fmt!r}; known: {', '.join(FORMATS)}")
    fmt = fmt or _detect(rows, p)
    loaded = QuestionFile(path=str(p), format=fmt)
    seen: set[str] = set()
    for n, (label, row) in enumerate(rows, 1):
        if isinstance(row, _Unreadable):
            loaded.bad_rows.append(BadRow(str(p), label, row.problem))
            continue
        if row in (None, {}, [], ""):
            loaded.bad_rows.append(BadRow(str(p), label, "empty row"))
            continue
        if not isinstance(row, dict):
            loaded.bad_rows.append(BadRow(str(p), label, f"a row must be a JSON object, found {type(row).__name__}"))
            continue
        try:
            for item in PARSERS[fmt](row, label, n, p):
                if isinstance(item, BadRow):
                    loaded.bad_rows.append(item)
                elif item.id in seen:
                    loaded.bad_rows.append(BadRow(str(p), item.source[len(p.name) + 1:],
                                                  f"question id {item.id!r} is used twice; ids must be unique"))
                else:
                    seen.add(item.id)
                    loaded.questions.append(item)
        except _ROW_ERRORS as exc:
            loaded.bad_rows.append(BadRow(str(p), label, _problem(exc)))
    if not loaded.questions:
        shown = "; ".join(str(b) for b in loaded.bad_rows[:3]) or "the file has no rows"
        raise QuestionFileError(f"{p}: no usable question in {len(rows)} row(s) read as {fmt} ({shown}"
                                f"{'; …' if len(loaded.bad_rows) > 3 else ''}); fix the rows or pass another file")
    return loaded


# ---- reading: JSON arrays, JSONL, parquet ------------------------------------------------------------------

_TRAILING_COMMA = re.compile(r",(\s*[}\]])")


def _read_rows(p: Path) -> list[tuple[str, object]]:
    if p.suffix.lower() == ".parquet":
        return [(f"row {i}", r) for i, r in enumerate(_read_parquet(p), 1)]
    try:
        text = p.read_text(encoding="utf-8-sig")
    except (UnicodeDecodeError, OSError) as exc:
        raise QuestionFileError(f"{p}: cannot be read as UTF-8 text ({exc}); question files are JSON, JSONL "
                                "or .parquet") from None
    if text.lstrip().startswith("["):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            try:  # Video-MME's published template has trailing commas; nothing else is repaired
                data = json.loads(_TRAILING_COMMA.sub(r"\1", text))
            except json.JSONDecodeError:
                raise QuestionFileError(f"{p}: a JSON array that does not parse (line {exc.lineno}, column "
                                        f"{exc.colno}: {exc.msg}); fix the file or export it again") from None
        return [(f"item {i}", r) for i, r in enumerate(data, 1)]
    if text.lstrip().startswith("{") and "\n" in text.strip():
        try:  # one pretty-printed object, e.g. a single per-video row
            return [("line 1", json.loads(text))]
        except json.JSONDecodeError:
            pass  # JSONL: one object per line
    rows: list[tuple[str, object]] = []
    for n, line in enumerate(text.splitlines(), 1):
        if line.strip():
            try:
                rows.append((f"line {n}", json.loads(line)))
            except json.JSONDecodeError as exc:
                rows.append((f"line {n}", _Unreadable(f"not JSON ({exc.msg} at column {exc.colno})")))
    return rows


def _read_parquet(p: Path) -> list[dict]:
    from longwatch import optional

    if not optional.installed("pyarrow"):  # a usage error about this file, so QuestionFileError (exit 2)
        raise QuestionFileError(f"{p}: reading parquet needs pyarrow, which is not installed: "
                                f"{optional.install_hint('pyarrow')} (or convert the file to JSON)")
    import pyarrow.parquet as pq
    try:
        return pq.read_table(p).to_pylist()
    except Exception as exc:  # pyarrow raises ArrowInvalid / OSError subclasses for damaged files
        raise QuestionFileError(f"{p}: not a readable parquet file ({type(exc).__name__}: {exc})") from None


# ---- format detection ----------------------------------------------------------------------------------------

def _shape(row: object) -> str | None:
    if not isinstance(row, dict):
        return None
    k = row.keys()
    if "qa" in k and "key" in k:
        return "lvbench"
    if "questions" in k and ("video_id" in k or "videoID" in k):
        return "videomme"
    if "videoID" in k or ("question_id" in k and "task_type" in k and row.get("duration") in ("short", "medium", "long")):
        return "videomme"
    if "correct_choice" in k or "duration_group" in k or "option0" in k or ("video_path" in k and "candidates" in k):
        return "longvideobench"
    if "question_type" in k and "video" in k:
        return "mlvu"
    if "question" in k or "prompt" in k:
        return "longwatch"
    return None


def _detect(rows: list[tuple[str, object]], p: Path) -> str:
    """The shape most rows have: one odd or empty row must not decide how a whole file is read."""
    if not rows:
        raise QuestionFileError(f"{p}: the file holds no rows; pass a file of questions")
    votes = Counter(s for _, r in rows if (s := _shape(r)))
    if not votes:
        sample = next((r for _, r in rows if isinstance(r, dict) and r), None)
        if sample is None:
            return "longwatch"  # only empty or unreadable rows: each is reported as what it is
        raise QuestionFileError(f"{p}: not a question file we know (found keys {sorted(sample)[:12]}); expected "
                                "LVBench, Video-MME, MLVU or LongVideoBench annotations, or JSONL rows with a 'question'")
    return votes.most_common(1)[0][0]


# ---- shared row helpers ------------------------------------------------------------------------------------

def _text(row: dict, key: str) -> str:
    value = row.get(key)
    if not isinstance(value, (str, int)) or not str(value).strip():
        raise _Bad(f"needs a non-empty '{key}'")
    return str(value).strip()


def _labels(value) -> tuple[str, ...]:
    if value in (None, ""):
        return ()
    return tuple(str(v) for v in value) if isinstance(value, (list, tuple)) else (str(value),)


def _letter(value, options: tuple[str, ...]) -> str:
    """An answer given as a letter ("B", "(B)", "B.") that names one of the options."""
    match = re.fullmatch(r"\s*\(?([A-Za-z])[.)]?\s*", str(value)) if value is not None else None
    if not match or LETTERS.index(match.group(1).upper()) >= len(options):
        raise _Bad(f"answer {value!r} is not one of the option letters A-{LETTERS[len(options) - 1]}")
    return match.group(1).upper()


def _strip_letters(options) -> tuple[str, ...]:
    """["A. x", "B. y"] / ["(A) x", …] → ("x", "y"); options not lettered in order are kept verbatim."""
    if isinstance(options, dict):
        options = [options[k] for k in sorted(options)]
    if not isinstance(options, (list, tuple)) or not all(isinstance(o, (str, int, float)) for o in options):
        raise _Bad("options must be a list of texts")
    opts = [str(o).strip() for o in options]
    pattern = re.compile(r"^\(?([A-Z])[.):]\s*(.*)$", re.DOTALL)
    matches = [pattern.match(o) for o in opts]
    if opts and all(m and m.group(1) == LETTERS[i] for i, m in enumerate(matches)):
        opts = [m.group(2).strip() for m in matches]
    if any(not o for o in opts):
        raise _Bad("an option is empty")
    return tuple(opts)


def _embedded_options(text: str) -> tuple[str, tuple[str, ...]]:
    """LVBench's "…?\\n(A) 1636\\n(B) …" → ("…?", ("1636", …)); (text, ()) when no lettered lines follow."""
    lines = text.split("\n")
    first = next((i for i, line in enumerate(lines) if re.match(r"^\s*\(A\)\s*\S", line)), None)
    if first is None:
        return text, ()
    options = []
    for i, line in enumerate(lines[first:]):
        match = re.match(r"^\s*\(([A-Z])\)\s*(.*)$", line)
        if not match or match.group(1) != LETTERS[i] or not match.group(2).strip():
            raise _Bad(f"option line {line.strip()!r} breaks the '(A) …', '(B) …' sequence")
        options.append(match.group(2).strip())
    return "\n".join(lines[:first]).strip(), tuple(options)


def _source(p: Path, label: str) -> str:
    return f"{p.name} {label}"


# ---- one parser per format: yield Questions, or BadRows for nested questions --------------------------------

def _lvbench(row: dict, label: str, n: int, p: Path) -> Iterator[Question | BadRow]:
    video = _text(row, "key")
    qa = row.get("qa")
    if not isinstance(qa, list) or not qa:
        raise _Bad("an LVBench row needs a non-empty 'qa' list")
    info = row.get("video_info") if isinstance(row.get("video_info"), dict) else {}
    minutes = info.get("duration_minutes")
    duration = duration_bucket(float(minutes) * 60) if isinstance(minutes, (int, float)) else None
    for k, item in enumerate(qa):
        sub = f"{label} qa[{k}]"
        try:
            if not isinstance(item, dict) or not item:
                raise _Bad("empty qa entry")
            stem, options = _embedded_options(_text(item, "question"))
            if len(options) < 2:
                raise _Bad("no '(A) …' option lines in the question (LVBench embeds its options there)")
            try:
                refs = parse_time_references(item.get("time_reference"))
            except ValueError as exc:
                raise _Bad(str(exc)) from None
            yield Question(id=str(item.get("uid") or f"{video}-{k}"), question=stem, video=video, options=options,
                           answer=_letter(item.get("answer"), options), time_references=refs,
                           task_types=_labels(item.get("question_type")), duration=duration, benchmark="lvbench",
                           source=_source(p, sub), extra={"genre": row.get("type")})
        except _ROW_ERRORS as exc:
            yield BadRow(str(p), sub, _problem(exc))


def _videomme(row: dict, label: str, n: int, p: Path) -> Iterator[Question | BadRow]:
    if "questions" not in row:
        yield _videomme_question(row, label, p)
        return
    questions = row.get("questions")
    if not isinstance(questions, list) or not questions:
        raise _Bad("a Video-MME video row needs a non-empty 'questions' list")
    meta = {k: v for k, v in row.items() if k != "questions"}
    for k, item in enumerate(questions):
        sub = f"{label} questions[{k}]"
        try:
            if not isinstance(item, dict) or not item:
                raise _Bad("empty question entry")
            yield _videomme_question(meta | item, sub, p)
        except _ROW_ERRORS as exc:
            yield BadRow(str(p), sub, _problem(exc))


def _videomme_question(row: dict, label: str, p: Path) -> Question:
    # The file names come from `videoID` (YouTube id) in the HF release; the template has only `video_id`.
    video = str(row.get("videoID") or _text(row, "video_id"))
    options = _strip_letters(row.get("options") or [])
    if len(options) < 2:
        raise _Bad("needs 'options' with at least two entries (\"A. …\", \"B. …\")")
    aliases = tuple(str(row[k]) for k in ("video_id",) if row.get(k) not in (None, "", video))
    return Question(id=_text(row, "question_id"), question=_text(row, "question"), video=video, options=options,
                    answer=_letter(row.get("answer"), options), task_types=_labels(row.get("task_type")),
                    duration=str(row["duration"]) if row.get("duration") else None, benchmark="videomme",
                    source=_source(p, label), extra={"domain": row.get("domain"), "aliases": aliases,
                                                     "sub_category": row.get("sub_category")})


def _mlvu(row: dict, label: str, n: int, p: Path) -> Iterator[Question]:
    video, question = _text(row, "video"), _text(row, "question")
    answer = row.get("answer")
    if not isinstance(answer, (str, int, float)) or not str(answer).strip():
        raise _Bad("needs a non-empty 'answer'")
    common = dict(id=f"{p.stem}-{n}", video=video_stem(video), task_types=_labels(row.get("question_type")),
                  duration=duration_bucket(row.get("duration")), benchmark="mlvu", source=_source(p, label),
                  extra={"video_file": video})
    candidates = row.get("candidates")
    if candidates in (None, []):  # open-ended tasks (sub-scene captioning, summaries): answered, never scored
        yield Question(question=question, answer=str(answer).strip(), **common)
        return
    options = _strip_letters(candidates)
    hits = [i for i, o in enumerate(options) if o == str(answer).strip()]
    if len(hits) != 1:
        why = "is not among its candidates" if not hits else "matches several candidates"
        raise _Bad(f"answer {answer!r} {why} {list(options)}; the row is skipped, not keyed to a guessed letter")
    yield Question(question=question, options=options, answer=LETTERS[hits[0]], **common)


def _longvideobench(row: dict, label: str, n: int, p: Path) -> Iterator[Question]:
    qid = _text(row, "id")
    video = video_stem(row.get("video_path") or _text(row, "video_id"))
    candidates = row.get("candidates")
    if candidates is None:  # the parquet release spreads them over option0..option4, "N/A" when unused
        candidates = [row[f"option{i}"] for i in range(5) if row.get(f"option{i}") not in (None, "", "N/A")]
    options = _strip_letters(candidates)
    if len(options) < 2:
        raise _Bad("needs at least two 'candidates'")
    choice, answer = row.get("correct_choice"), None
    if choice is not None:  # the test file ships without it: answered, not scored
        if isinstance(choice, bool) or not isinstance(choice, int) or not 0 <= choice < len(options):
            raise _Bad(f"correct_choice {choice!r} is not a 0-based index into its {len(options)} candidates")
        answer = LETTERS[choice]
    group = row.get("duration_group")
    duration = LVB_GROUPS.get(group, f"group {group}") if group is not None else duration_bucket(row.get("duration"))
    yield Question(id=qid, question=_text(row, "question"), video=video, options=options, answer=answer,
                   task_types=_labels(row.get("question_category")), duration=duration, benchmark="longvideobench",
                   source=_source(p, label), extra={"topic": row.get("topic_category")})


def _longwatch(row: dict, label: str, n: int, p: Path) -> Iterator[Question]:
    """Our JSONL: `question` (or `prompt`), optional `id`, `video`, `options`/`candidates` (or "(A) …" lines in
    the question), `answer` (letter or option text), `time_reference`, `task_type`, `duration`."""
    text = row.get("question") or row.get("prompt")
    if not isinstance(text, str) or not text.strip():
        raise _Bad("a question row needs a 'question' field")
    raw = row.get("options") or row.get("candidates")
    options = _strip_letters(raw) if raw else ()
    if not options:
        text, options = _embedded_options(text)
    answer = row.get("answer")
    if answer is not None:
        answer = str(answer).strip()
        if options:
            if answer in options:
                answer = LETTERS[options.index(answer)]
            elif not re.fullmatch(r"\(?[A-Za-z][.)]?", answer):
                raise _Bad(f"answer {answer!r} is neither an option letter nor one of the options {list(options)}")
            else:
                answer = _letter(answer, options)
        elif re.fullmatch(r"\(?[A-Ha-h][.)]?", answer):
            raise _Bad(f"answer {answer!r} looks like an option letter but the row has no options; add "
                       "'options' (or '(A) …' lines in the question), else it would be scored as free text")
    try:
        refs = parse_time_references(row.get("time_reference", row.get("time_references")))
    except ValueError as exc:
        raise _Bad(str(exc)) from None
    duration = row.get("duration")
    if isinstance(duration, (int, float)) and not isinstance(duration, bool):
        duration = duration_bucket(duration)
    known = {"id", "question_id", "question", "prompt", "video", "options", "candidates", "answer",
             "time_reference", "time_references", "task_type", "duration"}
    yield Question(id=str(row.get("id", row.get("question_id", f"q{n}"))), question=text.strip(),
                   video=str(row["video"]) if row.get("video") else None, options=options, answer=answer or None,
                   time_references=refs, task_types=_labels(row.get("task_type")),
                   duration=str(duration) if duration else None, source=_source(p, label),
                   extra={k: v for k, v in row.items() if k not in known})


PARSERS = {"lvbench": _lvbench, "videomme": _videomme, "mlvu": _mlvu, "longvideobench": _longvideobench,
           "longwatch": _longwatch}


def load_questions(path: str | Path) -> list[Question]:
    """The good questions of a question file in any supported format; each bad row is logged as a warning
    with its file and row. Raises QuestionFileError when the file is unreadable or has no good row."""
    loaded = load_question_file(path)
    for bad in loaded.bad_rows:
        logging.getLogger(__name__).warning("%s", bad)
    return loaded.questions
