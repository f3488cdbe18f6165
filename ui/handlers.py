"""Event handlers of the web UI: thin adapters from Gradio values to `LongWatch` calls and back.

Typed longwatch errors become `gr.Error` toasts with their message; the server keeps serving.
"""

from __future__ import annotations

import html
import queue
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import gradio as gr

from longwatch.app import (KIND_LABELS, LiveSession, LongWatch, LongwatchError, format_span, format_time,
                           frame_at, quote_lines)

LIBRARY_COLUMNS = ["video", "duration", "clips", "state", "gaps", "disk MB"]
TRANSCRIPT_LINES = 2000  # lines drawn at once; a filter narrows a long lecture's timeline to what is sought
# What each source of answers lets a user ask, and a question that shows it; the placeholder lists only the
# sources the loaded preset and pipeline have (LongWatch.answers_from).
ASKABLE = {"speech": ("said", "What did the speaker say about the budget?"), "subtitle": ("subtitled", ""),
           "ocr": ("shown as text", "What number is on the slide?"),
           "visual": ("seen", "What is the person holding?")}
WRITING = "Writing the answer from these quotes…"  # marks quotes shown before the sentence that follows them
ASK_POLL_S = 0.5  # how often a waiting handler checks that the thread answering is still alive
LOST_ANSWER = "the thread answering this question stopped without an answer; ask again"


def _toast(exc: Exception) -> gr.Error:
    """A user-facing error: the typed message says what was found and what to do."""
    name = type(exc).__name__
    return gr.Error(f"{name}: {exc}", title="longwatch", print_exception=False)


def discard_upload(upload: str) -> None:
    """Delete a file Gradio handed us once the app refused it, so rejected uploads do not pile up on the server.

    Only a file inside Gradio's upload folder is touched (never a path that merely arrived as a value), and its
    per-upload folder with it once empty.
    """
    from gradio.utils import get_upload_folder

    cache = Path(get_upload_folder()).resolve()
    path = Path(upload).resolve()
    if path == cache or cache not in path.parents or not path.is_file():
        return
    path.unlink(missing_ok=True)
    if path.parent != cache:
        try:
            path.parent.rmdir()
        except OSError:
            pass  # another upload shares the folder


def _eta(seconds: float | None) -> str:
    if seconds is None:
        return "ETA unknown"
    return f"ETA {format_time(seconds)}" if seconds >= 60 else f"ETA {seconds:.0f} s"


def progress_text(p) -> str:
    """One status line from pipeline.core.IngestProgress: percent of media time, clips, ETA."""
    if p.duration:
        pct = min(99, int(100 * p.t / p.duration))  # 100% is said only once the video is marked complete
        return f"Decoding and ingesting **{p.video_id}**: {pct}% · {p.clips_done} clips · {_eta(p.eta)}"
    return f"Decoding and ingesting **{p.video_id}**: {p.clips_done} clips · {p.t:.0f} s of video"


