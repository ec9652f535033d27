"""Personal data in the prediction log: columns marked PII are stored as keyed hashes.

``hmac:<hex>`` = HMAC-SHA256(server secret, column name + value), truncated to 128 bits. The same
value in the same column always gives the same hash (so drift on it and joins still work), but
without the secret nobody can test guesses against the log. The secret comes from
``SHIPML_PII_SECRET`` (set it to the same value on every server of a deployment) or else from
``$SHIPML_HOME/pii-secret``, created once with mode 0600.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

from shipml.data.schema import as_category

__all__ = ["PiiHasher", "load_secret"]

ENV = "SHIPML_PII_SECRET"
PREFIX = "hmac:"


def load_secret(home: Path | None = None, *, env: str = ENV, filename: str = "pii-secret") -> bytes:
    """A server secret: the environment variable `env`, else the file `filename` created once
    (mode 0600, 256 random bits) in SHIPML_HOME. The API-key pepper (keys.py) comes from here
    too."""
    value = os.environ.get(env)
    if value:
        return value.encode("utf-8")
    if home is None:
        from shipml.config import settings

        home = settings().home
    path = Path(home) / filename
    if not path.is_file():
        from filelock import FileLock

        from shipml.files import atomic_write

        path.parent.mkdir(parents=True, exist_ok=True)
        # Workers starting together: one writes the secret, the others wait and read it.
        with FileLock(path.with_name(f".{path.name}.lock")):
            if not path.is_file():
                atomic_write(path, secrets.token_hex(32), mode=0o600)
    return path.read_bytes().strip()


class PiiHasher:
    """Replaces the values of PII columns in records by their keyed hashes."""

    def __init__(self, columns: set[str] | frozenset[str], secret: bytes) -> None:
        self.columns = frozenset(columns)
        self._secret = secret

    def hash(self, column: str, value) -> str | None:
        if value is None or (isinstance(value, float) and value != value):
            return None
        message = f"{column}\x00{as_category(value)}".encode()
        return PREFIX + hmac.new(self._secret, message, hashlib.sha256).hexdigest()[:32]

    def scrub(self, record: dict) -> dict:
        if not self.columns:
            return record
        return {k: self.hash(k, v) if k in self.columns else v for k, v in record.items()}
