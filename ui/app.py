"""The Gradio web UI: upload and ingest with progress, chat whose quotes seek the player, a searchable transcript,
library, live tab.

`create_app(lw)` builds the Blocks on one shared `LongWatch`; `launch(app, lw, ui)` serves it with safe defaults.
"""

from __future__ import annotations

import gradio as gr

from longwatch.app import KIND_LABELS, VIDEO_SUFFIXES, LongWatch, UIConfig
from longwatch.ui.handlers import LIBRARY_COLUMNS, Handlers

VIDEO_TYPES = list(VIDEO_SUFFIXES)

# Chips and transcript lines are buttons carrying their video and time; one delegated listener per component root
# survives re-renders. A time of the video in the player seeks at once; one of another video asks the server to
# load that video and leaves the time in window.__lwSeek for the loadedmetadata listener below. The player's video
# is the one whose transcript is shown (its root carries data-shown), or the one its file is named after.
CHIPS_TEMPLATE = """<div class="lw-chips">{{#each value}}<button class="lw-chip" data-video="{{this.video}}"
data-t="{{this.t0}}" title="{{this.score}}">{{#if this.kind_label}}<span class="lw-kind lw-kind-{{this.kind}}">
{{this.kind_label}}</span>{{/if}}{{this.span}}</button>{{/each}}</div>"""
SEEK_JS = """
element.addEventListener('click', (event) => {
  const target = event.target.closest('[data-t]');
  if (!target) return;
  const t = parseFloat(target.dataset.t);
  const video = target.dataset.video;
  const player = document.querySelector('#player video');
  const shown = document.querySelector('#transcript [data-shown]');
  const src = player ? decodeURIComponent(player.currentSrc || '') : '';
  if (player && player.currentSrc && ((shown && shown.dataset.shown === video) || src.includes('/' + video + '.'))) {
    player.currentTime = t;
  } else {
    window.__lwSeek = t;
    trigger('click', {video: video, t: t});
  }
});
"""
HEAD = """<script>
document.addEventListener('loadedmetadata', (event) => {
  if (event.target.closest && event.target.closest('#player') && window.__lwSeek !== undefined) {
    event.target.currentTime = window.__lwSeek;
    window.__lwSeek = undefined;
  }
}, true);
</script>"""
CSS = """
.lw-chips { display: flex; flex-wrap: wrap; gap: 6px; }
#thumbs .grid-container { grid-template-columns: repeat(auto-fill, 160px) !important; }
.lw-chip { border: 1px solid var(--color-accent); border-radius: 999px; padding: 2px 10px; cursor: pointer;
           background: var(--color-accent-soft); font-family: var(--font-mono); font-size: 0.85em; }
.lw-kind { font-family: var(--font); font-weight: 600; border-radius: 4px; padding: 0 6px; margin-right: 6px;
           background: var(--neutral-200); color: var(--neutral-800); }
.lw-kind-speech { background: #dbeafe; color: #1e3a8a; } .lw-kind-subtitle { background: #ede9fe; color: #4c1d95; }
.lw-kind-ocr { background: #dcfce7; color: #14532d; } .lw-kind-caption { background: #fef3c7; color: #78350f; }
#transcript { max-height: 320px; overflow-y: auto; }
.lw-lines { display: flex; flex-direction: column; }
.lw-line { display: flex; gap: 8px; align-items: baseline; text-align: left; padding: 3px 6px; cursor: pointer;
           border: none; border-bottom: 1px solid var(--border-color-primary); background: none; }
.lw-line:hover { background: var(--color-accent-soft); }
.lw-time { font-family: var(--font-mono); font-size: 0.85em; color: var(--body-text-color-subdued); }
.lw-context { display: block; font-size: 0.8em; color: var(--body-text-color-subdued); }
.lw-empty { color: var(--body-text-color-subdued); }
"""


def _stop_session(session) -> None:
    """A closed tab must not leave its stream running."""
    if session is not None:
        session.stop(raise_error=False)


