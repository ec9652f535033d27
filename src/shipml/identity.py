"""`Registered`: what every kind of model (Model, RecModel, AnswerModel) says about itself from
its `info` dict: the registered name and version, the validation metrics, the HTML report."""

from __future__ import annotations

from pathlib import Path

__all__ = ["Registered"]


class Registered:
    """Name, version, metrics and report path, read from `self.info` (set by publish)."""

    info: dict

    @property
    def name(self) -> str | None:
        return self.info.get("name")

    @property
    def version(self) -> int | None:
        return self.info.get("version")

    @property
    def metrics(self) -> dict:
        return self.info.get("metrics", {})

    @property
    def report_path(self) -> Path | None:
        path = self.info.get("report_path")
        return Path(path) if path else None
