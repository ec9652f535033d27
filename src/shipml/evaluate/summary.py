"""The data summary shown in reports and `models show`: rows, kinds, missing %, class balance."""

from __future__ import annotations

import pandas as pd

from shipml.data.schema import Schema

__all__ = ["data_summary"]


def data_summary(frame: pd.DataFrame, schema: Schema) -> dict:
    columns = []
    for col in schema.columns:
        missing = float(frame[col.name].isna().mean() * 100) if col.name in frame else None
        columns.append({
            "name": col.name,
            "kind": col.kind,
            "missing_pct": round(missing, 2) if missing is not None else None,
            "note": col.note,
        })  # fmt: skip
    balance = None
    if schema.task != "regression" and schema.target in frame:
        labels = schema.target_values(frame)
        counts = pd.Series([str(v) for v in labels if v is not None]).value_counts()
        balance = {str(k): int(v) for k, v in counts.items()}
    return {
        "rows": int(len(frame)),
        "target": schema.target,
        "columns": columns,
        "class_balance": balance,
        "dropped": [{"name": c.name, "reason": c.note or c.kind} for c in schema.dropped],
    }
