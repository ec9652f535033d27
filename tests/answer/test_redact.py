"""Personal data inside a question (data/pii_text.py): found, replaced, the rest kept."""

import pytest

from shipml.data.pii_text import personal_spans, redact_text


def kinds(text):
    return [(text[s:e], kind) for s, e, kind in personal_spans(text)]


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("write to anna.schmidt@example.com please", [("anna.schmidt@example.com", "email")]),
        ("call me on +49 151 2345678", [("+49 151 2345678", "phone")]),
        ("my IBAN is DE89 3704 0044 0532 0130 00", [("DE89 3704 0044 0532 0130 00", "iban")]),
        ("card 4111 1111 1111 1111 was charged twice", [("4111 1111 1111 1111", "card")]),
        ("blocked from 192.168.10.20 today", [("192.168.10.20", "ip")]),
        ("Hello, this is Anna Schmidt again", [("Anna Schmidt", "name")]),
    ],
)
def test_each_kind_is_found(text, found):
    assert kinds(text) == found


@pytest.mark.parametrize(
    "text",
    [
        "my card still hasn't arrived after 10 days",
        "order 12345 of 2024-05-01 cost 1,234.50",
        "card 4111 1111 1111 1112 (not a valid card number)",
        "How do I reset My Password",
        "",
    ],
)
def test_ordinary_questions_are_left_alone(text):
    assert personal_spans(text) == []
    assert redact_text(text, lambda kind, span: "X") == text


def test_redact_replaces_each_span_and_keeps_the_rest():
    text = "I am Anna Schmidt (anna@example.org); my parcel is late"
    out = redact_text(text, lambda kind, span: f"<{kind}:{len(span)}>")
    assert out == "I am <name:12> (<email:16>); my parcel is late"
