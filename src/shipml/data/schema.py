"""Schema: what each column is, inferred once from the training table and enforced on every input.

The Schema is plain JSON saved with every model. Training infers it (:func:`infer_schema`);
prediction calls :meth:`Schema.coerce`, which turns any input table (a CSV read as text, a
DataFrame with typed columns, JSON records) into the same typed columns, or raises a SchemaError
that names the column, the expected kind and an example of the bad value.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from shipml.data.io import NA_VALUES
from shipml.data.parse import (
    FALSE_TOKENS,
    TRUE_TOKENS,
    as_label,
    guess_date_format,
    parse_boolean,
    parse_datetime,
    parse_numeric,
)
from shipml.echo import echo
from shipml.errors import SchemaError, TargetError

__all__ = [
    "Column",
    "Schema",
    "infer_schema",
    "as_category",
    "UnknownLabel",
    "FEATURE_KINDS",
    "NA_TOKENS",
    "TASKS",
]

FEATURE_KINDS = ("numeric", "boolean", "categorical", "datetime", "text", "image")
DROPPED_KINDS = ("id", "ignored")
TASKS = ("binary", "multiclass", "regression")

_PARSE_SHARE = 0.97  # share of non-missing cells that must parse for a kind to be chosen
_ID_NAME = re.compile(r"(^|[^a-z])(id|uuid|guid|key)$|^(id|uuid)([^a-z]|$)", re.IGNORECASE)
_MAX_CLASSES_FROM_NUMBERS = 20
_TEXT_MIN_WORDS = 4.0
NA_TOKENS = frozenset(NA_VALUES)


@dataclass
class Column:
    """One input column: its kind, and for dropped columns the reason, in words."""

    name: str
    kind: str
    missing_pct: float = 0.0
    note: str = ""
    date_format: str | None = None
    example: str | None = None
    pii: bool = False  # personal data: not a feature (unless kept, hashed), hashed in the log
    hash_key: str | None = None  # a kept PII column: its values become keyed hashes (data/pii.py)

    @property
    def used(self) -> bool:
        return self.kind in FEATURE_KINDS


@dataclass
class Schema:
    """Columns, target, task and class labels of a model."""

    columns: list[Column]
    target: str
    task: str
    classes: list | None = None
    time_column: str | None = None
    group_column: str | None = None
    notes: list[str] = field(default_factory=list)

    # -- views -------------------------------------------------------------------------------
    @property
    def features(self) -> list[Column]:
        return [c for c in self.columns if c.used]

    @property
    def dropped(self) -> list[Column]:
        return [c for c in self.columns if not c.used]

    def column(self, name: str) -> Column:
        for col in self.columns:
            if col.name == name:
                return col
        raise KeyError(name)

    @property
    def positive_class(self) -> object | None:
        return self.classes[1] if self.task == "binary" and self.classes else None

    # -- serialization -----------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {**asdict(self), "columns": [asdict(c) for c in self.columns]}

    @classmethod
    def from_dict(cls, data: dict) -> Schema:
        data = dict(data)
        data["columns"] = [Column(**c) for c in data["columns"]]
        return cls(**data)

    # -- enforcement -------------------------------------------------------------------------
    def coerce(self, frame: pd.DataFrame, *, strict: bool = True) -> pd.DataFrame:
        """Typed feature columns of `frame`: float64 for numeric/boolean, datetime64 for
        datetime, str (object) for categorical/text, missing as NaN/None.

        strict=True (prediction input): a missing column or a value that is not of the column's
        kind raises SchemaError. strict=False (training table): such values become missing.
        Extra columns, the target included, are ignored.

        >>> import pandas as pd
        >>> frame = pd.DataFrame({"age": [25, 41, 33], "churn": ["yes", "no", "yes"]})
        >>> schema = infer_schema(frame, "churn")
        >>> schema.coerce(pd.DataFrame({"age": ["30", None]}))["age"].tolist()
        [30.0, nan]
        >>> schema.coerce(pd.DataFrame({"age": ["forty"]}))
        Traceback (most recent call last):
        shipml.errors.SchemaError: column 'age' expected numeric (a number), got 'forty' in row 1
        """
        missing = [c for c in self.features if c.name not in frame.columns]
        if missing:
            described = ", ".join(f"'{c.name}' ({c.kind})" for c in missing[:10])
            more = f" and {len(missing) - 10} more" if len(missing) > 10 else ""
            raise SchemaError(
                f"input is missing {len(missing)} column(s) the model needs: {described}{more}"
            )
        out = {}
        for col in self.features:
            out[col.name] = _coerce_column(frame[col.name], col, strict=strict)
        return pd.DataFrame(out, index=frame.index)

    def target_values(self, frame: pd.DataFrame) -> np.ndarray:
        """The target as labels (classification, in the types of `classes`) or floats."""
        if self.target not in frame.columns:
            raise TargetError(_missing_target_message(self.target, list(frame.columns)))
        raw = frame[self.target]
        if self.task == "regression":
            values, _ = parse_numeric(raw)
            return values
        return _labels(raw, self.classes or [])


def _blank_to_missing(values: pd.Series) -> pd.Series:
    """Blank cells and missing-value markers ("", " ", "NA", "?") in text are missing, as when
    read_table reads a file — so a DataFrame from pandas.read_csv behaves the same."""
    if pd.api.types.is_numeric_dtype(values) or pd.api.types.is_datetime64_any_dtype(values):
        return values
    text = values.astype("string").str.strip()
    blank = text.isin(NA_TOKENS).fillna(False).to_numpy(bool)
    return values.where(~blank, None) if blank.any() else values


def _coerce_column(values: pd.Series, col: Column, *, strict: bool) -> pd.Series:
    if col.kind == "image":  # paths or bytes: no text form to clean
        return _image_cells(values, col, strict=strict)
    values = _blank_to_missing(values)
    present = values.notna().to_numpy()
    if col.kind == "numeric":
        parsed, _ = parse_numeric(values)
        bad = present & ~np.isfinite(parsed)  # "inf" and "1e309" are not numbers to a model
        result = pd.Series(parsed, index=values.index)
    elif col.kind == "boolean":
        parsed = parse_boolean(values)
        bad = present & np.isnan(parsed)
        result = pd.Series(parsed, index=values.index)
    elif col.kind == "datetime":
        result = parse_datetime(values, col.date_format)
        bad = present & result.isna().to_numpy()
    elif col.hash_key:  # personal data kept as a feature: only keyed hashes go further
        from shipml.data.pii import pseudonym

        hashed = values.map(lambda v: pseudonym(col.hash_key, as_category(v)), na_action="ignore")
        return hashed.astype(object)
    else:  # categorical, text: plain strings; 3.0 and "3" are the same category
        return values.map(as_category, na_action="ignore").astype(object)
    if strict and bad.any():
        row = int(np.flatnonzero(bad)[0])
        example = values.iloc[row]
        hint = {
            "numeric": "a number",
            "boolean": "true/false, yes/no or 1/0",
            "datetime": f"a date like {col.example!r}" if col.example else "a date",
        }[col.kind]
        raise SchemaError(
            f"column '{col.name}' expected {col.kind} ({hint}), "
            f"got {echo(example)} in row {row + 1}"
            f"{f' ({int(bad.sum())} bad values in all)' if bad.sum() > 1 else ''}"
        )
    return result


def _image_cells(values: pd.Series, col: Column, *, strict: bool) -> pd.Series:
    """Image cells as they are: a path (str) or the file's bytes; anything else is not an image
    (training: missing)."""
    ok = values.map(lambda v: v is None or v != v or isinstance(v, (str, bytes))).to_numpy(bool)
    if strict and not ok.all():
        row = int(np.flatnonzero(~ok)[0])
        raise SchemaError(
            f"column '{col.name}' expected an image (a file path, or the image's bytes), got "
            f"{echo(values.iloc[row])} in row {row + 1}"
        )
    cells = [v if ok_ and isinstance(v, bytes) or (isinstance(v, str) and v.strip()) else None
             for v, ok_ in zip(values.tolist(), ok)]  # fmt: skip
    return pd.Series(cells, index=values.index, dtype=object)


def looks_like_image_paths(text: pd.Series) -> bool:
    """Most non-empty cells end in an image file's suffix (photo.jpg, scans/1.png)."""
    from shipml.images.decode import IMAGE_SUFFIXES

    sample = text.head(200).str.strip().str.lower()
    if sample.empty:
        return False
    share = sample.map(lambda v: any(v.endswith(s) for s in IMAGE_SUFFIXES)).mean()
    return bool(share >= _PARSE_SHARE)