def create_app(lw: LongWatch) -> gr.Blocks:
    """Build the UI on `lw`. Every event that a script may call has an `api_name` (see tests/test_ui_client.py)."""
    h = Handlers(lw)
    with gr.Blocks(title="longwatch") as app:
        gr.Markdown("## longwatch — ask questions about long videos and live streams")
        with gr.Tab("Ask", id="ask"):
            with gr.Row():
                with gr.Column(scale=3):
                    player = gr.Video(label="Player", elem_id="player", interactive=False, height=360)
                    chips = gr.HTML([], html_template=CHIPS_TEMPLATE, js_on_load=SEEK_JS, elem_id="chips",
                                    css_template="", label="Quoted evidence and cited time ranges")
                    thumbs = gr.Gallery(label="Cited clips", elem_id="thumbs", columns=5, height=140,
                                        object_fit="contain", allow_preview=False)
                    with gr.Row():
                        lines_filter = gr.Textbox(label="Search the transcript", elem_id="transcript-filter",
                                                  placeholder="words, a name or a number", scale=2)
                        kinds = gr.CheckboxGroup([(label, kind) for kind, label in KIND_LABELS.items()],
                                                 value=list(KIND_LABELS), label="Show", elem_id="transcript-kinds",
                                                 scale=3)
                    # A plain string value (no html_template): the lines' text is escaped HTML, never a template.
                    transcript = gr.HTML(h.transcript(None, None, None), js_on_load=SEEK_JS, elem_id="transcript",
                                         label="Transcript: what is said, subtitled and shown")
                    shown = gr.State(None)  # the video in the player, whose transcript is shown
                with gr.Column(scale=2):
                    upload = gr.File(label="Upload a video (decoded once, then ingested)", file_types=VIDEO_TYPES,
                                     elem_id="upload", height=110)
                    subtitles = gr.File(label="Subtitles for it (optional: .srt, .vtt, .ass; add them first)",
                                        file_types=[".srt", ".vtt", ".ass", ".ssa"], file_count="multiple",
                                        elem_id="subtitles", height=60)
                    status = gr.Markdown("No video ingested in this session yet.", elem_id="ingest-status")
                    videos = gr.Dropdown(h.video_ids(), value=[], multiselect=True, label="Ask about (none = all)",
                                         elem_id="videos", allow_custom_value=True)
                    chat = gr.Chatbot(label="Answers", elem_id="chat", height=300)
                    question = gr.Textbox(label="Question", elem_id="question", placeholder=h.question_placeholder(),
                                          submit_btn=True)
            with gr.Row():
                relevance = gr.BarPlot(x="clip start", y="relevance", color="video", elem_id="relevance",
                                       label="Relevance per clip (last question)", height=200, y_lim=[0, 1])
                # A text-only preset reads no frames: an always-empty token plot would only suggest it did.
                tokens = gr.BarPlot(x="clip start", y="tokens", color="video", elem_id="tokens",
                                    label="Visual tokens allocated per clip", height=200,
                                    visible="visual" in lw.answers_from())
        with gr.Tab("Library", id="library") as library_tab:
            library = gr.Dataframe(h.library(), headers=LIBRARY_COLUMNS, interactive=False, elem_id="library")
            with gr.Row():
                refresh = gr.Button("Refresh")
                doomed = gr.Dropdown(h.video_ids(), label="Video to delete", elem_id="delete-id",
                                     allow_custom_value=True)
                delete = gr.Button("Delete", variant="stop")
        with gr.Tab("Live", id="live"):
            session = gr.State(None, delete_callback=_stop_session)
            with gr.Row():
                url = gr.Textbox(label="Stream URL", placeholder="rtsp://camera/stream or https://host/live.ts",
                                 elem_id="live-url", scale=3)
                start = gr.Button("Watch", variant="primary")
                stop = gr.Button("Stop")
            live_status = gr.Markdown("No stream is being watched.", elem_id="live-status")
            live_question = gr.Textbox(label="Ask about the stream so far", elem_id="live-question",
                                       submit_btn=True)
            live_answer = gr.Markdown(elem_id="live-answer")
            ticker = gr.Timer(1.0, active=False)  # ticks only while this tab watches a stream

        # The file box empties after every attempt, so a rejected file never blocks the next upload.
        ingest = upload.upload(h.ingest, [upload, videos, subtitles], [status, videos, player, shown],
                               api_name="ingest", show_progress_on=status)
        ingest.success(lambda: (None, None), None, [upload, subtitles], api_name=False)
        ingest.failure(lambda: (None, None), None, [upload, subtitles], api_name=False)
        question.submit(h.ask, [question, videos, chat], [chat, chips, thumbs, relevance, tokens, question],
                        api_name="ask", show_progress_on=chat)
        chips.click(h.seek_target, None, [player, shown], api_name=False)
        transcript.click(h.seek_target, None, [player, shown], api_name=False)
        # Every event that puts a video in the player names it in `shown`, so its transcript follows the player.
        videos.input(h.show, videos, [player, shown], api_name="show")
        lines_shown = dict(fn=h.transcript, inputs=[shown, lines_filter, kinds], outputs=transcript,
                           show_progress="hidden")
        shown.change(**lines_shown, api_name=False)
        lines_filter.change(**lines_shown, api_name=False)
        kinds.change(**lines_shown, api_name=False)
        gr.api(h.transcript, api_name="transcript")  # a script names the video; the page's is held in session state
        refresh.click(h.refresh, videos, [library, videos, doomed], api_name="videos")
        library_tab.select(h.refresh, videos, [library, videos, doomed], api_name=False)
        app.load(h.refresh, videos, [library, videos, doomed], api_name=False)  # a reload shows today's bank
        deleted = delete.click(h.delete, [doomed, videos, shown], [library, videos, doomed, shown], api_name="delete")
        deleted.success(lambda video: gr.skip() if video else None, shown, player, api_name=False)
        start.click(h.live_start, [url, session], [session, live_status, ticker], api_name="live_start")
        stop.click(h.live_stop, session, [session, live_status, ticker], api_name="live_stop")
        ticker.tick(h.live_stats, session, live_status, api_name="live_stats", show_progress="hidden")
        live_question.submit(h.live_ask, [live_question, session], live_answer, api_name="live_ask")
    return app


def launch(app: gr.Blocks, lw: LongWatch, ui: UIConfig | None = None, **overrides):
    """Serve `app`: bound to `ui.host` (127.0.0.1 by default), optional login, bounded uploads, and only the
    bank's uploads folder readable besides Gradio's own cache (so /gradio_api/file= reaches nothing else)."""
    ui = ui or UIConfig()
    lw.uploads_dir.mkdir(parents=True, exist_ok=True)
    app.queue(default_concurrency_limit=ui.concurrency)
    options = dict(server_name=ui.host, server_port=ui.port, auth=ui.auth_pair(),
                   max_file_size=f"{ui.max_upload_mb}mb", allowed_paths=[str(lw.uploads_dir)],
                   css=CSS, head=HEAD, show_error=True, footer_links=[])
    options.update(overrides)
    return app.launch(**options)
