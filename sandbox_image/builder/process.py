"""Run a build command with its output in a log file and each line passed to a callback."""

from __future__ import annotations

import os
import subprocess
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path

from sandbox_image.builder.errors import BuildError

LineCallback = Callable[[str], None]


def run_logged(
    cmd: Sequence[str | os.PathLike[str]],
    log: Path,
    *,
    what: str,
    on_line: LineCallback | None = None,
    env: dict[str, str] | None = None,
    stdin: bytes | None = None,
    cwd: Path | None = None,
) -> None:
    """Run ``cmd``; append its output (stdout and stderr) to ``log``; raise BuildError on failure.

    ``what`` names the step in the error message. ``on_line`` sees each output line as it comes.
    """
    log.parent.mkdir(parents=True, exist_ok=True)
    tail: deque[str] = deque(maxlen=15)
    full_env = {**os.environ, **(env or {})}
    with log.open("a", encoding="utf-8") as out:
        out.write(f"$ {' '.join(map(str, cmd))}\n")
        out.flush()
        try:
            proc = subprocess.Popen(
                [str(c) for c in cmd],
                stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                env=full_env,
                cwd=cwd,
            )
        except FileNotFoundError as exc:
            raise BuildError(f"{what}: command not found: {cmd[0]}") from exc
        with proc:  # closes the pipes however the loop ends
            if stdin is not None:
                assert proc.stdin is not None
                proc.stdin.write(stdin)
                proc.stdin.close()
            assert proc.stdout is not None
            for raw in proc.stdout:
                line = raw.decode("utf-8", "replace").rstrip("\n")
                out.write(line + "\n")
                tail.append(line)
                if on_line is not None:
                    on_line(line)
            code = proc.wait()
        out.write(f"[exit {code}]\n")
    if code != 0:
        raise BuildError(f"{what} failed with exit code {code}", log, "\n".join(tail))


def capture(cmd: Sequence[str | os.PathLike[str]], *, what: str) -> str:
    """Run a short command and return its stdout; raise BuildError with its stderr on failure."""
    try:
        proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, check=False)
    except FileNotFoundError as exc:
        raise BuildError(f"{what}: command not found: {cmd[0]}") from exc
    if proc.returncode != 0:
        raise BuildError(f"{what} failed: {proc.stderr.strip() or proc.stdout.strip()}")
    return proc.stdout
