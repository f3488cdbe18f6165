"""What the decode worker does: open a file the safe way, report its facts, decode a first frame, serve decord batches.

Also importable in-process (trusted files, tests); it never raises typed errors itself — the caller names the file.
"""

from __future__ import annotations

import math
import os

# FFmpeg demuxer names we read. Playlists (hls, concat, dash), image demuxers and raw elementary streams are
# left out on purpose: a playlist would make FFmpeg open other files or URLs named inside the upload.
# "mpegvideo" is the one raw stream admitted: old cameras and encoders wrote bare MPEG-1/2 video as .mpg, and its
# sequence header carries the frame rate, so frame times stay honest without a container.
ALLOWED_FORMATS = ("mov,mp4,m4a,3gp,3g2,mj2", "matroska,webm", "avi", "mpegts", "flv", "asf", "mpeg", "mpegvideo",
                   "ogg")
_OPEN_OPTIONS = {"protocol_whitelist": "file", "format_whitelist": ",".join(ALLOWED_FORMATS)}
_FIRST_FRAME_PACKETS = 600  # a valid stream yields its first frame long before this many packets
_RATE_PACKETS, _RATE_SPAN = 120, 2.0  # the frame rate is measured over the first packets within this many seconds


def open_container(path: str):
    """PyAV container for a local file, restricted to the file protocol and the allow-listed demuxers."""
    import av

    return av.open("file:" + os.path.abspath(path), container_options=dict(_OPEN_OPTIONS))


def probe_facts(path: str, max_pixels: int | None = None, decode_test: bool = True) -> dict:
    """Facts about `path` as plain JSON data, or {"error": "open", "message": ...} when FFmpeg cannot open it.

    Decodes the first frame (for rotation and to prove the stream decodes) unless the declared frame size
    is already over `max_pixels`, in which case decoding is pointless and possibly dangerous.
    """
    import av
    import av.logging

    # FFmpeg explains some refusals only in its log (e.g. "Picture size 16384x16384 is invalid"): keep its errors.
    level = av.logging.get_level()
    av.logging.set_level(av.logging.ERROR)
    try:
        with av.logging.Capture() as logs:
            try:
                container = open_container(path)
            except (av.error.FFmpegError, OSError, ValueError) as e:
                return {"error": "open", "message": f"{type(e).__name__}: {e}", "log": _lines(logs)}
    finally:
        av.logging.set_level(level)
    with container:
        streams = [{"type": s.type, "codec": _codec_name(s)} for s in container.streams]
        # A raw stream has no duration; FFmpeg's estimate from its bitrate is a guess (0.01 s for a 3 s .mpg).
        known = container.duration and container.format.name != "mpegvideo"
        facts: dict = {"container": container.format.name, "streams": streams,
                       "duration": container.duration / 1e6 if known else None,
                       "has_audio": bool(container.streams.audio), "video": None, "log": _lines(logs)}
        if not container.streams.video:
            return facts
        stream = container.streams.video[0]
        ctx = stream.codec_context
        # Only the average rate is a declaration: guessed_rate falls back to the time base's tick rate (1000 for
        # the 1/1000 time base of WebM, FLV and ASF), which says nothing about how often frames come.
        rate = stream.average_rate
        tb = stream.time_base
        video = {"codec": _codec_name(stream), "has_decoder": ctx is not None and ctx.codec.is_decoder,
                 "width": ctx.width if ctx else 0, "height": ctx.height if ctx else 0,
                 "fps": float(rate) if rate else 0.0, "n_frames": stream.frames or None,
                 "duration": float(stream.duration * tb) if known and stream.duration and tb else None,
                 "start": float(stream.start_time * tb) if stream.start_time is not None and tb else 0.0,
                 "rotate_tag": stream.metadata.get("rotate"), "rotation_ccw": None,
                 "first_frame": None, "decode_error": None, "profile": stream.profile, "measured_fps": None}
        facts["video"] = video
        too_big = max_pixels is not None and video["width"] * video["height"] > max_pixels
        if decode_test and video["has_decoder"] and not too_big:
            _first_frame(container, stream, video)
        return facts