def as_category(value: object) -> str:
    """The text form under which a cell is a category (or class label): 1, 1.0 and "1 " are
    all "1"; True is "True". Training, prediction, monitoring and PII hashing share it."""
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    return str(value).strip()


def _labels(raw: pd.Series, classes: list) -> np.ndarray:
    """Map target cells onto the known class labels by their text form (1, "1" and 1.0 match)."""
    by_text = {as_category(c): c for c in classes}
    out = np.empty(len(raw), dtype=object)
    for i, value in enumerate(raw.to_numpy()):
        missing = _is_missing(value)
        out[i] = None if missing else by_text.get(as_category(value), UnknownLabel(value))
    return out


class UnknownLabel:
    """A target value that is not one of the model's classes (kept to report it, never learned)."""

    def __init__(self, value: object) -> None:
        self.value = value

    def __repr__(self) -> str:
        return repr(self.value)


def _is_missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA


def _missing_target_message(target: str, columns: list[str]) -> str:
    close = difflib.get_close_matches(target, columns, n=1, cutoff=0.5)
    close = close or [c for c in columns if c.lower() == target.lower()]
    hint = f" Did you mean '{close[0]}'?" if close else ""
    shown = ", ".join(columns[:30]) + (" ..." if len(columns) > 30 else "")
    return f"target column '{target}' not found.{hint} Columns are: {shown}"


