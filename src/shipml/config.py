"""Settings in one place: explicit argument > SHIPML_* environment variable > default."""

from __future__ import annotations

from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Read once per call of :func:`settings`; cheap, so tests can change the environment."""

    model_config = SettingsConfigDict(env_prefix="SHIPML_", extra="ignore")

    home: Path = Path.home() / ".shipml"
    registry_uri: str | None = None  # SQLAlchemy URL; default is a SQLite file in `home`
    artifact_root: Path | None = None  # default: home / "artifacts"
    seed: int = 0
    time_budget: float = 60.0
    families: str | None = None  # learner families: "linear,lightgbm" or "-mlp" (registry.py)

    def resolved_registry_uri(self) -> str:
        if self.registry_uri:
            return self.registry_uri
        return f"sqlite:///{(self.home / 'registry.db').expanduser().resolve()}"

    def resolved_artifact_root(self) -> Path:
        root = self.artifact_root or (self.home / "artifacts")
        return Path(root).expanduser().resolve()


def settings(**overrides: object) -> Settings:
    """Settings with explicit overrides applied (None means "not given")."""
    given = {k: v for k, v in overrides.items() if v is not None}
    return Settings(**given)
