"""Personal data: detected or marked at training, hashed by the server, never in the schema."""

import pandas as pd
import pytest

from conftest import GERMAN
from shipml.data.schema import infer_schema
from shipml.errors import TargetError
from shipml.serve.pii import PiiHasher, load_secret


def _customers() -> pd.DataFrame:
    """The German credit rows with contact columns a CRM export would have."""
    frame = pd.read_csv(GERMAN).head(200)
    n = len(frame)
    frame["email"] = [f"customer{i}@example.com" for i in range(n)]
    frame["contact"] = [f"+49 151 {1000000 + 7 * i}" for i in range(n)]
    frame["customer_name"] = [f"Person {i % 150}" for i in range(n)]
    return frame


def test_personal_columns_are_detected_and_not_kept():
    schema = infer_schema(_customers(), "credit_risk", pii=["age_years"])
    marked = {c.name for c in schema.columns if c.pii}
    assert {"email", "contact", "customer_name", "age_years"} <= marked
    # real German credit columns are not personal identifiers ("telephone" is yes/no)
    assert not marked & {"telephone", "purpose", "credit_amount", "housing"}
    for col in schema.columns:
        if col.pii:
            assert col.example is None and "personal data" in col.note
    saved = str(schema.to_dict())
    assert "@example.com" not in saved and "+49 151" not in saved


def test_unknown_pii_column_is_named():
    with pytest.raises(TargetError, match="emial"):
        infer_schema(_customers(), "credit_risk", pii=["emial"])


def test_hashes_are_keyed_and_stable(tmp_path, monkeypatch):
    monkeypatch.delenv("SHIPML_PII_SECRET", raising=False)
    secret = load_secret(tmp_path)
    assert secret == load_secret(tmp_path) and len(secret) == 64
    assert oct((tmp_path / "pii-secret").stat().st_mode & 0o777) == "0o600"
    one, other = PiiHasher({"email"}, secret), PiiHasher({"email"}, b"another secret")
    record = {"email": "a@example.com", "plan": "pro"}
    scrubbed = one.scrub(record)
    assert scrubbed["plan"] == "pro" and scrubbed["email"].startswith("hmac:")
    assert scrubbed == one.scrub(dict(record))  # stable
    assert scrubbed["email"] != other.scrub(record)["email"]  # keyed
    assert one.scrub({"email": None})["email"] is None
    monkeypatch.setenv("SHIPML_PII_SECRET", "from-env")
    assert load_secret(tmp_path) == b"from-env"
