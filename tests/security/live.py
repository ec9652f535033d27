"""A real `shipml serve` (uvicorn in a subprocess) for the attack tests, with a predict key."""

from __future__ import annotations

import uuid
from pathlib import Path

from conftest import start_server
from shipml.registry.store import Registry
from shipml.serve.keys import KeyStore


class Live:
    """The server process, its base URL and port, and an API key of scope predict."""

    def __init__(self, registry_dir: Path) -> None:
        self.key = KeyStore(Registry(registry_dir).engine).create(
            f"attack-{uuid.uuid4().hex[:8]}", ["predict"]
        )
        self.proc, self.base = start_server(registry_dir, "credit")
        self.port = int(self.base.rsplit(":", 1)[1])
        self.headers = {"Authorization": f"Bearer {self.key}"}

    def status(self, field: str) -> int:
        """A size from /proc/<pid>/status in bytes (VmRSS now, VmHWM the peak so far)."""
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
        raise KeyError(field)

    def stop(self) -> str:
        """Stop the server; its stderr (the caller checks it has no traceback)."""
        self.proc.terminate()
        _, err = self.proc.communicate(timeout=30)
        return err.decode("utf-8", "replace")
