"""Personal data: detected or marked at training, hashed by the server, never in the schema."""

import json

import pandas as pd
import pytest

from conftest import GERMAN
from shipml.data.schema import Schema, infer_schema
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


# -- detection by values (issue 13, item 8) ---------------------------------------------------
def _generated(kind: str, n: int = 60) -> list[str]:
    """n realistic values of one kind of personal data, from fixed lists (seeded)."""
    import numpy as np

    rng = np.random.default_rng(8)
    first = ["Anna", "Lukas", "Sophie", "Jonas", "Marie", "Felix", "Emma", "Paul", "Lena", "Leon",
             "Mia", "Finn", "Hannah", "Elias", "Clara", "Fatima", "Mehmet", "Olga", "Ivan",
             "Giulia", "Marco", "Sofia", "Yusuf", "Agnieszka", "Pierre"]  # fmt: skip
    last = ["Schmidt", "Müller", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker",
            "Rossi", "Nowak", "Dubois", "Garcia", "Yilmaz", "Ivanova", "Jansen"]  # fmt: skip
    pick = lambda items: items[int(rng.integers(len(items)))]  # noqa: E731
    digits = lambda k: "".join(str(d) for d in rng.integers(0, 10, k))  # noqa: E731
    make = {
        "e-mail addresses": lambda i: f"{pick(first).lower()}{i}@mail.example.com",
        "phone numbers": lambda i: [
            f"+49 151 {digits(7)}",
            f"0171 {digits(7)}",
            f"(555) {digits(3)}-{digits(4)}",
            f"+33 1 {digits(8)}",
            f"555-{digits(3)}-{digits(4)}",
        ][i % 5],  # fmt: skip
        "first names": lambda i: pick(first),
        "people's full names": lambda i: f"{pick(first)} {pick(last)}",
        "street addresses": lambda i: [
            f"Hauptstraße {i + 1}",
            f"{i + 3} Baker Street",
            f"Rue de Rivoli {i}",
            f"Via Roma {i + 7}, Milano",
        ][i % 4],
        "IBANs": lambda i: _iban(digits(8), digits(10)),
        "IP addresses": lambda i: ".".join(str(x) for x in rng.integers(1, 255, 4)),
    }[kind]
    return [make(i) for i in range(n)]


def _iban(bank: str, account: str) -> str:
    checked = "".join(str(int(c, 36)) for c in f"{bank}{account}DE00")
    return f"DE{98 - int(checked) % 97:02d}{bank}{account}"


KINDS = ["e-mail addresses", "phone numbers", "first names", "people's full names",
         "street addresses", "IBANs", "IP addresses"]  # fmt: skip


@pytest.mark.parametrize("kind", KINDS)
def test_each_kind_is_found_by_its_values_under_a_neutral_header(kind):
    from shipml.data.pii import personal_reason

    values = pd.Series(_generated(kind))
    assert personal_reason("field_7", values) == kind
    frame = pd.read_csv(GERMAN).head(60).assign(field_7=values)
    col = infer_schema(frame, "credit_risk").column("field_7")
    assert col.pii and col.kind == "ignored" and col.example is None
    assert col.note == f"personal data ({kind}): left out; --keep-pii field_7 to use it, hashed"


def test_iban_needs_valid_check_digits():
    from shipml.data.pii import personal_reason

    assert _iban("37040044", "0532013000") == "DE89370400440532013000"  # the published example
    wrong = [v[:4] + v[5:] + v[4] for v in _generated("IBANs")]  # two digits swapped
    assert personal_reason("field", pd.Series(wrong)) is None


def test_dates_of_birth_need_a_header_saying_so():
    from shipml.data.pii import personal_reason

    dates = pd.Series(pd.date_range("1950-01-01", periods=60, freq="397D").strftime("%d.%m.%Y"))
    assert personal_reason("born", dates) == "dates of birth"
    assert personal_reason("Date of Birth", dates) == "dates of birth"
    assert personal_reason("signed_up", dates) is None  # any other date is just a date
    years = pd.Series([str(1950 + i % 50) for i in range(60)])
    assert personal_reason("birth_year", years) is None  # a year of birth is like an age


def test_phone_numbers_are_never_parsed_as_numbers():
    phones = [f"+49 151 {2345600 + 17 * i}" for i in range(100)]
    frame = pd.read_csv(GERMAN).head(100).assign(contact_no=phones)
    col = infer_schema(frame, "credit_risk").column("contact_no")
    assert col.kind == "ignored" and "phone numbers" in col.note
    kept = infer_schema(frame, "credit_risk", keep_pii=["contact_no"]).column("contact_no")
    assert kept.kind == "categorical" and kept.used and kept.hash_key