# -- inference ---------------------------------------------------------------------------------
def infer_schema(
    frame: pd.DataFrame,
    target: str,
    *,
    task: str | None = None,
    time_column: str | None = None,
    group_column: str | None = None,
    drop: tuple[str, ...] | list[str] = (),
    kinds: dict[str, str] | None = None,
    pii: tuple[str, ...] | list[str] = (),
    keep_pii: tuple[str, ...] | list[str] = (),
) -> Schema:
    """Infer column kinds and the task from a training table.

    `kinds` forces a kind per column (e.g. {"zip": "categorical"}); `drop` ignores columns.
    `pii` marks columns as personal data, in addition to those detected by their values or
    header (data/pii.py). Personal data is left out of the features, except the columns in
    `keep_pii`: those become categorical features of keyed hashes (never the raw values).

    >>> import pandas as pd
    >>> frame = pd.DataFrame({"age": [25, 41, 33, 58], "plan": ["basic", "pro", "basic", "pro"],
    ...                       "income": ["$1,200", "$3,400.50", "$2,000", "$5,100"],
    ...                       "churn": ["yes", "no", "no", "yes"]})
    >>> schema = infer_schema(frame, "churn")
    >>> schema.task, schema.classes, [(c.name, c.kind) for c in schema.columns]
    ('binary', ['no', 'yes'], [('age', 'numeric'), ('plan', 'categorical'), ('income', 'numeric')])
    >>> schema.column("income").note
    'numbers stored as text, parsed'
    """
    columns = list(frame.columns)
    if target not in columns:
        raise TargetError(_missing_target_message(target, columns))
    for name, what in ((time_column, "time column"), (group_column, "group column")):
        if name and name not in columns:
            raise TargetError(_missing_target_message(name, columns).replace("target", what, 1))
    unknown = [c for c in [*drop, *(kinds or {}), *pii, *keep_pii] if c not in columns]
    if unknown:
        raise TargetError(_missing_target_message(unknown[0], columns).replace("target", "", 1))
    task, classes, notes = _infer_task(frame[target], target, task)
    cols = []
    for name in columns:
        if name == target:
            continue
        series = frame[name]
        if name in drop:
            col = Column(name, "ignored", note="dropped on request")
        else:  # personal data is looked for in the raw cells, before any number parsing
            reason = None if name == time_column else _personal(name, series, pii, keep_pii)
            if name == group_column:
                col = Column(name, "ignored", note="group column: used to split, not as a feature")
                _mark_personal(col, reason)
            elif reason:
                col = _personal_column(name, reason, keep=name in keep_pii)
            elif kinds and name in kinds:
                col = _forced_column(series, name, kinds[name])
            else:
                col = _infer_column(series, name)
        col.missing_pct = round(100.0 * float(series.isna().mean()), 2)
        cols.append(col)
    if time_column and frame[time_column].notna().any():
        col = next(c for c in cols if c.name == time_column)
        if col.kind not in ("datetime", "numeric"):
            raise TargetError(
                f"time column '{time_column}' must hold dates or numbers; "
                f"it looks {col.kind} (e.g. {col.example!r})"
            )
    if not any(c.used for c in cols):
        reasons = "; ".join(f"'{c.name}': {c.note}" for c in cols[:10])
        raise TargetError(f"no usable feature columns besides the target ({reasons})")
    return Schema(cols, target, task, classes, time_column, group_column, notes)


