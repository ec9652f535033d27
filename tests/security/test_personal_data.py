"""Personal data never lands in a model, a report, a drift reference, a bundle or a log (issue 13,
items 7 and 8).

A CRM-like table: 300 real German credit rows (features and target) joined to generated contact
data: e-mail addresses, phone numbers in five formats, first names under the neutral header
`contact`, full names under `owner`, street addresses, IBANs with valid check digits, IP
addresses and dates of birth. It is trained with the CLI (report on), evaluated, bundled and
served by a real `shipml serve`, which is sent rows holding those values; then every byte of
SHIPML_HOME (registry.db and its WAL, artifacts, reports, bundle) and of the server's log is
searched for every raw value, as written and in lower case.
"""

from __future__ import annotations

import json
import os
import re
import signal
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest

from conftest import GERMAN, run_cli, start_server

FIRST = (  # noqa: SIM905
    "Annegret Ludwig Friedhelm Waltraud Gottfried Sieglinde Wilhelmine Jürgen Dagmar "
    "Ingeborg Hildegard Reinhold Gerlinde Rüdiger Ottilie Brunhilde Liselotte Adelheid "
    "Eberhard Hannelore Wolfgang Ulrike Gudrun Siegfried Irmgard Burkhard Margarethe "
    "Hartmut Fatima Mehmet Svetlana Giuseppe Francesca Aleksandra Bartosz Agnieszka "
    "Magdalena Konstantin Valentina Rosemarie"
).split()
LAST = (  # noqa: SIM905
    "Schmidt Schneider Fischer Hoffmann Zimmermann Hartmann Krause Lehmann Schröder "
    "Neumann Schwarz Richter Wagner Becker Schulze Keller Günther Baumann Albrecht "
    "Schuster Schumacher Bergmann Pfeiffer Ziegler Brandt Seidel"
).split()
STREETS = (  # noqa: SIM905
    "Hauptstraße Bahnhofstraße Gartenweg Lindenallee Schillerplatz Goethestraße "
    "Kirchgasse Rosenweg Mühlenstraße Birkenallee"
).split()
TOWNS = ["10115 Berlin", "20095 Hamburg", "80331 München", "50667 Köln", "04109 Leipzig"]
PII = {  # column -> what train must say it found
    "email": "e-mail addresses",
    "phone": "phone numbers",
    "contact": "first names",
    "owner": "people's full names",
    "shipping": "street addresses",
    "account": "IBANs",
    "last_seen_from": "IP addresses",
    "born": "dates of birth",
}
N_ROWS = 300


def iban(bank: str, account: str, country: str = "DE") -> str:
    """A German IBAN with its ISO 13616 check digits."""
    digits = "".join(str(int(ch, 36)) for ch in f"{bank}{account}{country}00")
    return f"{country}{98 - int(digits) % 97:02d}{bank}{account}"


def test_iban_generator_matches_the_published_example():
    assert iban("37040044", "0532013000") == "DE89370400440532013000"


