"""shipml: from the table a small company has to a trained, evaluated, versioned model.

    import shipml
    model = shipml.train("customers.csv", target="churn", time_budget=60, name="churn")
    model.predict(df); model.predict_proba(df); model.evaluate(df); model.explain(df)
    model = shipml.load("churn@production")
    shipml.zero_shot("texts.csv", labels="refund,card lost")   # no training rows needed

Imports are lazy: `import shipml` loads no machine-learning library.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

from shipml.errors import (
    ArtifactIntegrityError,
    DataError,
    MissingDependency,
    ModelNotFound,
    RegistryError,
    SchemaError,
    ShipmlError,
    TargetError,
)

__version__ = "0.1.0"

__all__ = [
    "train",
    "load",
    "Model",
    "Registry",
    "AutoClassifier",
    "AutoRegressor",
    "zero_shot",
    "ShipmlError",
    "DataError",
    "SchemaError",
    "TargetError",
    "ModelNotFound",
    "RegistryError",
    "ArtifactIntegrityError",
    "MissingDependency",
    "__version__",
]

_LAZY = {
    "train": ("shipml.training", "train"),
    "load": ("shipml.api", "load"),
    "Model": ("shipml.model", "Model"),
    "Registry": ("shipml.registry.store", "Registry"),
    "AutoClassifier": ("shipml.sklearn", "AutoClassifier"),
    "AutoRegressor": ("shipml.sklearn", "AutoRegressor"),
    "zero_shot": ("shipml.learners.zeroshot", "zero_shot"),
}

if TYPE_CHECKING:  # pragma: no cover
    from shipml.api import load
    from shipml.learners.zeroshot import zero_shot
    from shipml.model import Model
    from shipml.registry.store import Registry
    from shipml.sklearn import AutoClassifier, AutoRegressor
    from shipml.training import train


def __getattr__(name: str):
    if name in _LAZY:
        module, attr = _LAZY[name]
        value = getattr(import_module(module), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'shipml' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
