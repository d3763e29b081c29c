"""Content-addressed file stores on the trusted side: quarantine and released packages.

A ``ContentStore`` keeps each file once, under the hex sha256 of its bytes:
``<root>/<first two hex digits>/<sha256>``. Files are written to a temporary name in the same
directory, hashed while written, fsynced, made read-only (0400) and renamed into place, so a
reader sees a whole file or none, and two writers of the same bytes agree. Reading checks the
hash again (``read_verified``): a file changed on disk is refused, never served.

The quarantine (``<data_dir>/quarantine``) holds what analysts submit and what checks derive
(re-encoded images); packages (``<data_dir>/packages``) hold the released zips. Nothing in
either is ever served to a sandbox.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import AsyncIterable, BinaryIO, Iterable

from release_review.exceptions import InvalidInput, PackageError, TooLarge

SHA256 = re.compile(r"^[0-9a-f]{64}\Z")
CHUNK = 1 << 20


@dataclass(frozen=True)
class Stored:
    sha256: str
    size: int
    path: Path


class ContentStore:
    def __init__(self, root: Path):
        self.root = Path(root)

    def path(self, sha256: str) -> Path:
        if not SHA256.match(sha256 or ""):
            raise InvalidInput(f"{sha256!r} is not a sha256 (64 lowercase hex digits)")
        return self.root / sha256[:2] / sha256

    def has(self, sha256: str) -> bool:
        return self.path(sha256).is_file()

    def put_bytes(self, data: bytes) -> Stored:
        return self.put_chunks([data], len(data))

    def put_file(self, source: Path, max_bytes: int | None = None) -> Stored:
        with open(source, "rb") as f:
            return self.put_stream(f, max_bytes)

    def put_stream(self, stream: BinaryIO, max_bytes: int | None = None) -> Stored:
        return self.put_chunks(iter(lambda: stream.read(CHUNK), b""), max_bytes)

    def put_chunks(self, chunks: Iterable[bytes], max_bytes: int | None = None) -> Stored:
        """Store the concatenated chunks; refuse (TooLarge) past `max_bytes`, keeping nothing."""
        tmp, out, digest = self._incoming()
        try:
            with out:
                size = 0
                for chunk in chunks:
                    size = self._write(out, digest, chunk, size, max_bytes)
            return self._commit(tmp, digest.hexdigest(), size, out)
        except BaseException:
            self._discard(tmp)
            raise

    async def put_async(self, chunks: AsyncIterable[bytes], max_bytes: int | None = None
                        ) -> Stored:
        """``put_chunks`` for a request body that arrives asynchronously."""
        tmp, out, digest = self._incoming()
        try:
            with out:
                size = 0
                async for chunk in chunks:
                    size = self._write(out, digest, chunk, size, max_bytes)
            return self._commit(tmp, digest.hexdigest(), size, out)
        except BaseException:
            self._discard(tmp)
            raise

    def _incoming(self) -> tuple[str, BinaryIO, "hashlib._Hash"]:
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, tmp = tempfile.mkstemp(prefix=".incoming-", dir=self.root)
        return tmp, os.fdopen(fd, "wb"), hashlib.sha256()

    @staticmethod
    def _write(out: BinaryIO, digest: "hashlib._Hash", chunk: bytes, size: int,
               max_bytes: int | None) -> int:
        size += len(chunk)
        if max_bytes is not None and size > max_bytes:
            raise TooLarge(f"the file is larger than the limit of {max_bytes:,} bytes")
        digest.update(chunk)
        out.write(chunk)
        return size

    @staticmethod
    def _discard(tmp: str) -> None:
        if os.path.exists(tmp):
            os.unlink(tmp)

    def _commit(self, tmp: str, sha: str, size: int, out: BinaryIO) -> Stored:
        """Make the written file durable and move it under its hash (or drop a duplicate)."""
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        final = self.path(sha)
        final.parent.mkdir(exist_ok=True, mode=0o700)
        if final.is_file():
            os.unlink(tmp)
        else:
            os.chmod(tmp, 0o400)
            os.replace(tmp, final)
        return Stored(sha, size, final)

    def read_verified(self, sha256: str) -> bytes:
        """The bytes stored under `sha256`, re-hashed; PackageError if missing or changed."""
        path = self.path(sha256)
        try:
            data = path.read_bytes()
        except OSError as e:
            raise PackageError(f"stored file {sha256[:12]}… cannot be read: "
                               f"{e.strerror or e}") from None
        actual = hashlib.sha256(data).hexdigest()
        if actual != sha256:
            raise PackageError(f"stored file {sha256[:12]}… was changed on disk (its sha256 is "
                               f"now {actual[:12]}…); it is not used")
        return data