def _ascii(text: str) -> str:
    return text.lower().translate(str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss"}))


def _phone(rng, i: int) -> str:
    d = "".join(str(x) for x in rng.integers(0, 10, 8))
    return [
        f"+49 151 {d[:7]}",
        f"0171 {d[:7]}",
        f"+1 (555) {d[:3]}-{d[3:7]}",
        f"0049 30 {d[:8]}",
        f"+44 20 {d[:4]} {d[4:8]}",
    ][i % 5]


def _ip(rng, i: int) -> str:
    if i % 4 == 3:
        return "2001:db8:" + ":".join(f"{x:x}" for x in rng.integers(4096, 65535, 6))
    return ".".join(str(x) for x in rng.integers(11, 255, 4))


def people_table() -> pd.DataFrame:
    """Real credit rows with generated, realistic contact data (seeded, fixed lists)."""
    rng = np.random.default_rng(13)
    frame = pd.read_csv(GERMAN, dtype=str).head(N_ROWS).reset_index(drop=True)
    first = rng.choice(FIRST, N_ROWS)
    last = rng.choice(LAST, N_ROWS)
    born = pd.Timestamp("1940-01-01") + pd.to_timedelta(rng.integers(0, 23_000, N_ROWS), "D")
    accounts = [iban(f"{rng.integers(10**7, 10**8)}", f"{rng.integers(10**9, 10**10)}")
                for _ in range(N_ROWS)]  # fmt: skip
    contact = pd.DataFrame({
        "email": [f"{_ascii(f)}.{_ascii(la)}{i}@example.org" for i, (f, la) in
                  enumerate(zip(first, last))],
        "phone": [_phone(rng, i) for i in range(N_ROWS)],
        "contact": rng.choice(FIRST, N_ROWS),
        "owner": [f"{f} {la}" if i % 3 else f"{la}, {f}"
                  for i, (f, la) in enumerate(zip(rng.choice(FIRST, N_ROWS), last))],
        "shipping": [f"{rng.choice(STREETS)} {rng.integers(1, 120)}, {rng.choice(TOWNS)}"
                     for _ in range(N_ROWS)],
        "account": [" ".join(a[k:k + 4] for k in range(0, len(a), 4)) if i % 2 else a
                    for i, a in enumerate(accounts)],
        "last_seen_from": [_ip(rng, i) for i in range(N_ROWS)],
        "born": born.strftime("%Y-%m-%d"),
    })  # fmt: skip
    return pd.concat([contact, frame], axis=1)


def raw_forms(table: pd.DataFrame) -> set[bytes]:
    """Every personal value as bytes: as written, in lower case, and the forms a leak would
    take (a phone's or IBAN's digits without spaces; each name on its own)."""
    values: set[str] = set()
    for column in PII:
        for value in table[column]:
            values |= {value, value.lower()}
            compact = re.sub(r"[\s()+-]", "", value)
            if column in ("phone", "account"):
                values |= {compact, compact.lower(), compact.lstrip("0")}
    for name in FIRST + LAST:
        values |= {name, name.lower()}
    return {v.encode("utf-8") for v in values if len(v) >= 6}


def leaks(blob: bytes, forms: set[bytes]) -> list[bytes]:
    return sorted(v for v in forms if v in blob)


def every_file(root: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _stand_in_wheel(folder: Path) -> Path:
    """A wheel with the running shipml's metadata: the bundle's model files are what is under
    test, and building a real wheel takes longer than the rest of this test."""
    import zipfile
    from importlib import metadata

    import shipml

    meta = metadata.distribution("shipml").read_text("METADATA") or ""
    meta = re.sub(r"(?m)^Version: .*$", f"Version: {shipml.__version__}", meta)
    path = folder / f"shipml-{shipml.__version__}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(f"shipml-{shipml.__version__}.dist-info/METADATA", meta)
    return path


@pytest.fixture()
def people(tmp_path) -> tuple[Path, pd.DataFrame]:
    table = people_table()
    path = tmp_path / "customers.csv"
    table.to_csv(path, index=False)
    return path, table


@pytest.mark.slow
def test_no_personal_value_in_home_reports_bundle_or_server_log(
    people, tmp_path, capsys, monkeypatch
):
    path, table = people
    home = Path(os.environ["SHIPML_HOME"])
    forms = raw_forms(table)
    assert leaks(path.read_bytes(), forms)  # the search finds what is there
    # train: every PII column found, left out, and the reason said
    code, out, err = run_cli(["train", path, "--target", "credit_risk", "--name", "people",
                              "--time-budget", "10", "--trials", "2"], capsys)  # fmt: skip
    assert code == 0, err
    said = {ln.strip().partition(":")[0]: ln for ln in out.splitlines()}
    for column, reason in PII.items():
        line = said.get(column, "")
        assert f"personal data ({reason}): left out; --keep-pii {column}" in line, out
    import shipml

    model = shipml.load("people")
    assert {c.name for c in model.schema.features}.isdisjoint(PII)
    assert all(model.schema.column(c).pii and model.schema.column(c).kind == "ignored" for c in PII)
    from shipml.cli.render import console

    monkeypatch.setattr(console, "width", 250)  # the schema table's notes on one line each
    code, shown, _ = run_cli(["models", "show", "people"], capsys)
    assert code == 0 and "personal data (phone numbers): left out; --keep-pii phone" in shown
    # used anyway, hashed: a second model keeps the first names as keyed hashes
    code, said, err = run_cli(["train", path, "--target", "credit_risk", "--name", "people-kept",
                               "--keep-pii", "contact", "--time-budget", "10", "--trials", "2",
                               "--no-report"], capsys)  # fmt: skip
    assert code == 0, err
    assert "contact: personal data (first names): used as a feature of keyed hashes" in said
    _check_kept_column(shipml.load("people-kept"), table)  # as loaded from its files
    code, _, err = run_cli(["evaluate", "people", "--data", path, "-o", home / "eval.html"],
                           capsys)  # fmt: skip
    assert code == 0, err
    code, _, err = run_cli(["bundle", "people", "-o", home / "dist", "--wheel",
                            _stand_in_wheel(tmp_path)], capsys)  # fmt: skip
    assert code == 0, err
    log = _serve_and_predict(home, table, capsys)
    files = every_file(home)
    names = {p.name for p in files}
    assert {"registry.db", "encoder.json", "schema.json", "drift_reference.json",
            "report.html", "eval.html", "Dockerfile"} <= names  # fmt: skip
    assert any(p.name == "encoder.json" and "dist" in p.parts for p in files)  # the bundle copy
    found = {str(p.relative_to(home)): leaks(blob, forms) for p, blob in files.items()}
    assert {p: v for p, v in found.items() if v} == {}
    assert leaks(log, forms) == [] and leaks((out + shown + said).encode(), forms) == []


def _check_kept_column(kept, table: pd.DataFrame) -> None:
    """The kept column is a feature of keyed hashes, computed the same way at predict time."""
    col = kept.schema.column("contact")
    assert col.used and col.pii and col.kind == "categorical" and col.hash_key
    spec = next(s for s in kept.encoder.to_dict()["columns"] if s["name"] == "contact")
    assert spec["categories"] and all(c.startswith("h:") for c in spec["categories"])
    rows = table.head(50)
    hashed = kept.schema.coerce(rows)["contact"]
    assert set(hashed) <= set(spec["categories"])  # each name is in 300 rows more than once
    assert hashed.nunique() == rows["contact"].nunique()  # one code per name
    _, X = kept.encode(rows)
    j = kept.encoder.names.index("contact")
    assert not np.isnan(X[:, j]).any() and len(set(X[:, j])) > 5


def _serve_and_predict(home: Path, table: pd.DataFrame, capsys) -> bytes:
    """A real server on SHIPML_HOME's registry, sent personal data; returns its stderr log."""
    code, out, _ = run_cli(["keys", "create", "--name", "crm", "--scope", "predict"], capsys)
    assert code == 0
    headers = {"Authorization": f"Bearer {out.strip().splitlines()[-1]}"}
    proc, base = start_server(home, "people", "people-kept")
    try:
        rows = table.head(20)
        records = json.loads(rows.to_json(orient="records"))
        url = f"{base}/v1/models/people"
        full = httpx.post(f"{url}/predict", json={"records": records}, headers=headers, timeout=60)
        assert full.status_code == 200, full.text
        # the personal columns are not needed, and change nothing
        bare = [{k: v for k, v in r.items() if k not in PII} for r in records]
        without = httpx.post(f"{url}/predict", json={"records": bare}, headers=headers, timeout=60)
        assert without.status_code == 200, without.text
        labels = [p["label"] for p in full.json()["predictions"]]
        assert labels == [p["label"] for p in without.json()["predictions"]]
        csv = httpx.post(f"{url}/predict/csv", content=rows.to_csv(index=False).encode(),
                         headers={**headers, "Content-Type": "text/csv"}, timeout=60)  # fmt: skip
        assert csv.status_code == 200, csv.text
        explain = httpx.post(f"{url}/explain", json={"records": records[:5]}, headers=headers,
                             timeout=60)  # fmt: skip
        assert explain.status_code == 200, explain.text
        kept = httpx.post(f"{base}/v1/models/people-kept/predict", json={"records": records},
                          headers=headers, timeout=60)  # fmt: skip
        assert kept.status_code == 200, kept.text
    finally:
        proc.send_signal(signal.SIGTERM)  # a clean stop writes the queued prediction log
        _, log = proc.communicate(timeout=60)
    assert log.count(b'"model":"people"') >= 4  # the access log was captured
    return log
