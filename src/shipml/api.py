"""Loading registered models."""

from __future__ import annotations

from shipml.model import Model, load_model
from shipml.registry.store import Registry

__all__ = ["load"]


def load(ref: str, *, registry: Registry | None = None, registry_uri: str | None = None) -> Model:
    """A registered model: "churn" (latest), "churn/3" (version 3), "churn@production"
    (a recommender loads as a shipml.recommend.model.RecModel)."""
    reg = registry or Registry(registry_uri)
    info = reg.resolve(ref)
    model = load_model(reg.open(info), name=info.name, version=info.version)
    model.info["aliases"] = info.aliases
    return model
