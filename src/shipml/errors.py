"""The exception tree. Each message is written for the user: what is wrong, where, what to do."""

from __future__ import annotations

__all__ = [
    "ShipmlError",
    "UsageError",
    "DataError",
    "SchemaError",
    "TargetError",
    "ModelNotFound",
    "ArtifactIntegrityError",
    "RegistryError",
    "RegistryDamaged",
    "MissingDependency",
    "EncoderError",
    "AuthError",
    "TooMany",
    "ModelUnavailable",
    "TooManyRows",
    "HeavyStopped",
    "InflateLimit",
    "V2Error",
    "FeedbackError",
]


class ShipmlError(Exception):
    """Base class: anything shipml raises on purpose. The CLI shows it as one line, exit code 2;
    the server answers `status` with `{"error": str(exc)}` and the `headers` (if any)."""

    status: int = 400
    headers: dict[str, str] | None = None


class UsageError(ShipmlError, ValueError):
    """An argument or option is wrong (a budget of -1, an unknown metric, two options that
    exclude each other): the message names it and says what is allowed."""


class DataError(ShipmlError, ValueError):
    """The input table cannot be read, is empty, or is not what the task needs.

    Also a ValueError, as scikit-learn's conventions expect of bad input."""


class SchemaError(DataError):
    """Prediction input does not match the schema the model was trained with."""

    status = 422


class TargetError(DataError):
    """The target column is missing, empty, or has a single value."""


class ModelNotFound(ShipmlError):
    """No model, version or alias under that name in the registry."""

    status = 404


class RegistryError(ShipmlError):
    """The registry cannot do what was asked (e.g. rollback with no history)."""


class RegistryDamaged(RegistryError):
    """The registry database is damaged, missing while model files remain, or from a newer
    shipml. The message names the database (never its password) and says what to restore."""


class ArtifactIntegrityError(ShipmlError):
    """A stored artifact file is missing, differs from manifest.json, or does not parse as its
    declared format. The message names the artifact inside its model, never a server path:
    `path` keeps the file's location for logs and `--debug`."""

    status = 503  # on a server: its own files are at fault, not the request

    def __init__(self, message: str, *, path: str | None = None):
        super().__init__(message)
        self.path = path


class MissingDependency(ShipmlError, ImportError):
    """An optional dependency is not installed; the message says which extra to install."""


class EncoderError(ShipmlError):
    """A sentence-encoder folder or hub id cannot be loaded as what it claims to be (no
    config, no safetensors weights, no fast tokenizer, modules shipml cannot run)."""


class AuthError(ShipmlError):
    """A request has no valid API key (status 401) or its key lacks the scope asked (403).

    The server answers with `status` and `{"error": str(exc)}`; the message never repeats the key.
    """

    def __init__(self, message: str, *, status: int = 401):
        if status not in (401, 403):
            raise ValueError(f"AuthError status must be 401 or 403, not {status}")
        super().__init__(message)
        self.status = status


# --------------------------------------------------------------------------------------------
# the server's answers


class TooMany(ShipmlError):
    """A rate limit was hit (429): `retry_after` seconds until the next request may pass, sent
    as the Retry-After header (whole seconds, at least 1)."""

    status = 429

    def __init__(self, retry_after: float, message: str = "rate limit exceeded for this API key"):
        import math

        super().__init__(message)
        self.retry_after = retry_after
        self.headers = {"Retry-After": str(max(1, math.ceil(retry_after)))}


class ModelUnavailable(ShipmlError):
    """No version of a served model could be loaded (503): the server is at fault."""

    status = 503


class TooManyRows(DataError):
    """More rows than a heavy route takes in one request (413)."""

    status = 413


class HeavyStopped(ShipmlError):
    """A heavy request was refused or stopped by the server (503); `headers` for the
    response (Retry-After when the worker is busy)."""

    status = 503

    def __init__(self, message: str, headers: dict | None = None):
        super().__init__(message)
        self.headers = headers


class InflateLimit(DataError):
    """Compressed data inflates past the size or ratio cap (413)."""

    status = 413


class V2Error(ShipmlError):
    """A v2 (Open Inference Protocol) request the server cannot accept: 400, or the `status`
    given (422 for a value that does not fit its input); `to_dict()` is the protocol's error
    body, `field` the input/output/field at fault."""

    status = 400

    def __init__(self, message: str, *, status: int | None = None, field: str | None = None):
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status
        self.field = field

    def to_dict(self) -> dict:
        return {"error": self.message}


class FeedbackError(ShipmlError):
    """A feedback label that cannot be stored: 422 (a label that does not fit the model), or
    the `status` given (404 no such prediction, 409 it already has feedback)."""

    status = 422

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        if status is not None:
            self.status = status