def _lines(logs: list) -> list[str]:
    return [f"{name}: {message.strip()}" for _, name, message in logs[-8:]]


def _codec_name(stream) -> str:
    ctx = stream.codec_context  # canonical "av1", not the decoder's name ("libdav1d")
    return (getattr(ctx.codec, "canonical_name", None) or ctx.name) if ctx is not None else "unknown"


def _first_frame(container, stream, video: dict) -> None:
    """Decode the first frame, then read on (demux only, no decode) to measure the frame rate from packet times."""
    import av

    times: list[float] = []
    packets = container.demux(stream)
    try:
        for n, packet in enumerate(packets):
            if packet.pts is not None and packet.time_base:
                times.append(float(packet.pts * packet.time_base))
            if video["first_frame"] is not None:
                if n >= _RATE_PACKETS or (times and max(times) - min(times) > _RATE_SPAN):
                    break
                continue
            if n >= _FIRST_FRAME_PACKETS:
                break
            try:
                frames = packet.decode()
            except av.error.InvalidDataError as e:
                video["decode_error"] = str(e)
                continue
            if frames:
                f = frames[0]
                video["first_frame"] = {"t": f.time, "width": f.width, "height": f.height}
                video["rotation_ccw"] = f.rotation
    except (av.error.FFmpegError, OSError) as e:
        if video["first_frame"] is None:
            video["decode_error"] = f"{type(e).__name__}: {e}"
    video["measured_fps"] = measured_rate(times)
    if video["first_frame"] is None and video["decode_error"] is None:
        video["decode_error"] = "the stream ended before any frame decoded"


def measured_rate(times: list[float], span: float = _RATE_SPAN) -> float | None:
    """Frames per second over the first `span` seconds of packet times (any order), or None with under two times.

    Reordered B-frames and duplicate times are harmless: times are sorted and deduplicated first.
    """
    unique = sorted(set(times))
    if len(unique) < 2:
        return None
    window = [t for t in unique if t - unique[0] <= span]
    if len(window) < 2:
        window = unique[:2]
    return (len(window) - 1) / (window[-1] - window[0])


def handle(request: dict, state: dict) -> tuple[dict, bytes | None]:
    """One worker request -> (reply, payload)."""
    op = request["op"]
    if op == "probe":
        return probe_facts(request["path"], request.get("max_pixels"), request.get("decode_test", True)), None
    if op == "decord_open":
        import decord

        reader = decord.VideoReader(request["path"], ctx=decord.cpu(0), num_threads=request.get("threads", 0))
        state["reader"] = reader
        n = len(reader)
        times = reader.get_frame_timestamp(range(n))[:, 0].tolist() if n else []
        shape = list(reader[0].shape) if n else []
        reader.seek(0)
        return {"n": n, "times": times, "shape": shape}, None
    if op == "decord_batch":
        import numpy as np

        batch = np.ascontiguousarray(state["reader"].get_batch(request["indices"]).asnumpy())
        return {"shape": list(batch.shape)}, batch.tobytes()
    if op == "ping":
        return {"ok": True}, None
    raise ValueError(f"unknown worker op {op!r}")


def packet_time(packet) -> float:
    """A packet's pts in seconds, or -inf when it has none (then the next frame settles the matter)."""
    return float(packet.pts * packet.time_base) if packet.pts is not None and packet.time_base else -math.inf


def same_timeline(times: list[float], reply: dict) -> tuple[bool, str]:
    """decord indexes frames itself; it is safe only if its frame list is PyAV's, up to a constant offset."""
    import numpy as np

    if "error" in reply:
        return False, reply["message"]
    theirs = reply["times"]
    if len(theirs) != len(times):
        return False, f"decord sees {len(theirs)} frames, the container {len(times)}"
    if not times:
        return False, "no frames"
    diff = np.asarray(theirs) - np.asarray(times)
    if np.ptp(diff) > 2e-3:
        return False, f"frame times differ by up to {np.ptp(diff) * 1e3:.1f} ms"
    return True, ""
