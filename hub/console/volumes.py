"""Working volumes of analysts' sandboxes, and their destruction when an authorization ends.

Names follow the spawner's convention (``hub/spawner.py``'s ``configure_spawner``): the
volume ``<prefix>-work-{username}`` where ``{username}`` is DockerSpawner's escaped user name
(lowercase letters and digits kept, everything else ``-xx`` hex-escaped) and the prefix is
``SHUYU_SANDBOX_PREFIX`` (default ``shuyu``). Sandbox containers carry the label
``org.shuyu.sandbox``.

``destroy(user)`` removes the sandbox containers that still hold the volume (stopped ones stay
around until removed), then the volume itself, and says what it found and did. Only containers
with the sandbox label are removed: a volume held by anything else is reported, not forced.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import docker
import docker.errors
from dockerspawner import DockerSpawner

from hub.console.errors import DockerUnavailable

SANDBOX_LABEL = "org.shuyu.sandbox"
VOLUME_TEMPLATE = "{prefix}-work-{username}"


def work_volume_name(prefix: str, user: str) -> str:
    """The Docker volume of `user`'s sandbox home, as DockerSpawner names it."""
    return VOLUME_TEMPLATE.format(prefix=prefix, username=DockerSpawner._escape(user))


@dataclass
class VolumeOutcome:
    """What happened to one analyst's working volume."""

    user: str
    volume: str
    destroyed: bool = False
    absent: bool = False
    created_at: str | None = None
    containers_removed: list[str] = field(default_factory=list)
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"user": self.user, "volume": self.volume}
        if self.destroyed:
            out["destroyed"] = True
            out["created_at"] = self.created_at
        if self.absent:
            out["absent"] = True
        if self.containers_removed:
            out["containers_removed"] = self.containers_removed
        if self.error:
            out["error"] = self.error
        return out


class SandboxVolumes:
    def __init__(self, prefix: str, client_factory: Callable[[], Any] = docker.from_env):
        self.prefix = prefix
        self._factory = client_factory
        self._client: Any = None

    def _docker(self) -> Any:
        if self._client is None:
            try:
                self._client = self._factory()
                self._client.ping()
            except docker.errors.DockerException as e:
                self._client = None
                raise DockerUnavailable(f"cannot reach Docker to remove working volumes: "
                                        f"{_short(e)}") from None
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def name_for(self, user: str) -> str:
        return work_volume_name(self.prefix, user)

    def exists(self, user: str) -> bool:
        try:
            self._docker().volumes.get(self.name_for(user))
        except docker.errors.NotFound:
            return False
        except docker.errors.DockerException as e:
            raise DockerUnavailable(f"cannot ask Docker about volumes: {_short(e)}") from None
        return True

    def destroy(self, user: str) -> VolumeOutcome:
        name = self.name_for(user)
        out = VolumeOutcome(user, name)
        client = self._docker()
        try:
            volume = client.volumes.get(name)
        except docker.errors.NotFound:
            out.absent = True
            return out
        except docker.errors.DockerException as e:
            out.error = f"cannot inspect volume: {_short(e)}"
            return out
        out.created_at = volume.attrs.get("CreatedAt")
        try:
            for container in client.containers.list(all=True, filters={"volume": name}):
                if SANDBOX_LABEL not in (container.labels or {}):
                    out.error = (f"volume is used by container {container.name}, which is not a "
                                 "sandbox; left in place")
                    return out
                container.remove(force=True, v=False)
                out.containers_removed.append(container.name)
            volume.remove(force=False)
        except docker.errors.NotFound:
            pass  # removed meanwhile (the spawner removes stopped sandboxes itself)
        except docker.errors.DockerException as e:
            out.error = f"cannot remove: {_short(e)}"
            return out
        out.destroyed = True
        return out


def _short(e: Exception) -> str:
    text = str(getattr(e, "explanation", None) or e).strip()
    return text.splitlines()[0][:300] if text else type(e).__name__