def _personal(name: str, series: pd.Series, pii, keep_pii) -> str | None:
    """Why the column is personal data: marked so, or what detection found in it."""
    from shipml.data.pii import personal_reason

    if name in pii:
        return "marked by user"
    found = personal_reason(name, series)
    return found or ("marked by user" if name in keep_pii else None)


def _personal_column(name: str, reason: str, *, keep: bool) -> Column:
    """A column of personal data: left out, or (kept on request) a feature of keyed hashes.
    No value of it is kept in the schema (no example, no note quoting one)."""
    if not keep:
        note = f"personal data ({reason}): left out; --keep-pii {_quoted(name)} to use it, hashed"
        return Column(name, "ignored", note=note, pii=True)
    from shipml.data.pii import new_key

    note = f"personal data ({reason}): used as a feature of keyed hashes, never the values"
    return Column(name, "categorical", note=note, pii=True, hash_key=new_key())


def _mark_personal(col: Column, reason: str | None) -> None:
    if reason:
        col.pii = True
        col.note = f"{col.note}; personal data ({reason}): hashed in the prediction log"


def _quoted(name: str) -> str:
    import shlex

    return shlex.quote(name)


def _forced_column(series: pd.Series, name: str, kind: str) -> Column:
    if kind not in FEATURE_KINDS + DROPPED_KINDS:
        raise TargetError(f"kind for column '{name}' must be one of {FEATURE_KINDS}, got {kind!r}")
    col = Column(name, kind, note="kind set by user", example=_example(series))
    if kind == "datetime":
        col.date_format, _ = guess_date_format(series)
    return col


def _example(series: pd.Series) -> str | None:
    present = series.dropna()
    return None if present.empty else str(present.iloc[0])[:40]


def _infer_column(series: pd.Series, name: str) -> Column:
    present = series.dropna()
    example = _example(series)
    if present.empty:
        return Column(name, "ignored", note="all values missing")
    n_unique = present.astype(str).nunique()
    if n_unique == 1 and len(present) == len(series):
        return Column(name, "ignored", note=f"constant (always {example!r})", example=example)
    if pd.api.types.is_datetime64_any_dtype(series):
        return Column(name, "datetime", example=example)
    if n_unique == 2 and _is_boolean(present):
        return Column(name, "boolean", example=example)
    numbers, cleaned = parse_numeric(present)
    parsed_share = float(np.mean(~np.isnan(numbers)))
    if parsed_share >= _PARSE_SHARE:
        if _looks_like_numeric_id(numbers, name):
            return Column(name, "id", note="identifier: a distinct whole number per row")
        notes = []
        if cleaned:
            notes.append("numbers stored as text, parsed")
        if parsed_share < 1.0:
            notes.append(f"{100 * (1 - parsed_share):.1f}% non-numeric values treated as missing")
        return Column(name, "numeric", note="; ".join(notes), example=example)
    text = present.astype(str)
    if looks_like_image_paths(text):
        return Column(name, "image", note="image files: embeddings of a pretrained network",
                      example=example)  # fmt: skip
    unique_share = n_unique / len(present)
    words = float(text.str.split().str.len().mean())
    if words >= _TEXT_MIN_WORDS and unique_share > 0.3:
        return Column(name, "text", note="free text: TF-IDF word features", example=example)
    if _looks_like_dates(text):
        fmt, _ = guess_date_format(text)
        return Column(name, "datetime", date_format=fmt, example=example)
    if len(present) >= 20 and (
        unique_share >= 0.95 or (_ID_NAME.search(name) and unique_share > 0.5)
    ):
        return Column(name, "id", note="identifier: a distinct value per row", example=example)
    return Column(name, "categorical", example=example)


