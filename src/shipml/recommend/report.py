"""The HTML report of a recommender: how it was measured (the protocol), full-ranking metrics
beside the popularity baseline, metric vs K, results by user-history length, catalogue
coverage and popularity bias, sampled-100 figures (for comparison with papers only), examples
of recommendations with item names, the search.

`summary` is recommend/evaluation.py's `evaluate_ranking` dict. The page is the autoescaped
template ``evaluate/templates/recommend_report.html.j2`` (the layout and CSS every shipml
report shares): item names, notes and model facts from the user's data come out as text.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from shipml.errors import UsageError
from shipml.evaluate.markup import atomic_write, info_rows, num, render

__all__ = ["write_report"]

_PRIMARY = "ndcg@10"
_NAMES = {"hr": "HR", "ndcg": "NDCG", "recall": "Recall", "mrr": "MRR"}
_TABLES = ("trials", "candidates")


def write_report(path: str | os.PathLike[str], *, title: str, summary: Mapping[str, Any],
                 protocol: str | Mapping[str, Any], model_info: Mapping[str, Any] | None = None,
                 notes: Sequence[str] | None = None, item_names=None) -> Path:  # fmt: skip
    """Write the report to `path` (parent folders created, atomically) and return its path.

    `protocol`: the split's description (RecSplit.description), or a mapping with
    "description" and "counts" (RecSplit.counts). `model_info`: facts shown as a table;
    its "trials" (the search's trial records) and "candidates" (dicts such as {"name",
    "score", "weight"}) are shown as tables of their own. `item_names`: item ID -> name (a
    mapping or a pandas Series), or a sequence of names by item code."""
    path = Path(path)
    if path.is_dir():
        raise UsageError(f"{path} is a folder; give a file name such as {path / 'report.html'}")
    if not summary.get("model", {}).get("full"):
        raise UsageError("the summary has no full-ranking metrics: nobody was scored")
    info = dict(model_info or {})
    text, counts = _protocol(protocol)
    sections = [
        _section("protocol", "How it was measured", text=text, rows=_protocol_rows(counts)),
        _section("metrics", "Metrics (full ranking)", rows=_metric_rows(summary),
                 users=summary.get("users"), targets=summary.get("targets"),
                 n_items=summary.get("items")),
        _section("curve", "Metric vs K", png=_curve_png(summary)),
        _section("history", "By user-history length", rows=summary.get("by_history", [])),
        _section("catalogue", "Catalogue coverage and popularity bias",
                 rows=_catalogue_rows(summary), popular=summary.get("popular_items"),
                 share=summary.get("popular_share")),
        _section("sampled", "Sampled-100 metrics (for comparison with papers only)",
                 rows=_sampled_rows(summary), n=summary.get("sampled_negatives")),
    ]  # fmt: skip
    examples = _examples(summary.get("examples", []), item_names)
    if examples:
        sections.append(_section("examples", "Examples of recommendations", examples=examples))
    sections += _search_sections(info)
    rest = {k: v for k, v in info.items() if k not in _TABLES}
    if rest:
        sections.append(_section("model", "Model information", rows=info_rows(rest)))
    if notes:
        sections.append(_section("notes", "Notes", notes=[str(n) for n in notes]))
    page = render("recommend_report.html.j2", title=title, badge=_badge(counts),
                  eyebrow="shipml model report · Recommendation", cards=_cards(summary),
                  protocol=_short(counts, summary), sections=sections)  # fmt: skip
    return atomic_write(path, page)


def _section(anchor: str, heading: str, **data: Any) -> dict[str, Any]:
    template = "model/notes.html.j2" if anchor == "notes" else f"recommend/{anchor}.html.j2"
    if anchor == "model":
        template = "model/model.html.j2"
    return {"id": anchor, "heading": heading, "template": template, **data}


def _protocol(protocol) -> tuple[str, dict]:
    if isinstance(protocol, Mapping):
        return str(protocol.get("description", "")), dict(protocol.get("counts") or {})
    return str(protocol), {}


def _short(counts: dict, summary: Mapping) -> str:
    """The hero's one line; the protocol section says it all."""
    kind = {"time": "A global time split", "leave-last-out": "Leave-last-out by time"}
    how = kind.get(counts.get("kind"), "Held-out events")
    return (f"{how}; every one of the {summary.get('items', 0):,} items ranked for each of the "
            f"{summary.get('users', 0):,} test users (their own items excluded), beside the "
            "popularity baseline. Details under “How it was measured”.")  # fmt: skip


def _badge(counts: dict) -> str:
    kind = counts.get("kind")
    return {"time": "global time split", "leave-last-out": "leave-last-out"}.get(kind, "")


def _protocol_rows(c: dict) -> list[dict]:
    """Events and users of each part of the split (when the counts were given)."""
    rows = []
    for key, label in (("log", "Whole log"), ("train", "Training"),
                       ("train_val", "Training + validation")):  # fmt: skip
        if key in c:
            rows.append({"part": label, "events": c[key]["events"], "users": c[key]["users"],
                         **dict.fromkeys(("targets", "repeats", "new_items", "new_users",
                                          "sampled"))})  # fmt: skip
    for key, label in (("val", "Validation (held out)"), ("test", "Test (held out)")):
        if key in c:
            p = c[key]
            rows.append({"part": label, "events": p["events"], "users": p["users"],
                         "targets": p["targets"], "repeats": p["repeats"],
                         "new_items": p["new_items"], "new_users": p["new_users"],
                         "sampled": p.get("subsampled_to")})  # fmt: skip
    return rows


