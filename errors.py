"""One typed error hierarchy for everything a user can feed longwatch.

Every message names the input, what was detected, which limit or check failed, and what to do.
"""

from __future__ import annotations


class LongwatchError(Exception):
    """Base of all errors longwatch raises on purpose; the CLI maps subclasses to exit codes."""

    exit_code = 1


class VideoError(LongwatchError):
    """A video input could not be used.

    Args:
        source: the path, URL or description of the input.
        detected: what was actually found (e.g. "PNG image", "0 bytes", "audio stream only").
        problem: which check or limit failed.
        hint: what the user can do about it.
    """

    exit_code = 3

    def __init__(self, source: object, detected: str, problem: str, hint: str):
        self.source = str(source)
        self.detected = detected
        self.problem = problem
        self.hint = hint
        super().__init__(f"{self.source}: {problem} (found: {detected}). {hint}")


class VideoNotFound(VideoError):
    """The path does not exist, is a directory, or cannot be read."""


class UnsupportedVideo(VideoError):
    """A real file that is not a video we accept: wrong container, no video stream, codec without a decoder."""


class CorruptVideo(VideoError):
    """A video whose bytes are damaged: truncated, undecodable, or it hung/crashed the decoder."""


class VideoTooLarge(VideoError):
    """A video over a configured limit: pixels per frame, duration, fps or file size."""


class StreamError(VideoError):
    """A live stream that could not be opened, or dropped and did not come back."""


class QuestionFileError(LongwatchError, ValueError):
    """No usable question: an empty question, or a question file (plain lines or a benchmark's annotations) that is
    missing, unreadable, empty or without one good row. A usage error, like argparse's."""

    exit_code = 2


class ModelError(LongwatchError):
    """A model that cannot be loaded: missing weights offline, unsafe format, unknown family."""

    exit_code = 4


class BankError(LongwatchError):
    """A memory bank that cannot be opened or written: not a bank, read-only, unknown video."""

    exit_code = 5


class MissingDependency(LongwatchError, ImportError):
    """An optional package a feature needs is not installed; the message names the extra that installs it.

    An ImportError too, so code that already treats a failed import as "feature unavailable" keeps working.
    """

    exit_code = 6

    def __init__(self, package: str, feature: str, install: str):
        self.package = package
        self.feature = feature
        self.install = install
        super().__init__(f"{feature} needs {package}, which is not installed: {install}")
        self.name = package
