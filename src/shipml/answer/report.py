"""The training report of an answer model: how it was validated, the metrics next to the
dense-only and BM25-only baselines, the answer-rate / precision curve of the hand-over
threshold, the model's facts and notes. Rendered with the autoescaped templates every shipml
report shares (evaluate/templates): FAQ texts and notes come out as text."""

from __future__ import annotations

from pathlib import Path

from shipml.evaluate.markup import atomic_write, info_rows, render

__all__ = ["sections", "write_report", "curve_points"]

_POINTS = 12  # rows of the curve shown


def curve_points(curve: list[dict], n: int = _POINTS) -> list[dict]:
    """About `n` points of the curve, evenly spread over its answer rates."""
    if len(curve) <= n:
        return list(curve)
    step = (len(curve) - 1) / (n - 1)
    return [curve[round(i * step)] for i in range(n)]


def _section(anchor: str, heading: str, rows) -> dict:
    return {"id": anchor, "heading": heading, "template": "model/model.html.j2", "rows": rows}


def sections(model) -> list[dict]:
    """The report's sections (id, heading, template, rows): also what other reports embed."""
    info = model.info
    out = [
        _section(
            "validation",
            "How it was measured",
            [
                ("validation queries", info.get("validation") or "none"),
                ("metrics measured on", info.get("metrics_on", "the validation queries")),
            ],
        )
    ]
    metrics = {k: v for k, v in (info.get("metrics") or {}).items() if not isinstance(v, dict)}
    if metrics:
        out.append(_section("metrics", "Metrics", info_rows(metrics)))
    for label, base in (info.get("baselines") or {}).items():
        out.append(
            _section(f"baseline-{label}", f"Baseline: {label} only (validation)", info_rows(base))
        )
    curve = curve_points(info.get("curve") or [])
    if curve:
        rows = [
            (
                f"confidence ≥ {p['threshold']:.3f}",
                f"answers {p['answer_rate']:.0%} of the questions at precision "
                f"{p['precision']:.0%}",
            )
            for p in curve
        ]
        rows.append(
            (
                "chosen threshold",
                f"{model.threshold:.3f} (for precision ≥ {model.min_precision:g} on validation)",
            )
        )
        out.append(_section("curve", "Answer rate vs precision (hand-over threshold)", rows))
    facts = {k: v for k, v in model.describe().items() if v is not None}
    out.append(_section("model", "Model information", info_rows(facts)))
    if model.notes:
        out.append(
            {
                "id": "notes",
                "heading": "Notes",
                "template": "model/notes.html.j2",
                "notes": [str(n) for n in model.notes],
            }
        )
    return out


def write_report(model, path, *, title: str) -> Path:
    page = render(
        "recommend_report.html.j2",
        title=title,
        badge="FAQ answering",
        eyebrow="shipml model report · Answering questions",
        cards=[],
        protocol=model.info.get("validation"),
        sections=sections(model),
    )
    return atomic_write(Path(path), page)