class Handlers:
    """Every UI event, bound to one shared `LongWatch` (models are loaded once per process)."""

    def __init__(self, lw: LongWatch):
        self.lw = lw

    # -- library -----------------------------------------------------------------------------------------------
    def video_ids(self) -> list[str]:
        return [v.video_id for v in self.lw.videos() if v.clips > 0]

    def library(self) -> list[list]:
        rows = []
        for v in self.lw.videos():
            duration = "live" if v.duration is None else format_time(v.duration)
            rows.append([v.video_id, duration, v.clips, v.state, v.gaps_text().removeprefix("not decoded: "),
                         round(v.bytes_on_disk / 2**20, 1)])
        return rows

    def refresh(self, selected: list[str] | None):
        ids = self.video_ids()
        keep = [v for v in (selected or []) if v in ids]
        return self.library(), gr.update(choices=ids, value=keep), gr.update(choices=ids)

    def delete(self, video_id: str, selected: list[str] | None, shown: str | None = None):
        """Forget a video; if it was in the player, its transcript is cleared (and the player after it, in app.py)."""
        if not video_id:
            raise gr.Error("Pick a video id from the library to delete.")
        try:
            self.lw.delete(video_id)
        except LongwatchError as e:
            raise _toast(e) from None
        rows, dropdown, _ = self.refresh(selected)
        return rows, dropdown, gr.update(choices=self.video_ids(), value=None), None if shown == video_id else shown

    def player_for(self, video_id: str | None) -> str | None:
        if not video_id:
            return None
        try:
            return self.lw.video(video_id).path
        except LongwatchError as e:
            raise _toast(e) from None

    def show(self, selected: list[str] | None):
        """The player takes the last video picked in the list (the transcript panel follows it)."""
        if not selected:
            return gr.skip(), gr.skip()
        return self.player_for(selected[-1]), selected[-1]

    def question_placeholder(self) -> str:
        """Promise only what the loaded preset can answer: what is said, subtitled, shown as text, and with a
        vision model, seen."""
        sources = [ASKABLE[s] for s in self.lw.answers_from() if s in ASKABLE]
        if not sources:
            return "Ingest a video, then ask about it."
        verbs = [verb for verb, _ in sources]
        what = verbs[0] if len(verbs) == 1 else ", ".join(verbs[:-1]) + " or " + verbs[-1]
        examples = [example for _, example in sources if example]
        shown = " or ".join(dict.fromkeys(examples[:1] + examples[-1:]))  # the first source and the furthest reach
        return f"Ask about what is {what} in the video" + (f", e.g. {shown}" if shown else ".")

    # -- transcript ----------------------------------------------------------------------------------------------
    def transcript(self, video_id: str | None, query: str | None, kinds: list[str] | None) -> str:
        """Every evidence line of the video in the player (time, kind, text) as seekable buttons, filtered by the
        search box's words and the chosen kinds."""
        if not video_id:
            return '<p class="lw-empty">Pick or ingest a video to see what is said, subtitled and shown in it.</p>'
        if kinds is not None and not kinds:
            return '<p class="lw-empty">Choose at least one kind of line to show.</p>'
        try:
            lines = self.lw.evidence(video_id, kinds or None, query)
        except LongwatchError as e:
            raise _toast(e) from None
        return transcript_html(video_id, lines, bool(query and query.strip()))

    # -- ingest --------------------------------------------------------------------------------------------------
    def ingest(self, upload: str | None, selected: list[str] | None, subtitles: list[str] | None = None,
               progress=gr.Progress()) -> Iterator[tuple]:
        """Copy the upload into the bank, validate it, ingest it in a worker thread and stream progress.

        `subtitles`: subtitle files uploaded with the video; an upload has no folder of its own, so they stand in
        for the sidecar files a video on disk keeps beside it."""
        if not upload:
            raise gr.Error("Choose a video file to upload first.")
        try:
            video_id, path = self.lw.store_upload(upload)
        except Exception as e:
            discard_upload(upload)
            if isinstance(e, LongwatchError):
                raise _toast(e) from None
            raise
        events: queue.Queue = queue.Queue()
        outcome: dict = {}

        def work() -> None:
            try:
                outcome["ref"] = self.lw.ingest(path, video_id, progress=events.put, subtitles=subtitles or None)
            except Exception as e:  # reported to this user as a toast below; other users are unaffected
                outcome["error"] = e
            finally:
                events.put(None)

        started = time.monotonic()
        threading.Thread(target=work, name=f"ingest {video_id}", daemon=True).start()
        yield f"Decoding and ingesting **{video_id}**: 0% · {_eta(None)}", gr.skip(), gr.skip(), gr.skip()
        while (event := events.get()) is not None:
            if event.duration:
                progress(min(1.0, event.t / event.duration), desc=f"{video_id}: {_eta(event.eta)}")
            yield progress_text(event), gr.skip(), gr.skip(), gr.skip()
        if "error" in outcome:
            error = outcome["error"]
            raise _toast(error) if isinstance(error, LongwatchError) else gr.Error(f"ingest failed: {error}")
        ref = outcome["ref"]
        ids = self.video_ids()
        chosen = [v for v in (selected or []) if v in ids and v != video_id] + [video_id]
        took = time.monotonic() - started
        length = "" if ref.duration is None else f" · {format_time(ref.duration)} of video"
        found = evidence_summary(self.lw.evidence_counts(video_id))
        yield (f"Ingested **{video_id}**: 100% · {ref.clips} clips{length} in {took:.1f} s · {found}",
               gr.update(choices=ids, value=chosen), ref.path, video_id)

    # -- ask -----------------------------------------------------------------------------------------------------
    def ask(self, question: str, videos: list[str] | None, history: list | None) -> Iterator[tuple]:
        """Answer in the chat, streamed: where the answer quotes evidence, the quotes and their chips show as soon as
        they are found, marked as such while the language model writes its sentence; then the whole answer, its
        quotes (or cited ranges) as seekable chips with thumbnails, and the relevance timeline."""
        if not question or not question.strip():
            raise gr.Error("Type a question about the selected videos.")
        asked = [{"role": "user", "content": question.strip()}]
        history = list(history or [])
        # Where each video's file is, read before asking: the answer holds the bank while it runs, and the quotes'
        # thumbnails are shown before it ends (frames are read from the files alone).
        paths, shots = {ref.video_id: ref.path for ref in self.lw.videos()}, {}
        answer, shown = None, None
        try:
            for quotes, answer in answer_stream(lambda on_quotes: self.lw.ask(question, videos or None,
                                                                                on_quotes=on_quotes)):
                if answer is None:  # only the quotes so far, with their chips and thumbnails
                    multi = len({q.video for q in quotes}) > 1 or len(videos or []) > 1
                    chips = quote_chips(quotes, multi)
                    shown = chips, quote_lines(quotes, multi), thumbnails(chips, paths, shots)
                    yield (history + asked + [{"role": "assistant", "content": f"*{WRITING}*\n\n{shown[1]}"}],
                           chips, shown[2], gr.skip(), gr.skip(), "")
        except Exception:
            if shown is not None:  # the quotes stand; only the promise of a sentence that will not come goes
                chips, lines, frames = shown
                yield (history + asked + [{"role": "assistant", "content": lines}], chips, frames, gr.skip(),
                       gr.skip(), "")
            raise
        multi = len({c.video for c in answer.citations}) > 1 or len(videos or []) > 1
        ranges = ", ".join(c.label(multi) for c in answer.citations)
        reply = answer.text + (f"\n\n*Sources:* {ranges}" if ranges else "")
        chips = answer_chips(answer, multi)
        yield (history + asked + [{"role": "assistant", "content": reply}], chips, thumbnails(chips, paths, shots),
               *timeline(answer), "")

    def seek_target(self, evt: gr.EventData):
        """A time of another video was clicked: load that video (and its transcript); the page's script seeks once
        it is loaded."""
        video = (getattr(evt, "_data", None) or {}).get("video")
        return (self.player_for(video), video) if video else (gr.skip(), gr.skip())

    # -- live ----------------------------------------------------------------------------------------------------
    def live_start(self, url: str, session: LiveSession | None):
        if session is not None and session.running:
            raise gr.Error("A stream is already being watched in this tab; stop it first.")
        if not url or not url.strip():
            raise gr.Error("Enter a stream URL, e.g. rtsp://camera/stream or https://host/live.ts.")
        try:
            # Typed by a web user, not the server's owner: only the network schemes the live config allows.
            session = self.lw.watch(url.strip(), untrusted=True)
        except LongwatchError as e:
            raise _toast(e) from None
        return session, live_text(session), gr.Timer(active=True)

    def live_stop(self, session: LiveSession | None):
        if session is None:
            return None, "No stream is being watched.", gr.Timer(active=False)
        try:
            stats = session.stop()
        except LongwatchError as e:
            raise _toast(e) from None
        return None, live_text(session, stats) + " · stopped", gr.Timer(active=False)

    def live_stats(self, session: LiveSession | None) -> str:
        return "No stream is being watched." if session is None else live_text(session)

    def live_ask(self, question: str, session: LiveSession | None) -> Iterator[str]:
        """The stream's answer, streamed like the chat's: quotes at once, then the whole answer."""
        if session is None:
            raise gr.Error("Start watching a stream before asking about it.")
        if not question or not question.strip():
            raise gr.Error("Type a question about the stream.")
        for quotes, answer in answer_stream(lambda on_quotes: session.ask(question, on_quotes=on_quotes)):
            if answer is None:
                yield f"*{WRITING}*\n\n{quote_lines(quotes, False)}"
        ranges = ", ".join(c.label() for c in answer.citations)
        yield answer.text + (f"\n\n*Sources:* {ranges}" if ranges else "")


