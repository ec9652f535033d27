"""Which columns hold personal data (PII): by what their values look like, or by their header.

Detection runs on the raw cells, before any kind is inferred, so that "+49 151 2345678" is a
phone number and never a number. By values: e-mail addresses, phone numbers, IBANs (with a valid
checksum), IP addresses, street addresses, people's full names, first names and last names
(data/lexicon.py); dates of birth need a header saying so ("birth", "dob", "born") and dates
giving ages of 0 to 110. By header: "email", "phone", "surname", "iban", "passport"... when the
column has more than 20 distinct values ("telephone: yes/no" is not PII); a header that only
says "name" also needs half of the values to start with a first name ("name" may be a product).

A detected column is left out of the features (training.py shows why), and its values are kept
out of every artifact; the server stores it only as keyed hashes in the prediction log. With
`--keep-pii` it becomes a categorical feature of keyed hashes (:func:`pseudonym`), computed in
Schema.coerce, so that the encoder, the drift reference and the reports only ever see codes.

The key of those hashes is random per column and saved in the model's schema: the model must
compute the same codes wherever it is loaded (another machine, a bundle), which the server's
per-deployment PII secret (serve/pii.py) would not allow. The trade-off: whoever holds the
model's files holds the key and can test a guess ("is 'Anna' one of the codes?"), so a kept
column is pseudonymized, not anonymized. The encoder only gives codes to values that several
training rows share (a value seen once is one person), and keeping a column is opt-in.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import ipaddress
import re

import pandas as pd

__all__ = ["personal_reason", "pseudonym", "new_key"]

_HEADER = re.compile(
    r"(^|[^a-z])(e-?mail|phone|mobile|telephone|fax|first_?name|last_?name|surname|"
    r"full_?name|customer_?name|client_?name|user_?name|address|street|"
    r"ssn|social_?security|passport|national_?id|iban|account_?number|card_?number|"
    r"ip_?address|ip|date_?of_?birth|dob|birth_?date)($|[^a-z])",
    re.IGNORECASE,
)
_ANY_NAME = re.compile(r"(^|[^a-z])names?($|[^a-z])", re.IGNORECASE)  # product_name, name...
_THING_NAME = re.compile(
    r"(product|item|file|host|domain|brand|model|plan|company|city|country|category|team|store|"
    r"shop|project|job|event|course|species|breed)_?name",
    re.IGNORECASE,
)
_BIRTH = re.compile(r"birth|dob|born|geburt|bday|naissance|nacimiento", re.IGNORECASE)
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[a-z]{2,}$", re.IGNORECASE)
_PHONE = re.compile(r"^(\+|00)?\(?\d[\d\s()./-]{5,}\d$")
_AMOUNT = re.compile(r"^\d{1,3}([ ,.'\u00a0]\d{3})*([.,]\d+)?$|^\d+([.,]\d+)?$")
_DATE = re.compile(r"^\d{1,4}[./-]\d{1,2}[./-]\d{1,4}$")
_IBAN = re.compile(r"^[A-Z]{2}\d{2}[A-Z0-9]{11,30}$")
_STREET_WORDS = (
    "street|st|road|rd|avenue|ave|lane|ln|drive|dr|boulevard|blvd|way|court|ct|place|pl|square|"
    "sq|terrace|crescent|highway|hwy|parkway|rue|avenida|av|calle|carrer|rua|via|viale|corso|"
    "piazza|plaza|straße|strasse|str|weg|allee|platz|gasse|ring|damm|ufer|chaussee|straat|laan|"
    "plein|gracht|kade|ulica|ul|utca|vej|gade|gatan|gata|veien|vei"
)
_STREET = re.compile(
    rf"(^|\s)({_STREET_WORDS})\.?(\s|,|$)"
    r"|[^\W\d_]{3,}(straße|strasse|str\.|weg|allee|platz|gasse|damm|ufer|straat|laan|gracht|"
    r"gatan|vej|gade|veien)(\s|,|$)",
    re.IGNORECASE,
)
_HOUSE_NUMBER = re.compile(r"(^|\s)\d{1,5}[a-z]?(\s|,|$)", re.IGNORECASE)
_WORD = re.compile(r"^[^\W\d_]{2,}(['-][^\W\d_]+)*$")
_TITLES = frozenset({"mr", "mrs", "ms", "miss", "dr", "prof", "sir", "herr", "frau", "mme", "m"})
_SAMPLE = 200
_SHARE = 0.5  # of the sampled values, for formats (e-mail, phone, IBAN, IP, street address)
_FIRST_SHARE = 0.6  # of the distinct values: a fifth of city names are also first names
_LAST_SHARE = 0.7
_FEW_VALUES = 20  # a column with 20 values or fewer cannot single a person out (bar formats)


def personal_reason(name: str, series: pd.Series) -> str | None:
    """What personal data the column holds ("e-mail addresses", "first names", "by its name"...),
    or None."""
    header = name.replace(" ", "_")
    if _birth_dates(header, series):
        return "dates of birth"
    distinct = series.nunique(dropna=True)
    if not (pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series)):
        values = _sample(series)
        reason = _by_values(values) if values else None
        if reason is None and values and _identifying(distinct, series):
            reason = _by_names(values)
        if reason:
            return reason
    if distinct <= _FEW_VALUES:
        return None
    if _HEADER.search(header) and not _THING_NAME.search(header):
        return "by its name"
    if _ANY_NAME.search(header) and not _THING_NAME.search(header) and _named_people(series):
        return "by its name"  # "name", "owner_name": and most values start with a first name
    return None


def new_key() -> str:
    """A random key for the keyed hashes of one kept PII column (hex)."""
    import secrets

    return secrets.token_hex(16)


def pseudonym(key: str, value: str) -> str:
    """The keyed hash a kept PII value is replaced by: the same value always gives the same
    code, and without the key nobody can compute the code of a guessed value."""
    digest = hmac.new(bytes.fromhex(key), value.encode("utf-8"), hashlib.sha256).hexdigest()
    return "h:" + digest[:16]


# -- rules ------------------------------------------------------------------------------------
def _sample(series: pd.Series) -> list[str]:
    """Up to 200 non-blank cells as stripped text."""
    out = []
    for value in series.head(4 * _SAMPLE).dropna().tolist():
        text = str(value).strip()
        if text:
            out.append(text)
            if len(out) == _SAMPLE:
                break
    return out


def _identifying(distinct: int, series: pd.Series) -> bool:
    """Enough distinct values to tell people apart (months and colours are not names)."""
    return distinct > _FEW_VALUES or (distinct >= 5 and distinct >= 0.5 * series.notna().sum())


def _by_values(values: list[str]) -> str | None:
    for reason, test in _FORMATS:
        if sum(map(test, values)) >= _SHARE * len(values):
            return reason
    return None


def _by_names(values: list[str]) -> str | None:
    from shipml.data.lexicon import first_names, last_names

    tokens = [_name_tokens(v) for v in {v.casefold() for v in values}]
    n = len(tokens)
    if sum(len(t) >= 2 for t in tokens) >= _SHARE * n:
        first, last = first_names(), last_names()
        if sum(_full_name(t, first, last) for t in tokens) >= _SHARE * n:
            return "people's full names"
    single = [t[0] for t in tokens if len(t) == 1]
    if len(single) >= _FIRST_SHARE * n:
        if sum(w in first_names() for w in single) >= _FIRST_SHARE * n:
            return "first names"
        if sum(w in last_names() for w in single) >= _LAST_SHARE * n:
            return "last names"
    return None


def _named_people(series: pd.Series) -> bool:
    from shipml.data.lexicon import first_names

    first = first_names()
    words = [v.split()[0].casefold() for v in set(_sample(series))]
    return bool(words) and sum(w in first for w in words) >= _SHARE * len(words)


def _name_tokens(value: str) -> list[str]:
    """The words of a name ("Dr. Anna M. Schmidt" -> anna, schmidt; "Schmidt, Anna" -> anna,
    schmidt), or [] when it is not only words."""
    head, comma, tail = value.partition(",")
    parts = (tail.split() + head.split()) if comma and tail.strip() else value.split()
    parts = [p.rstrip(".") for p in parts]
    parts = [p for p in parts if p not in _TITLES and len(p) > 1]
    if not 1 <= len(parts) <= 4 or not all(_WORD.match(p) for p in parts):
        return []
    return parts


def _full_name(tokens: list[str], first: frozenset[str], last: frozenset[str]) -> bool:
    return len(tokens) >= 2 and tokens[0] in first and tokens[-1] in last


def _is_email(value: str) -> bool:
    return bool(_EMAIL.match(value))


def _is_phone(value: str) -> bool:
    """+49 151 2345678, 0049..., (555) 123-4567, 555-123-4567, 0151 2345678; never an amount
    ("1 234 567", "1,234,567.89") or a date."""
    if not _PHONE.match(value):
        return False
    digits = sum(ch.isdigit() for ch in value)
    if not 7 <= digits <= 15 or _DATE.match(value):
        return False
    if value.startswith(("+", "00", "(")):
        return True
    if value[0] == "0" and value[1:2].isdigit():  # a national number: amounts never start "01"
        return digits >= 9
    return bool(re.search(r"\d[\s./-]\d", value)) and not _AMOUNT.match(value)


def _is_iban(value: str) -> bool:
    if len(value) < 15 or not value[:2].isalpha():
        return False
    compact = re.sub(r"[\s-]", "", value).upper()
    if not _IBAN.match(compact):
        return False
    moved = compact[4:] + compact[:4]
    return int("".join(str(int(ch, 36)) for ch in moved)) % 97 == 1  # ISO 13616 check digits


def _is_ip(value: str) -> bool:
    if "." not in value and ":" not in value:
        return False
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def _is_street_address(value: str) -> bool:
    return bool(_HOUSE_NUMBER.search(value)) and bool(_STREET.search(value))


_FORMATS = (
    ("e-mail addresses", _is_email),
    ("IBANs", _is_iban),
    ("IP addresses", _is_ip),
    ("phone numbers", _is_phone),
    ("street addresses", _is_street_address),
)


def _birth_dates(header: str, series: pd.Series) -> bool:
    """A header saying "birth" and dates giving ages of 0 to 110 years."""
    if not _BIRTH.search(header):
        return False
    if pd.api.types.is_datetime64_any_dtype(series):
        dates = series.dropna()
    else:
        from shipml.data.parse import guess_date_format, parse_datetime

        text = pd.Series(_sample(series), dtype=object)
        if text.empty or text.str.fullmatch(r"\d{1,4}").mean() > 0.5:  # birth years: like ages
            return False
        fmt, share = guess_date_format(text)
        if share < 0.9:
            return False
        dates = parse_datetime(text, fmt).dropna()
    if dates.empty:
        return False
    if getattr(dates.dt, "tz", None) is not None:
        dates = dates.dt.tz_convert("UTC").dt.tz_localize(None)
    ages = (pd.Timestamp(dt.date.today()) - dates).dt.days / 365.25
    return bool(((ages >= 0) & (ages <= 110)).mean() >= 0.95)
