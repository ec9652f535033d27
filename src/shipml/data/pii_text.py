"""Personal data inside free text (a customer's question): find it, replace it.

The tabular routes hash whole columns marked as personal data (serve/pii.py). A question is one
free-text field, so the personal parts are found inside it with the rules of data/pii.py for
single values: e-mail addresses, phone numbers, IBANs (valid checksum), IP addresses, card
numbers (13-19 digits with a valid Luhn checksum) and a person's full name (a capitalized first
name from the lexicon followed by a capitalized last name). Each span is replaced by what
`replace(kind, span)` gives (the server's keyed hash), so the same e-mail address always becomes
the same code and the rest of the question stays readable for `shipml monitor`.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from shipml.data.pii import _is_email, _is_iban, _is_ip, _is_phone

__all__ = ["personal_spans", "redact_text"]

_EMAIL = re.compile(r"[^@\s<>()\[\],;:\"']+@[^@\s<>()\[\],;:\"']+\.[a-z]{2,}", re.IGNORECASE)
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?:[ ]?[A-Z0-9]{4}){2,7}(?:[ ]?[A-Z0-9]{1,4})?\b")
_CARD = re.compile(r"\b\d(?:[ -]?\d){12,18}\b")
_PHONE = re.compile(r"(?<![\w+])(?:\+|00)?\(?\d[\d\s()./-]{5,}\d\b")
_IP = re.compile(r"\b(?:\d{1,3}\.){3}\d{1,3}\b|\b[0-9a-f]{0,4}(?::[0-9a-f]{0,4}){2,7}\b", re.I)
_NAME = re.compile(r"\b([A-Z][a-z]+(?:-[A-Z][a-z]+)?)\s+([A-Z][a-z]+(?:-[A-Z][a-z]+)?)\b")


def _luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch) * (2 if i % 2 else 1)
        total += d - 9 if d > 9 else d
    return total % 10 == 0


def _card(span: str) -> bool:
    digits = re.sub(r"\D", "", span)
    return 13 <= len(digits) <= 19 and _luhn(digits)


def _full_name(match: re.Match) -> bool:
    from shipml.data.lexicon import first_names, last_names

    first, last = match.group(1).casefold(), match.group(2).casefold()
    return first in first_names() and last in last_names()


# (kind, pattern, test of the matched text); earlier kinds win where spans overlap
_RULES: tuple = (
    ("email", _EMAIL, lambda m: _is_email(m.group(0))),
    ("iban", _IBAN, lambda m: _is_iban(m.group(0))),
    ("card", _CARD, lambda m: _card(m.group(0))),
    ("ip", _IP, lambda m: _is_ip(m.group(0))),
    ("phone", _PHONE, lambda m: _is_phone(m.group(0).strip())),
    ("name", _NAME, _full_name),
)


def personal_spans(text: str) -> list[tuple[int, int, str]]:
    """(start, end, kind) of every personal-data span of `text`, in order, never overlapping."""
    found: list[tuple[int, int, str]] = []
    for kind, pattern, test in _RULES:
        for match in pattern.finditer(text):
            start, end = match.span()
            if any(s < end and start < e for s, e, _ in found) or not test(match):
                continue
            found.append((start, end, kind))
    return sorted(found)


def redact_text(text: str, replace: Callable[[str, str], str]) -> str:
    """`text` with each personal span replaced by `replace(kind, span)`."""
    out, last = [], 0
    for start, end, kind in personal_spans(text):
        out.append(text[last:start])
        out.append(replace(kind, text[start:end]))
        last = end
    out.append(text[last:])
    return "".join(out)