def thumbnails(chips: list[dict], paths: dict[str, str | None], shots: dict) -> list[tuple]:
    """One frame per chip, captioned like it, so each quote or cited range can be seen before it is played.
    `paths`: each video's file (VideoRef.path); `shots` keeps the frames already read, by (video, time)."""
    out = []
    for chip in chips:
        key = (chip["video"], chip["t0"])
        if key not in shots:
            try:
                shots[key] = frame_at(paths.get(chip["video"]), chip["t0"])
            except LongwatchError:
                shots[key] = None  # a video ingested from a file that has since moved: the chip still cites it
        if shots[key] is not None:
            out.append((shots[key], chip["label"]))
    return out


def answer_stream(ask: Callable[[Callable[[list], None]], object]) -> Iterator[tuple[list, object]]:
    """Run `ask(on_quotes)` in a worker thread and yield `(quotes, None)` when the quotes are known, then
    `(quotes, answer)` once the answer is.

    The caller's thread only waits, in short polls that notice a worker that died, so a lost answer is an error
    and never a hang; typed errors become the usual toast. Model use stays serialised by LongWatch's lock: the
    worker holds it for the whole answer, as a plain call would."""
    events: queue.Queue = queue.Queue()

    def work() -> None:
        outcome: tuple = ("error", RuntimeError(LOST_ANSWER))  # what is left if the thread is stopped outright
        try:
            outcome = ("answer", ask(lambda quotes: events.put(("quotes", list(quotes)))))
        except Exception as e:  # reported to this user below; the server and other users carry on
            outcome = ("error", e)
        finally:
            events.put(outcome)

    worker = threading.Thread(target=work, name="ask", daemon=True)
    worker.start()
    quotes: list = []
    while True:
        try:
            kind, value = events.get(timeout=ASK_POLL_S)
        except queue.Empty:
            if worker.is_alive():
                continue
            kind, value = events.get_nowait() if not events.empty() else ("error", RuntimeError(LOST_ANSWER))
        if kind == "quotes":
            quotes = value
            yield quotes, None
            continue
        worker.join(timeout=ASK_POLL_S)  # it has handed over its outcome and is ending
        if kind == "error":
            raise _toast(value) if isinstance(value, LongwatchError) else value
        yield quotes, value
        return


