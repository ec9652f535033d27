"""The helpers that word the codec's messages, and V2Error (in shipml.errors), its one exception."""

from __future__ import annotations

from shipml.errors import V2Error

__all__ = ["V2Error", "json_type", "short", "name_list", "check_parameters", "input_error"]


def json_type(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return f"the number {value!r}"
    if isinstance(value, str):
        return f"the string {short(value)}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def short(value, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."  # never more than `limit`


def name_list(features) -> str:
    names = list(features)
    shown = ", ".join(names[:40]) + (f" ... ({len(names)} in all)" if len(names) > 40 else "")
    return shown


def check_parameters(value, where: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise V2Error(f"{where} must be a JSON object, got {json_type(value)}", field="parameters")
    return value


def input_error(name: str, text: str, status: int = 400) -> V2Error:
    return V2Error(f"input '{name}'{text}", field=name, status=status)


# A value that does not fit its input (wrong JSON type, infinity, text that is not Unicode):
# 422, as on every route (data/cells.py); a malformed request (shape, names, datatypes) is 400.
ODD_VALUE = 422
