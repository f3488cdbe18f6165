"""The Gradio web UI: upload and ingest with progress, chat with seekable cited time ranges, library, live tab.

`create_app(lw)` builds the Blocks on one shared `LongWatch`; `launch(app, lw, ui)` serves it with safe defaults.
"""

from __future__ import annotations

import gradio as gr

from longwatch.app import VIDEO_SUFFIXES, LongWatch, UIConfig
from longwatch.ui.handlers import LIBRARY_COLUMNS, Handlers

VIDEO_TYPES = list(VIDEO_SUFFIXES)

# Chips are buttons carrying their time; one delegated listener on the component root survives re-renders.
# A chip of the video in the player seeks at once; one of another video asks the server to load that video
# and leaves the time in window.__lwSeek for the loadedmetadata listener below.
CHIPS_TEMPLATE = """<div class="lw-chips">{{#each value}}<button class="lw-chip" data-video="{{this.video}}"
data-t="{{this.t0}}" title="relevance {{this.score}}">{{this.label}}</button>{{/each}}</div>"""
CHIPS_JS = """
element.addEventListener('click', (event) => {
  const chip = event.target.closest('.lw-chip');
  if (!chip) return;
  const t = parseFloat(chip.dataset.t);
  const player = document.querySelector('#player video');
  const src = player ? decodeURIComponent(player.currentSrc || '') : '';
  if (player && src.includes('/' + chip.dataset.video + '.')) {
    player.currentTime = t;
  } else {
    window.__lwSeek = t;
    trigger('click', {video: chip.dataset.video, t: t});
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
                    chips = gr.HTML([], html_template=CHIPS_TEMPLATE, js_on_load=CHIPS_JS, elem_id="chips",
                                    css_template="", label="Cited time ranges")
                    thumbs = gr.Gallery(label="Cited clips", elem_id="thumbs", columns=5, height=140,
                                        object_fit="contain", allow_preview=False)
                with gr.Column(scale=2):
                    upload = gr.File(label="Upload a video (decoded once, then ingested)", file_types=VIDEO_TYPES,
                                     elem_id="upload", height=110)
                    status = gr.Markdown("No video ingested in this session yet.", elem_id="ingest-status")
                    videos = gr.Dropdown(h.video_ids(), value=[], multiselect=True, label="Ask about (none = all)",
                                         elem_id="videos", allow_custom_value=True)
                    chat = gr.Chatbot(label="Answers", elem_id="chat", height=300)
                    question = gr.Textbox(label="Question", elem_id="question", placeholder="What is written on "
                                          "the sign? When does the speaker mention the budget?", submit_btn=True)
            with gr.Row():
                relevance = gr.BarPlot(x="clip start", y="relevance", color="video", elem_id="relevance",
                                       label="Relevance per clip (last question)", height=200, y_lim=[0, 1])
                tokens = gr.BarPlot(x="clip start", y="tokens", color="video", elem_id="tokens",
                                    label="Visual tokens allocated per clip", height=200)
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
        ingest = upload.upload(h.ingest, [upload, videos], [status, videos, player], api_name="ingest",
                               show_progress_on=status)
        ingest.success(lambda: None, None, upload, api_name=False)
        ingest.failure(lambda: None, None, upload, api_name=False)
        question.submit(h.ask, [question, videos, chat], [chat, chips, thumbs, relevance, tokens, question],
                        api_name="ask", show_progress_on=chat)
        chips.click(h.seek_target, None, player, api_name=False)
        videos.input(lambda ids: h.player_for(ids[-1]) if ids else gr.skip(), videos, player, api_name="show")
        refresh.click(h.refresh, videos, [library, videos, doomed], api_name="videos")
        library_tab.select(h.refresh, videos, [library, videos, doomed], api_name=False)
        app.load(h.refresh, videos, [library, videos, doomed], api_name=False)  # a reload shows today's bank
        delete.click(h.delete, [doomed, videos], [library, videos, doomed], api_name="delete")
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