def evidence_summary(counts: dict[str, int]) -> str:
    """`transcript: Said 3 · Subtitle 2 · On screen 5`: what the evidence lanes stored, so a silent video or one
    without subtitles says so at once instead of leaving the user to find out from a refused question."""
    parts = [f"{label} {counts[kind]}" for kind, label in KIND_LABELS.items() if counts.get(kind)]
    return "transcript: " + " · ".join(parts) if parts else "nothing said, subtitled or shown as text was found"


def answer_chips(answer, multi: bool) -> list[dict]:
    """One chip per quoted piece of evidence (see quote_chips); an answer without quotes (a visual answer) gets one
    chip per cited range."""
    chips = quote_chips(getattr(answer, "evidence", None) or [], multi)  # pipeline.answer.QuotedEvidence
    if chips:
        return chips
    return [{"video": c.video, "t0": round(c.t0, 3), "kind": "", "kind_label": "", "span": c.label(multi),
             "label": c.label(multi), "score": f"relevance {c.score:.2f}"} for c in answer.citations]


def quote_chips(quotes: list, multi: bool) -> list[dict]:
    """One chip per quote: its kind (Said, Subtitle, On screen, Caption) and time range. Every field is ours (a
    validated id, numbers, fixed words): the chips' template is evaluated as a JS template string, so quoted text
    never goes in."""
    chips = []
    for q in quotes:
        kind = KIND_LABELS.get(q.kind, "")
        span = (f"{q.video} " if multi else "") + format_span(q.t0, q.t1)
        chips.append({"video": q.video, "t0": round(q.t0, 3), "kind": q.kind if kind else "", "kind_label": kind,
                      "span": span, "label": f"{kind} {span}".strip(), "score": "quoted"})
    return chips


