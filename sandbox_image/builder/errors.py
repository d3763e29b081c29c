"""The one error the image builder raises: what failed, and where its log is."""

from __future__ import annotations

from pathlib import Path


class BuildError(Exception):
    """A build step failed. ``log`` names the file with the step's full output, if any."""

    def __init__(self, message: str, log: Path | None = None, tail: str = "") -> None:
        self.log = log
        text = message
        if log is not None:
            text += f" (full output: {log})"
        if tail:
            text += "\n" + tail
        super().__init__(text)
