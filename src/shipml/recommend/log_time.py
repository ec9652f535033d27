"""The time of each event in a log, as seconds since the epoch (UTC).

Dates are read the way data/parse.py reads them (ISO 8601, the spreadsheet formats pandas
guesses, time zones converted to UTC); plain numbers are epoch seconds, milliseconds,
microseconds or nanoseconds, told apart by their magnitude.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["parse_times"]

# A number below 1e11 as seconds is before the year 5138; as milliseconds before 1973.
_EPOCH_UNITS = ((1e11, 1.0, "seconds"), (1e14, 1e3, "milliseconds"),
                (1e17, 1e6, "microseconds"), (np.inf, 1e9, "nanoseconds"))  # fmt: skip


_RELATIVE = {"now", "today", "tomorrow", "yesterday"}


def parse_times(values: pd.Series) -> tuple[np.ndarray, str]:
    """(seconds since 1970-01-01 UTC per value, NaN where missing or unreadable; how the values
    were read, for the notes)."""
    from shipml.data.parse import guess_date_format, parse_datetime

    if pd.api.types.is_datetime64_any_dtype(values):
        return _seconds(parse_datetime(values, None)), "dates"
    raw = _numbers(values)
    if raw is not None:
        scale = float(np.nanmedian(np.abs(raw))) if np.isfinite(raw).any() else 0.0
        for limit, per_second, unit in _EPOCH_UNITS:
            if scale < limit:
                return raw / per_second, f"numbers: epoch {unit} (told by their magnitude)"
    text = values.astype("string").str.strip()
    text = text.where(~text.str.lower().isin(_RELATIVE), None)  # "today" is not a log's time
    best = _seconds(parse_datetime(text, "ISO8601"))
    if np.isfinite(best).sum() < text.notna().sum():
        try:
            fmt, _rate = guess_date_format(text)
        except ValueError:  # mixed time zones in pandas' guess: each value on its own
            fmt = "mixed"
        other = _seconds(parse_datetime(text, fmt))
        best = other if np.isfinite(other).sum() > np.isfinite(best).sum() else best
    return best, "dates"


def _numbers(values: pd.Series) -> np.ndarray | None:
    """The values as floats when every present one is a plain number, else None."""
    if pd.api.types.is_bool_dtype(values):
        return None
    if pd.api.types.is_numeric_dtype(values):
        return values.to_numpy(dtype=float, na_value=np.nan)
    present = values.dropna()
    if len(present) == 0:
        return None
    numbers = pd.to_numeric(present.astype(str).str.strip(), errors="coerce")
    if numbers.isna().any():
        return None
    out = np.full(len(values), np.nan)
    out[values.notna().to_numpy()] = numbers.to_numpy(dtype=float)
    return out


def _seconds(parsed: pd.Series) -> np.ndarray:
    stamps = pd.to_datetime(parsed, errors="coerce")
    out = np.full(len(stamps), np.nan)
    ok = stamps.notna().to_numpy()
    if ok.any():
        ns = stamps[ok].astype("datetime64[ns]").astype("int64").to_numpy()
        out[ok] = ns / 1e9
    return out