def transcript_html(video_id: str, lines: list, filtered: bool) -> str:
    """The transcript panel's HTML. Evidence text comes from the video (speech, subtitles, OCR) and so from whoever
    made it: every piece is HTML-escaped here and the component shows this string as its value, never as a
    template, so no text of a video is ever markup or script."""
    rows = []
    for line in lines[:TRANSCRIPT_LINES]:
        context = f'<span class="lw-context">{html.escape(line.context)}</span>' if line.context else ""
        rows.append(f'<button class="lw-line" data-video="{html.escape(video_id)}" data-t="{line.t0:.3f}" '
                    f'data-kind="{html.escape(line.kind)}"><span class="lw-time">{format_time(line.t0)}</span>'
                    f'<span class="lw-kind lw-kind-{html.escape(line.kind)}">'
                    f'{html.escape(KIND_LABELS.get(line.kind, line.kind))}</span>'
                    f'<span class="lw-text">{html.escape(line.text)}{context}</span></button>')
    if not lines:
        rows.append('<p class="lw-empty">No line matches the filter.</p>' if filtered else
                    '<p class="lw-empty">Nothing said, subtitled or shown as text is stored for this video.</p>')
    elif len(lines) > TRANSCRIPT_LINES:
        rows.append(f'<p class="lw-empty">Showing the first {TRANSCRIPT_LINES} of {len(lines)} lines; type in the '
                    f'filter to find the rest.</p>')
    # data-shown names the player's video even when no line is listed, for the seek script in ui/app.py.
    return f'<div class="lw-lines" data-shown="{html.escape(video_id)}">{"".join(rows)}</div>'


def live_text(session: LiveSession, stats=None) -> str:
    s = stats or session.stats
    text = (f"**{s.video_id}** · {s.clips_committed} clips · ingested up to {format_time(s.ingested_until)} · "
            f"lag {s.lag_seconds:.1f} s · frames received {s.frames_received}, dropped {s.frames_dropped}")
    return text + (f" · error: {s.error}" if s.error else "")


def timeline(answer) -> tuple:
    """Two plot tables for the last question: relevance per clip, and visual tokens allocated per clip.

    Per-clip allocation comes from `answer.clips` (video, t0, relevance, tokens per considered clip) when the
    pipeline reports it; otherwise only the cited ranges and their relevance are known, and the token plot is empty.
    """
    import pandas as pd

    columns = ["video", "clip start"]  # hh:mm:ss labels read better than raw seconds on a bar axis
    clips = sorted(getattr(answer, "clips", None) or [], key=lambda c: (c.video, c.t0))
    if clips:
        relevance = [(c.video, format_time(c.t0), c.relevance) for c in clips]
        tokens = [(c.video, format_time(c.t0), c.tokens) for c in clips]
    else:
        cited = sorted(answer.citations, key=lambda c: (c.video, c.t0))
        relevance = [(c.video, format_time(c.t0), c.score) for c in cited]
        tokens = []
    return (pd.DataFrame(relevance, columns=[*columns, "relevance"]),
            pd.DataFrame(tokens, columns=[*columns, "tokens"]))
