"""Turn text cells into numbers, booleans and dates the way people write them in spreadsheets."""

from __future__ import annotations

import re
import warnings

import numpy as np
import pandas as pd

__all__ = ["parse_numeric", "parse_boolean", "parse_datetime", "guess_date_format", "as_label"]

TRUE_TOKENS = frozenset({"true", "yes", "y", "t", "1", "1.0", "on"})
FALSE_TOKENS = frozenset({"false", "no", "n", "f", "0", "0.0", "off"})
_THOUSANDS = re.compile(r"^[+-]?\d{1,3}(,\d{3})+(\.\d+)?$")


def parse_numeric(values: pd.Series) -> tuple[np.ndarray, bool]:
    """Floats (NaN for missing or unparseable) and whether any cell needed cleaning.

    Accepts "$1,234.50", "12%" (-> 0.12), "1 234", "(1,234)" (accounting negative), "-3.5e2".
    """
    if pd.api.types.is_bool_dtype(values):
        return values.astype("float64").to_numpy(), False
    if pd.api.types.is_numeric_dtype(values):
        return pd.to_numeric(values, errors="coerce").astype("float64").to_numpy(), False
    text = values.astype("string").str.strip()
    direct = pd.to_numeric(text, errors="coerce")
    todo = direct.isna() & text.notna()
    if not todo.any():
        return direct.astype("float64").to_numpy(), False
    messy = text[todo]
    negative = messy.str.match(r"^\(.*\)$") | messy.str.match(r"^-\s*[$€£¥]")
    percent = messy.str.endswith("%")
    cleaned = messy.str.replace(r"^\((.*)\)$", r"\1", regex=True)
    cleaned = cleaned.str.replace(r"[$€£¥%\s\u00a0\u202f'_]|^(USD|EUR|GBP)", "", regex=True)
    cleaned = cleaned.str.lstrip("-")
    thousands = cleaned.str.match(_THOUSANDS.pattern)
    cleaned = cleaned.where(~thousands, cleaned.str.replace(",", "", regex=False))
    parsed = pd.to_numeric(cleaned, errors="coerce").astype("float64")
    parsed = parsed.where(~percent, parsed / 100.0).where(~negative, -parsed)
    out = direct.astype("float64").copy()
    out[todo] = parsed
    return out.to_numpy(), bool(parsed.notna().any())


def parse_boolean(values: pd.Series) -> np.ndarray:
    """1.0 / 0.0 for true/false tokens (yes/no, y/n, 1/0, ...); NaN for missing or anything else."""
    if pd.api.types.is_bool_dtype(values) or pd.api.types.is_numeric_dtype(values):
        numbers = pd.to_numeric(values, errors="coerce").astype("float64")
        return numbers.where(numbers.isin([0.0, 1.0])).to_numpy()
    text = values.astype("string").str.strip().str.lower()
    out = np.full(len(values), np.nan)
    out[text.isin(TRUE_TOKENS).fillna(False).to_numpy(bool)] = 1.0
    out[text.isin(FALSE_TOKENS).fillna(False).to_numpy(bool)] = 0.0
    return out


def guess_date_format(values: pd.Series) -> tuple[str, float]:
    """The date format that parses most of `values`, and the share of non-missing values it parses.

    Tries the strftime format pandas guesses from the first values (month-first, then day-first),
    then ISO 8601, then pandas' per-value "mixed" parsing.
    """
    from pandas.tseries.api import guess_datetime_format

    sample = values.dropna().astype(str).head(500)
    if sample.empty:
        return "mixed", 0.0
    candidates: list[str] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for value in sample.head(5):
            for dayfirst in (False, True):
                fmt = guess_datetime_format(value, dayfirst=dayfirst)
                if fmt and fmt not in candidates:
                    candidates.append(fmt)
        best, best_rate = "mixed", 0.0
        for fmt in [*candidates, "ISO8601", "mixed"]:
            rate = float(pd.to_datetime(sample, format=fmt, errors="coerce").notna().mean())
            if rate > best_rate + 1e-9:
                best, best_rate = fmt, rate
            if rate == 1.0:
                break
    return best, best_rate


def parse_datetime(values: pd.Series, fmt: str | None) -> pd.Series:
    """datetime64 values (NaT for missing or unparseable), naive UTC."""
    if pd.api.types.is_datetime64_any_dtype(values):
        parsed = values
    else:
        text = values.astype("string").str.strip()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            parsed = pd.to_datetime(text, format=fmt or "mixed", errors="coerce", utc=True)
    if getattr(parsed.dt, "tz", None) is not None:
        parsed = parsed.dt.tz_convert("UTC").dt.tz_localize(None)
    return parsed


def as_label(value: object) -> object:
    """A JSON-safe plain Python value for a class label (numpy scalars unwrapped, 2.0 -> 2)."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value
