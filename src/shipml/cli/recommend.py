"""Recommenders on the command line: `shipml recommend`, `shipml similar`, and the recommender
side of `shipml train --task recommend` and `shipml evaluate`."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from shipml.cli.options import RegistryUri
from shipml.cli.render import console, fmt

TASK = "recommend"
Ref = Annotated[
    str, typer.Argument(help='Recommender: "recs" (latest), "recs/3", "recs@production".')
]
_ORDER = ("hr", "ndcg", "recall")
_FALLBACKS = {
    "popular": "a user the model does not know and no known items: the recently popular items",
    "session": "no known user: ranked from the given items",
    "text": "an item without events: similar by its text in the item table",
}


def register(app: typer.Typer) -> None:
    app.command("recommend")(recommend)
    app.command("similar")(similar)


# -- the seams: one place to switch when shipml.train / shipml.model.load_model take recommenders
def load_any(ref: str, registry_uri: str | None):
    """A registered model, a Model or a RecModel (whichever the version is)."""
    import shipml.model as m
    from shipml.registry.store import Registry

    reg = Registry(registry_uri)
    info = reg.resolve(ref)
    reader = reg.open(info)
    if hasattr(m, "load_model"):  # the one loader for every kind of model
        model = m.load_model(reader, name=info.name, version=info.version)
    elif info.task == TASK:
        from shipml.recommend.model import RecModel

        model = RecModel.read(reader, name=info.name, version=info.version)
    else:
        model = m.Model.read(reader, name=info.name, version=info.version)
    model.info["aliases"] = info.aliases
    return model


def train_log(data, **options):
    """`shipml.train(data, task="recommend", ...)` once it takes a log, else the recommender
    training itself (the same keywords)."""
    import inspect

    import shipml

    if "user" in inspect.signature(shipml.train).parameters:
        return shipml.train(data, task=TASK, **options)
    from shipml.recommend.training import train_recommender

    time = options.pop("time_column", None)
    keep = inspect.signature(train_recommender).parameters
    return train_recommender(data, time=time, **{k: v for k, v in options.items() if k in keep})


def load_recommender(ref: str, registry_uri: str | None):
    from shipml.errors import UsageError

    model = load_any(ref, registry_uri)
    if model.task != TASK:
        raise UsageError(
            f"{ref} is a {model.task} model, not a recommender: use `shipml predict {ref} TABLE`"
        )
    return model


# -- commands --------------------------------------------------------------------------------
K = Annotated[int, typer.Option("--k", "-k", min=1, max=1000, help="How many items (1-1000).")]
Exclude = Annotated[
    str | None, typer.Option(help="Item IDs to leave out, comma-separated: 17,4,99.")
]
Filter = Annotated[
    list[str] | None,
    typer.Option(
        "--filter",
        help="Only items whose item-table COLUMN has VALUE: category=shoes, in_stock=true; "
        "several values: category=shoes|boots (repeatable).",
    ),
]
AsJson = Annotated[bool, typer.Option("--json", help="Print the answer as JSON.")]


def recommend(
    ref: Ref,
    user: Annotated[str | None, typer.Option(help="A user ID of the log.")] = None,
    items: Annotated[
        str | None,
        typer.Option(help="A basket or session, comma-separated item IDs (no user ID needed)."),
    ] = None,
    k: K = 10,
    exclude: Exclude = None,
    filter: Filter = None,  # noqa: A002 - the option's name
    as_json: AsJson = False,
    registry_uri: RegistryUri = None,
) -> None:
    """The top K items for a user and/or a basket of items; what they have is left out."""
    model = load_recommender(ref, registry_uri)
    options = _options(exclude, filter)
    answer = model.recommend(user=user, items=split_ids(items, "--items"), k=k, **options)
    _show(answer, model, as_json, f"for user {user}" if user else f"for items {items or '-'}")


def similar(
    ref: Ref,
    item: Annotated[str, typer.Option(help="The item ID.")],
    k: K = 10,
    exclude: Exclude = None,
    filter: Filter = None,  # noqa: A002
    as_json: AsJson = False,
    registry_uri: RegistryUri = None,
) -> None:
    """The K items most similar to ITEM ("customers who bought this also bought")."""
    model = load_recommender(ref, registry_uri)
    answer = model.similar(item, k=k, **_options(exclude, filter))
    _show(answer, model, as_json, f"similar to item {item}")


def split_ids(text: str | None, option: str) -> list[str]:
    from shipml.errors import UsageError

    if text is None:
        return []
    ids = [part.strip() for part in text.split(",")]
    if not all(ids):
        raise UsageError(f"{option} takes comma-separated item IDs, e.g. 17,4,99; got {text!r}")
    return ids


def parse_filter(pairs: list[str] | None) -> dict | None:
    """["category=shoes|boots", "in_stock=true"] -> {"category": ["shoes", "boots"],
    "in_stock": True}: true/false are booleans, numbers numbers, the rest text."""
    from shipml.errors import UsageError

    if not pairs:
        return None
    out: dict = {}
    for pair in pairs:
        column, sep, value = pair.partition("=")
        if not sep or not column.strip() or value == "":
            raise UsageError(f"--filter takes COLUMN=VALUE, e.g. category=shoes; got {pair!r}")
        values = [_value(v) for v in value.split("|")]
        out[column.strip()] = values[0] if len(values) == 1 else values
    return out


def _value(text: str):
    low = text.strip().lower()
    if low in ("true", "false"):
        return low == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text.strip()


def _options(exclude: str | None, pairs: list[str] | None) -> dict:
    """`exclude` and `filter` when given (a model answers without them too)."""
    out: dict = {}
    if exclude:
        out["exclude"] = split_ids(exclude, "--exclude")
    where = parse_filter(pairs)
    if where:
        out["filter"] = where
    return out


def _show(answer: dict, model, as_json: bool, what: str) -> None:
    if as_json:
        from shipml.model import json_safe

        out = {"model": model.name, "version": model.version, **answer}
        sys.stdout.write(json.dumps(json_safe(out), indent=1) + "\n")
        return
    from rich.markup import escape
    from rich.table import Table

    rows = answer.get("items", [])
    extra = [c for c in (rows[0] if rows else {}) if c not in ("item", "score")]
    table = Table(title=escape(f"{model.name}/{model.version}: {what}"), title_justify="left")
    for head in ("#", "item", *extra, "score"):
        table.add_column(head, justify="right" if head in ("#", "score") else "left")
    for i, row in enumerate(rows, 1):
        cells = [str(i), str(row["item"]), *(fmt(row.get(c)) for c in extra), f"{row['score']:.4g}"]
        table.add_row(*map(escape, cells))
    console.print(table)
    say = _say
    fallback = answer.get("fallback")
    if fallback:
        why = _FALLBACKS.get(fallback, "")
        say(f"[yellow]fallback:[/yellow] {fallback}{f' ({why})' if why else ''}")
    unknown = answer.get("unknown_items", answer.get("unknown"))
    if unknown:
        say(f"[yellow]not in the catalogue (ignored):[/yellow] {escape(', '.join(unknown))}")
    if not rows:
        say("no item left to recommend (all excluded or filtered out)")


def _say(text: str) -> None:
    console.print(text, soft_wrap=True, highlight=False)


# -- train and evaluate ----------------------------------------------------------------------
def train_recommender_cli(data: Path, *, name: str, time_budget: float, user, item, time,
                          weight, event, items, seed: int, trials, registry_uri,
                          no_report: bool, metric: str | None = None) -> None:  # fmt: skip
    """`shipml train LOG --task recommend ...`: train, register, print the summary."""
    chosen = {"metric": metric} if metric else {}  # else the recommender's default (ndcg@10)
    model = train_log(
        data, user=user, item=item, time_column=time, weight=weight, event=event, items=items,
        name=name, time_budget=time_budget, seed=seed, n_trials=trials,
        registry_uri=registry_uri, progress=True, report=not no_report, **chosen,
    )  # fmt: skip
    show_trained(model)


def show_trained(model) -> None:
    info = model.info
    say = _say
    duration = (info.get("lineage") or {}).get("duration_s")
    took = f", {duration:.1f}s" if isinstance(duration, (int, float)) else ""
    say(f"[bold green]registered[/bold green] {model.name}/{model.version}  (recommend, "
        f"{len(model.users):,} users, {len(model.items):,} items{took})")  # fmt: skip
    if info.get("protocol"):
        say(f"[bold]protocol:[/bold] {fmt(info['protocol'])}")
    members = ", ".join(f"{m.name or '?'} ({m.weight:.2g})" for m in model.members)
    say(f"[bold]chosen:[/bold] {members}")
    console.print(rank_table(model.metrics, baseline_of(info), title="test (full ranking)"))
    for note in info.get("notes") or []:
        say(f"[yellow]note:[/yellow] {note}")
    if getattr(model, "report_path", None) or info.get("report_path"):
        say(f"report: {getattr(model, 'report_path', None) or info['report_path']}")


def baseline_of(info: dict) -> dict | None:
    """The popularity baseline's metrics on the same test events, where training kept them
    (`info["baselines"]["popular"]`, or the evaluation summary's "popularity" part)."""
    popular = (info.get("baselines") or {}).get("popular")
    if isinstance(popular, dict):
        return popular
    summary = info.get("evaluation") or {}
    return flat_summary(summary["popularity"]) if "popularity" in summary else None


def flat_summary(part: dict) -> dict:
    """One side of an evaluation summary ({"full": metrics, "coverage": {K: share},
    "popularity_share": {K: share}}) as one mapping: hr@10, ..., coverage@10, popular@10."""
    out = dict(part.get("full") or {})
    for key, name in (("coverage", "coverage"), ("popularity_share", "top-1% share")):
        for k, value in (part.get(key) or {}).items():
            out[f"{name}@{k}"] = value
    return out


def rank_table(metrics: dict, baseline: dict | None = None, title: str = "metrics"):
    """Ranking metrics (HR/NDCG/recall at each K, MRR, then any other number) beside the
    popularity baseline's when given."""
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    table.add_column("metric")
    table.add_column("model", justify="right")
    if baseline:
        table.add_column("popularity", justify="right")
    for key in _metric_order(metrics):
        row = [key, fmt(metrics[key])]
        if baseline:
            row.append(fmt(baseline.get(key)))
        table.add_row(*row)
    return table


def _metric_order(metrics: dict) -> list[str]:
    numbers = [
        k for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)
    ]

    def key(name: str):
        head, _, k = name.partition("@")
        rank = _ORDER.index(head) if head in _ORDER else len(_ORDER)
        return (k.isdigit() and int(k) or 10**6, rank, name)

    return sorted(numbers, key=key)


def evaluate_recommender(model, data: Path, k: int, as_json: bool) -> None:
    """`shipml evaluate RECS --data LATER.csv`: the ranking metrics on later events."""
    metrics = model.evaluate(data, k=k)
    if as_json:
        sys.stdout.write(json.dumps(metrics, indent=1, default=str) + "\n")
        return
    ours = flat_summary(metrics["model"]) if "model" in metrics else metrics
    popular = flat_summary(metrics["popularity"]) if "popularity" in metrics else None
    title = f"{model.name}/{model.version} on {data} (full ranking over every item)"
    console.print(rank_table(ours, popular, title=title))
    counts = {k: metrics.get(k) for k in ("users", "events", "events_scored", "repeat_events",
                                          "unknown_users", "unknown_items")}  # fmt: skip
    words = ", ".join(f"{k.replace('_', ' ')} {v:,}" for k, v in counts.items() if v is not None)
    if words:
        _say(words)
    for note in metrics.get("notes") or []:
        _say(f"[yellow]note:[/yellow] {note}")
    if metrics.get("report_path"):
        _say(f"report: {metrics['report_path']}")