def _label(name: str) -> str:
    base, _, k = name.partition("@")
    return f"{_NAMES.get(base, base)}@{k}" if k else _NAMES.get(base, base)


def _pair(name: str, model: Mapping, pop: Mapping) -> dict:
    m, p = num(model.get(name)), num(pop.get(name))
    lift = m / p if m is not None and p else None
    return {"name": name, "label": _label(name), "model": m, "popularity": p, "lift": lift,
            "primary": name == _PRIMARY}  # fmt: skip


def _metric_rows(summary: Mapping) -> list[dict]:
    model, pop = summary["model"]["full"], summary.get("popularity", {}).get("full", {})
    return [_pair(name, model, pop) for name in model]


def _sampled_rows(summary: Mapping) -> list[dict]:
    model = summary["model"].get("sampled", {})
    pop = summary.get("popularity", {}).get("sampled", {})
    return [_pair(name, model, pop) for name in model]


def _catalogue_rows(summary: Mapping) -> list[dict]:
    model, pop = summary["model"], summary.get("popularity", {})
    rows = []
    for k in summary.get("ks", []):
        rows.append({"k": k, "coverage": num(model.get("coverage", {}).get(str(k))),
                     "coverage_pop": num(pop.get("coverage", {}).get(str(k))),
                     "share": num(model.get("popularity_share", {}).get(str(k))),
                     "share_pop": num(pop.get("popularity_share", {}).get(str(k)))})  # fmt: skip
    return rows


def _cards(summary: Mapping) -> list[dict]:
    full = summary["model"]["full"]
    pop = summary.get("popularity", {}).get("full", {})
    cov = summary["model"].get("coverage", {}).get("10")

    def card(label, value, hint, primary=False):
        shown = "—" if num(value) is None else f"{float(value):.4f}"
        return {"label": label, "value": shown, "hint": hint, "primary": primary,
                "alarm": False}  # fmt: skip

    return [
        card("NDCG@10", full.get("ndcg@10"), "main score · higher is better", True),
        card("HR@10", full.get("hr@10"), "share of users with a hit in their top 10"),
        card("Popularity NDCG@10", pop.get("ndcg@10"), "the baseline to beat"),
        card("Coverage@10", cov, "share of the catalogue recommended"),
    ]


def _curve_png(summary: Mapping) -> bytes:
    """HR, NDCG and recall at K = 1..20, the model beside the popularity baseline."""
    from shipml.evaluate.plots import BLUE, ORANGE, figure_png, new_figure, plot_style

    model = summary["model"].get("by_k", {})
    pop = summary.get("popularity", {}).get("by_k", {})
    with plot_style():
        fig, axes = new_figure(9.0, 3.2, ncols=3)
        for ax, name in zip(axes, ("hr", "ndcg", "recall")):
            for series, color, label in ((model, BLUE, "Model"), (pop, ORANGE, "Popularity")):
                ys = [num(v) for v in series.get(name, [])]
                ks = [k + 1 for k, v in enumerate(ys) if v is not None]
                ax.plot(ks, [v for v in ys if v is not None], color=color, lw=2, label=label)
            ax.set_title(f"{_NAMES[name]}@K")
            ax.set_xlabel("K (list length)")
            ax.set_ylim(bottom=0)
        if axes[0].get_legend_handles_labels()[0]:
            axes[0].legend(loc="upper left")
        return figure_png(fig)


def _name_of(item_names, code: int, item_id: str) -> str | None:
    if item_names is None:
        return None
    if hasattr(item_names, "get"):
        name = item_names.get(item_id)
        return None if name is None or (num(name) is None and name != name) else str(name)
    try:
        return str(item_names[code])
    except (IndexError, KeyError, TypeError):
        return None


def _examples(examples: Sequence[Mapping], item_names) -> list[dict]:
    def items(xs, hits=None):
        return [{"id": x["id"], "name": _name_of(item_names, x["code"], x["id"]),
                 "hit": bool(hits[i]) if hits else False} for i, x in enumerate(xs)]  # fmt: skip

    return [{"n": i + 1, "length": e.get("history_length"), "history": items(e["history"]),
             "held_out": items(e["held_out"]), "top": items(e["top"], e.get("hits"))}
            for i, e in enumerate(examples)]  # fmt: skip


def _search_sections(info: Mapping) -> list[dict]:
    out = []
    trials = info.get("trials") or []
    if trials:
        from shipml.evaluate.plots import trials_png

        metric = next((str(t["metric"]) for t in trials if t.get("metric")), _PRIMARY)
        rows = [{"number": t.get("number", i), "name": t.get("name") or "",
                 "value": num(t.get("value")), "state": str(t.get("state") or ""),
                 "elapsed": num(t.get("elapsed_s"))} for i, t in enumerate(trials)]  # fmt: skip
        out.append(_section("search", "Search: the trials", rows=rows, metric=_label(metric),
                            png=trials_png(trials, metric)))  # fmt: skip
    cands = info.get("candidates") or []
    if cands:
        rows = [{"name": c.get("name") or c.get("family") or "", "score": num(c.get("score")),
                 "weight": num(c.get("weight"))} for c in cands]  # fmt: skip
        out.append(_section("candidates", "Candidates and the blend", rows=rows))
    return out
