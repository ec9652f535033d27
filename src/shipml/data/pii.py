"""Which columns hold personal data (PII): by name, or by what their values look like.

Marked columns are never stored raw by the server (the prediction log keeps keyed hashes) and
are left out of the drift reference saved with a model. A false alarm only costs a hashed
column in the log, so the rules lean towards marking; a column with 20 values or fewer cannot
single a person out and is not marked by its name alone.
"""

from __future__ import annotations

import re

import pandas as pd

__all__ = ["looks_personal"]

_NAME = re.compile(
    r"(^|[^a-z])(e-?mail|phone|mobile|telephone|fax|first_?name|last_?name|surname|"
    r"full_?name|customer_?name|client_?name|user_?name|name|address|street|zip_?code|zip|post_?code|postal|"
    r"ssn|social_?security|passport|national_?id|iban|account_?number|card_?number|"
    r"ip_?address|ip|date_?of_?birth|dob|birth_?date)($|[^a-z])",
    re.IGNORECASE,
)
_THING_NAME = re.compile(r"(product|item|file|host|domain|brand|model|plan|company)_?name", re.I)
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[a-z]{2,}$", re.IGNORECASE)
_PHONE = re.compile(r"^(\+|00)?\d[\d\s().-]{6,}\d$")
_SAMPLE = 200
_SHARE = 0.5
_FEW_VALUES = 20


def looks_personal(col, series: pd.Series) -> str | None:
    """Why the column looks like personal data ("name", "e-mail values"...), or None."""
    name = col.name.replace(" ", "_")
    named = _NAME.search(name) and not _THING_NAME.search(name)
    if named and series.nunique(dropna=True) > _FEW_VALUES:  # "telephone: yes/no" is not PII
        return "by its name"
    if col.kind in ("boolean", "datetime"):
        return None
    values = series.dropna().astype(str).str.strip().head(_SAMPLE)
    if values.empty:
        return None
    if values.map(lambda v: bool(_EMAIL.match(v))).mean() >= _SHARE:
        return "e-mail addresses"
    strict = col.kind == "numeric"  # "1 234 567" may be an amount: only "+49 ..." or "(555) ..."
    phones = values.map(lambda v: bool(_PHONE.match(v)) and _phone_like(v, strict))
    if phones.mean() >= _SHARE:
        return "phone numbers"
    return None


def _phone_like(value: str, strict: bool) -> bool:
    digits = sum(ch.isdigit() for ch in value)
    marks = "+(" if strict else "+( -."
    prefixed = value.startswith(("+", "00", "(")) if strict else value[0] == "+"
    return 7 <= digits <= 15 and (prefixed or (not strict and any(c in value for c in marks)))