def _is_boolean(present: pd.Series) -> bool:
    tokens = set(present.astype(str).str.strip().str.lower().unique())
    return (
        tokens <= (TRUE_TOKENS | FALSE_TOKENS)
        and bool(tokens & TRUE_TOKENS)
        and bool(tokens & FALSE_TOKENS)
    )


def _looks_like_numeric_id(numbers: np.ndarray, name: str) -> bool:
    values = numbers[~np.isnan(numbers)]
    if len(values) < 20 or not np.all(values == np.round(values)):
        return False
    if len(np.unique(values)) != len(values):
        return False
    ordered = np.sort(values)
    consecutive = bool(np.all(np.diff(ordered) == 1))
    return consecutive or bool(_ID_NAME.search(name))


def _looks_like_dates(text: pd.Series) -> bool:
    sample = text.head(200)
    if not sample.str.contains(r"\d", regex=True).mean() > 0.9:
        return False
    if not sample.str.contains(r"[-/:.\s]", regex=True).mean() > 0.9:
        return False
    _, share = guess_date_format(sample)
    return share >= 0.95


def _infer_task(raw: pd.Series, target: str, task: str | None) -> tuple[str, list | None, list]:
    if task is not None and task not in TASKS:
        raise TargetError(f"task must be one of {', '.join(TASKS)}; got {task!r}")
    present = raw.dropna()
    notes: list[str] = []
    if present.empty:
        raise TargetError(f"target column '{target}' has no values (all {len(raw)} are missing)")
    if len(present) < len(raw):
        notes.append(f"{len(raw) - len(present)} rows with a missing target were left out")
    numbers, _ = parse_numeric(present)
    numeric = bool(np.mean(~np.isnan(numbers)) >= _PARSE_SHARE)
    text = present.map(as_category)
    n_unique = text.nunique()
    if task is None:
        if n_unique == 2:
            task = "binary"
        elif numeric:
            whole = np.all(numbers[~np.isnan(numbers)] % 1 == 0)
            small = n_unique <= _MAX_CLASSES_FROM_NUMBERS
            task = (
                "multiclass" if whole and small and n_unique < 0.05 * len(present) else "regression"
            )
        else:
            task = "multiclass"
    if task == "regression":
        if not numeric:
            bad = present[np.isnan(numbers)].iloc[0]
            raise TargetError(
                f"regression needs a numeric target; column '{target}' has {echo(bad)}; "
                "use --task multiclass to predict categories"
            )
        if np.nanstd(numbers) == 0:
            raise TargetError(f"target column '{target}' has a single value: nothing to learn")
        return task, None, notes
    if n_unique < 2:
        raise TargetError(
            f"target column '{target}' has a single class ({echo(text.iloc[0])}): a classifier "
            "needs at least two; add rows of the other class"
        )
    if task == "binary" and n_unique > 2:
        raise TargetError(f"binary task but target '{target}' has {n_unique} classes")
    classes = _ordered_classes(present, text, numeric, numbers)
    counts = text.value_counts()
    single = [str(c) for c, n in counts.items() if n == 1]
    if single:
        notes.append(f"classes with a single example (hard to learn): {', '.join(single[:10])}")
    return task, classes, notes


def _ordered_classes(present: pd.Series, text: pd.Series, numeric: bool, numbers: np.ndarray):
    if pd.api.types.is_bool_dtype(present.dtype):  # a boolean column: its own values, True last
        return sorted({bool(v) for v in present})
    if numeric and np.all(numbers % 1 == 0):
        labels = sorted({as_label(v) for v in numbers})
    else:
        labels = sorted(set(text))
    if len(labels) == 2:
        lowered = [str(v).lower() for v in labels]
        if lowered[0] in TRUE_TOKENS and lowered[1] in FALSE_TOKENS:
            labels = labels[::-1]  # positive class last: "yes" after "no", 1 after 0
        elif not (lowered[0] in FALSE_TOKENS and lowered[1] in TRUE_TOKENS):
            counts = text.value_counts()
            minority = min(labels, key=lambda v: (counts.get(as_category(v), 0), str(v)))
            labels = [v for v in labels if v != minority] + [minority]  # positive = rarer class
    return labels