def test_a_kept_column_holds_keyed_hashes_only():
    frame = _customers().assign(contact=[f"+49 151 {1000000 + 7 * (i % 40)}" for i in range(200)])
    schema = infer_schema(frame, "credit_risk", keep_pii=["contact"])
    again = infer_schema(frame, "credit_risk", keep_pii=["contact"])
    col = schema.column("contact")
    assert "used as a feature of keyed hashes" in col.note and col.example is None
    codes = schema.coerce(frame)["contact"]
    assert codes.str.startswith("h:").all() and codes.nunique() == 40
    assert (codes == Schema.from_dict(schema.to_dict()).coerce(frame)["contact"]).all()  # saved
    assert not (codes == again.coerce(frame)["contact"]).any()  # a key of its own per model
    assert "+49 151" not in json.dumps(schema.to_dict())


CITIES = (  # noqa: SIM905
    "Berlin Hamburg Munich Cologne Frankfurt Stuttgart Dresden Leipzig Bremen Hanover "
    "Nuremberg Paris Lyon Marseille Toulouse Nice Nantes Bordeaux Lille London Manchester "
    "Liverpool Leeds Glasgow Edinburgh Bristol Madrid Barcelona Valencia Seville Bilbao "
    "Rome Milan Naples Turin Florence Venice Vienna Zurich Geneva Amsterdam Rotterdam "
    "Brussels Lisbon Porto Warsaw Krakow Prague Budapest Athens Stockholm Oslo Copenhagen "
    "Helsinki Dublin Boston Chicago Houston Phoenix Dallas Austin Denver Seattle Portland "
    "Atlanta Miami Orlando Tokyo Osaka Seoul Beijing Shanghai Mumbai Delhi Sydney "
    "Melbourne Toronto"
).split()
PRODUCTS = [
    "Wireless Mouse",
    "USB-C Charger 65W",
    "Oak Dining Table",
    "Espresso Machine",
    "Running Shoes",
    "Leather Wallet",
    "Desk Lamp",
    "Noise Cancelling Headphones",
    "Yoga Mat",
    "Cast Iron Pan",
    "Wool Scarf",
    "Bluetooth Speaker",
    "Office Chair",
    "Water Bottle 1L",
    "Backpack 30L",
    "Electric Kettle",
    "Phone Case",
    "Gaming Keyboard",
    "Garden Hose 20m",
    "Coffee Grinder",
    "Winter Jacket",
    "Cotton T-Shirt",
    "Smart Watch",
    "Baby Stroller",
    "Tennis Racket",
    "Kitchen Scale",
    "Air Fryer",
    "Table Tennis Set",
]


@pytest.mark.parametrize(
    "values",
    [
        CITIES,
        PRODUCTS,
        ["1 234 567", "12 500", "1,234,567.89", "-3.5", "(1,200)", "$1,234.50"] * 10,  # amounts
        ["2023-01-15", "15.01.2023", "01/15/2023", "2024-02-29 10:00"] * 15,  # dates
        [f"{10115 + 13 * i:05d}" for i in range(60)],  # postcodes
        [f"L{50000 + 37 * i}" for i in range(60)],  # product ids
        [f"{1 + i % 9}.{i % 7}.{i % 5}" for i in range(60)],  # versions
        ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
        * 5,  # months (names too)
    ],
    ids=["cities", "products", "amounts", "dates", "postcodes", "ids", "versions", "months"],
)
def test_no_false_alarm_on_things_that_are_not_people(values):
    from shipml.data.pii import personal_reason

    assert personal_reason("value", pd.Series(values)) is None


@pytest.mark.parametrize(
    "name",
    [
        "german_credit.csv",
        "adult_slice.csv",
        "adult_test_slice.csv",
        "bank_slice.csv",
        "ai4i_slice.csv",
        "banking77_slice.csv",
    ],
)
def test_no_false_alarm_on_the_real_tables(name):
    from conftest import DATA
    from shipml.data.io import read_table
    from shipml.data.pii import personal_reason

    frame = read_table(DATA / name).frame
    assert {c: personal_reason(c, frame[c]) for c in frame} == dict.fromkeys(frame)


def test_a_header_saying_name_needs_people_behind_it():
    from shipml.data.pii import personal_reason

    assert personal_reason("name", pd.Series(PRODUCTS)) is None  # a product catalogue
    assert personal_reason("name", pd.Series(CITIES)) is None
    people = [f"{first} (#{i})" for i, first in enumerate(["Anna", "Paul", "Lena", "Marco"] * 10)]
    assert personal_reason("name", pd.Series(people)) == "by its name"
    assert personal_reason("customer_name", pd.Series(PRODUCTS)) == "by its name"  # says so
    assert personal_reason("email", pd.Series(["yes", "no"] * 30)) is None  # "email: yes/no"
