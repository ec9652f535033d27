"""Hardening probes (issue 13): attack a live `shipml serve` and print what happened.

The script trains two versions of a German-credit model in a temporary SHIPML_HOME, creates keys
of each scope, starts `shipml serve credit@production` (a real uvicorn subprocess, 127.0.0.1 only,
one worker, a fresh server for every probe) and runs, each bounded in time:

  1. gzip bombs (1 MB inflating to 1 GiB) on /v2/.../infer and /v1/.../predict/csv: server RSS
  2. 200 wrong keys vs 200 good ones (server CPU, 429s); a key revoked by the CLI meanwhile
  3. /explain with 1,000 and 10,000 rows: time, CPU after the client gives up, SIGTERM to exit
  4. odd values (Infinity, NaN, 1e309, a lone surrogate, bool, list) on every route + keep-alive
  5. promote a tampered version while the server runs (alias forced in SQLite if promote refuses)
  6. 32 MB of headers, a 1 MB feedback label, CSV injection, four error messages

The code under test is whatever `shipml` `sys.executable` imports, so PYTHONPATH picks the tree::

    PYTHONPATH=/path/to/tree/src .venv/bin/python benchmarks/hardening.py [--only 1,3] \\
        [--json out.json]

Server numbers are read from /proc (VmRSS of the server's process tree, sampled every 50 ms;
utime + stime). The machine may be shared: the load average is printed with the table.
"""

from __future__ import annotations

import os

os.environ["OMP_WAIT_POLICY"] = "PASSIVE"  # before anything starts a thread pool

import argparse
import contextlib
import csv
import datetime as dt
import http.client
import importlib.util
import io
import json
import re
import secrets
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import httpx

HOST = "127.0.0.1"  # the only address this script ever talks to
NAME, TARGET = "credit", "credit_risk"
DATA = Path(__file__).resolve().parents[1] / "examples" / "german_credit.csv"
TIMEOUT = 20.0  # client timeout of every request (seconds)
KEY_RE = re.compile(r"shipml_[0-9a-f]{12}_[A-Za-z0-9_-]{43}")
MB = 1024 * 1024


@dataclass
class Row:
    """One line of the table."""

    probe: str
    status: str = "-"
    seconds: float | None = None
    server: str = "-"  # RSS before->peak->after, or CPU seconds
    note: str = ""
    data: dict = field(default_factory=dict)  # the raw numbers, for --json


@dataclass
class Ctx:
    home: Path
    data: Path
    keys: dict[str, str] = field(default_factory=dict)
    records: list[dict] = field(default_factory=list)
    kinds: dict[str, str] = field(default_factory=dict)  # feature -> kind, from the server


# --------------------------------------------------------------------------------------------
# Processes: the CLI and the server


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "SHIPML_REGISTRY_URI"}
    env.update(SHIPML_HOME=str(home), OMP_WAIT_POLICY="PASSIVE")
    return env


def cli(ctx: Ctx, *args: str, check: bool = True, timeout: float = 300):
    """`python -m shipml ARGS` against the temporary registry."""
    proc = subprocess.run([sys.executable, "-m", "shipml", *args], env=_env(ctx.home),
                          capture_output=True, text=True, timeout=timeout)  # fmt: skip
    if check and proc.returncode != 0:
        raise RuntimeError(f"shipml {' '.join(args)}: exit {proc.returncode}\n{proc.stderr}")
    return proc


def create_key(ctx: Ctx, name: str, scope: str) -> str:
    out = cli(ctx, "keys", "create", "--name", name, "--scope", scope).stdout
    return KEY_RE.findall(out)[-1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


class Server:
    """`shipml serve credit@production` in its own process group, on a free local port."""

    def __init__(self, ctx: Ctx):
        self.ctx, self.port = ctx, _free_port()
        self.base = f"http://{HOST}:{self.port}"
        self.log = ctx.home / f"serve-{self.port}.log"
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "shipml", "serve", f"{NAME}@production", "--host", HOST,
                 "--port", str(self.port), "--workers", "1"],
                env=_env(ctx.home), stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip

    def wait_ready(self, limit: float = 120) -> None:
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline and self.proc.poll() is None:
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{self.base}/v2/health/ready", timeout=2).status_code == 200:
                    return
            time.sleep(0.3)
        tail = self.log.read_text(errors="replace")[-2000:]
        raise RuntimeError(f"server not ready after {limit:.0f} s:\n{tail}")

    def stop(self, grace: float = 10) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(grace)
        with contextlib.suppress(ProcessLookupError):  # stragglers of the group too
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def pids(self) -> list[int]:
        out, todo = [], [self.proc.pid]
        while todo:
            pid = todo.pop()
            out.append(pid)
            with contextlib.suppress(OSError):
                for task in os.listdir(f"/proc/{pid}/task"):
                    todo += map(int, Path(f"/proc/{pid}/task/{task}/children").read_text().split())
        return out

    def rss_mb(self, field_name: str = "VmRSS") -> float:
        total = 0
        for pid in self.pids():
            with contextlib.suppress(OSError):
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith(field_name + ":"):
                        total += int(line.split()[1])
        return total / 1024

    def cpu_s(self) -> float:
        ticks = 0
        for pid in self.pids():
            with contextlib.suppress(OSError):
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                ticks += int(fields[11]) + int(fields[12])  # utime, stime
        return ticks / os.sysconf("SC_CLK_TCK")

    def client(self, timeout: float = TIMEOUT) -> httpx.Client:
        return httpx.Client(base_url=self.base, timeout=timeout, trust_env=False)


@contextlib.contextmanager
def serving(ctx: Ctx):
    """A fresh server for one probe, stopped whatever happens."""
    server = Server(ctx)
    try:
        server.wait_ready()
        if not ctx.kinds:
            ctx.kinds = _kinds(server, ctx.keys["admin"])
        yield server
    finally:
        server.stop()


def _kinds(server: Server, key: str) -> dict[str, str]:
    with server.client() as c:
        info = c.get(f"/v1/models/{NAME}", headers=_auth(key)).json()
    return {i["name"]: i["kind"] for i in info["inputs"]}


class Peak(threading.Thread):
    """Samples the server's RSS every 50 ms while in the `with` block: `.before`, `.peak`."""

    def __init__(self, server: Server):
        super().__init__(daemon=True)
        self.server, self.done = server, threading.Event()
        self.before = self.peak = server.rss_mb()

    def run(self) -> None:
        while not self.done.wait(0.05):
            self.peak = max(self.peak, self.server.rss_mb())

    def __enter__(self) -> Peak:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.done.set()
        self.join()
        self.peak = max(self.peak, self.server.rss_mb())

    def text(self, after: float) -> str:
        return f"RSS {self.before:.0f}->{self.peak:.0f}->{after:.0f} MB"


def settle(server: Server, limit: float = 20) -> float:
    """Seconds until the server is idle (< 0.05 CPU s per 0.5 s), at most `limit`."""
    started = time.monotonic()
    while time.monotonic() - started < limit:
        cpu = server.cpu_s()
        time.sleep(0.5)
        if server.cpu_s() - cpu < 0.05:
            break
    return time.monotonic() - started


# --------------------------------------------------------------------------------------------
# Requests


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def timed(send) -> tuple[str, float, httpx.Response | None]:
    """(status or what went wrong, seconds, response) of `send()`."""
    started = time.perf_counter()
    try:
        response = send()
        return str(response.status_code), time.perf_counter() - started, response
    except httpx.TimeoutException:
        return f"timeout {TIMEOUT:.0f} s", time.perf_counter() - started, None
    except httpx.TransportError as exc:
        return f"closed ({type(exc).__name__})", time.perf_counter() - started, None


def excerpt(response: httpx.Response | None, n: int = 100) -> str:
    if response is None:
        return ""
    return response.content[:n].decode("utf-8", "replace").replace("\n", " ")


def load_records(path: Path) -> list[dict]:
    def value(text: str):
        for kind in (int, float):
            with contextlib.suppress(ValueError):
                return kind(text)
        return text

    with open(path, newline="") as f:
        return [{k: value(v) for k, v in r.items() if k != TARGET} for r in csv.DictReader(f)]


def rows_of(ctx: Ctx, n: int) -> list[dict]:
    return [ctx.records[i % len(ctx.records)] for i in range(n)]


def csv_bytes(records: list[dict], header: bool = True) -> bytes:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(records[0]), lineterminator="\n")
    if header:
        writer.writeheader()
    writer.writerows(records)
    return buffer.getvalue().encode("utf-8")


def v2_body(ctx: Ctx, record: dict) -> dict:
    inputs = []
    for name, kind in ctx.kinds.items():
        dtype = "FP64" if kind == "numeric" else "BYTES"
        inputs.append({"name": name, "shape": [1], "datatype": dtype, "data": [record[name]]})
    return {"inputs": inputs}


def first_prediction_id(server: Server, ctx: Ctx) -> str:
    with server.client() as c:
        r = c.post(f"/v1/models/{NAME}/predict", json={"records": rows_of(ctx, 1)},
                   headers=_auth(ctx.keys["predict"]))  # fmt: skip
    return r.json()["predictions"][0]["id"]


# --------------------------------------------------------------------------------------------
# 1. gzip bombs


def gzip_bomb(inflated: int = 1 << 30) -> bytes:
    """A gzip stream of a JSON-ish body of `inflated` bytes, compressed chunk by chunk."""
    head = b'{"inputs":[{"name":"checking_status","shape":[1],"datatype":"BYTES","data":["'
    packer, chunk = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS), b"a" * MB
    parts = [packer.compress(head)]
    parts += [packer.compress(chunk) for _ in range((inflated - len(head) - 5) // MB)]
    parts += [packer.compress(b'"]}]}'), packer.flush()]
    return b"".join(parts)


def probe_bombs(ctx: Ctx) -> list[Row]:
    bomb = gzip_bomb()
    routes = [
        ("v2 infer", f"/v2/models/{NAME}/infer",
         {"Content-Type": "application/json", "Content-Encoding": "gzip"}),
        ("predict/csv", f"/v1/models/{NAME}/predict/csv", {"Content-Type": "text/csv"}),
    ]  # fmt: skip
    out = []
    for label, path, headers in routes:
        with serving(ctx) as server:
            out.append(_bomb_once(ctx, server, label, path, headers, bomb))
    return out


def _bomb_once(ctx, server, label, path, headers, bomb) -> Row:
    headers = {**headers, **_auth(ctx.keys["predict"])}
    with Peak(server) as peak:
        with server.client() as c:
            status, secs, r = timed(lambda: c.post(path, content=bomb, headers=headers))
        busy = settle(server)  # the server may go on inflating after the client gave up
    after = server.rss_mb()
    data = {"before_mb": peak.before, "peak_mb": peak.peak, "after_mb": after, "busy_s": busy,
            "hwm_mb": server.rss_mb("VmHWM"), "compressed_bytes": len(bomb)}  # fmt: skip
    still = f"server busy {busy:.0f} s more; " if busy > 1 else ""
    note = f"{len(bomb) / MB:.2f} MB -> 1 GiB; {still}{excerpt(r, 80)}"
    return Row(f"1 gzip bomb {label}", status, secs, peak.text(after), note, data)


# --------------------------------------------------------------------------------------------
# 2. failed logins, revocation


def probe_logins(ctx: Ctx) -> list[Row]:
    good = [ctx.keys["predict"]] * 200
    bad = [f"shipml_{secrets.token_hex(6)}_{secrets.token_urlsafe(32)}" for _ in range(200)]
    with serving(ctx) as server:  # good first: a per-address limit after 200 failures would
        rows = [_logins(server, good, "2 good key x200")]  # otherwise also refuse the good ones
        rows.append(_revocation(ctx, server))
        rows.append(_logins(server, bad, "2 wrong keys x200"))
    return rows


def _logins(server: Server, keys: list[str], label: str) -> Row:
    counts: Counter[str] = Counter()
    cpu0, started = server.cpu_s(), time.perf_counter()
    with server.client() as c:
        for key in keys:
            counts[timed(lambda k=key: c.get(f"/v1/models/{NAME}", headers=_auth(k)))[0]] += 1
    secs, cpu = time.perf_counter() - started, server.cpu_s() - cpu0
    status = " ".join(f"{s}x{n}" for s, n in counts.most_common())
    data = {"cpu_s": cpu, "counts": dict(counts)}
    return Row(label, status, secs, f"CPU {cpu:.2f} s", f"{counts['429']} x 429", data)


def _revocation(ctx: Ctx, server: Server) -> Row:
    key = create_key(ctx, "probe-revoke", "predict")
    with server.client() as c:
        warm = timed(lambda: c.get(f"/v1/models/{NAME}", headers=_auth(key)))[0]
        cli(ctx, "keys", "revoke", "probe-revoke")
        revoked, accepted, refused = time.monotonic(), 0, None
        while time.monotonic() - revoked < 5:
            status = timed(lambda: c.get(f"/v1/models/{NAME}", headers=_auth(key)))[0]
            if status == "200":
                accepted += 1
            elif refused is None:
                refused = time.monotonic() - revoked
            time.sleep(0.05)
    note = (f"first refusal {refused:.2f} s after `keys revoke` returned" if refused is not None
            else "never refused in 5 s")  # fmt: skip
    data = {"accepted": accepted, "first_refusal_s": refused, "warm_status": warm}
    return Row("2 revoked key, next 5 s", f"{accepted} accepted", refused, "-", note, data)


# --------------------------------------------------------------------------------------------
# 3. /explain


def probe_explain(ctx: Ctx) -> list[Row]:
    out = []
    for n in (1_000, 10_000):
        with serving(ctx) as server:
            out.append(_explain_once(ctx, server, n))
    with serving(ctx) as server:
        out.append(_sigterm_during_explain(ctx, server))
    return out


def _explain(ctx: Ctx, server: Server, n: int, timeout: float = TIMEOUT):
    body = json.dumps({"records": rows_of(ctx, n)}, separators=(",", ":")).encode()
    headers = {"Content-Type": "application/json", **_auth(ctx.keys["predict"])}
    with server.client(timeout) as c:  # leaving the block closes the connection: client gone
        return timed(lambda: c.post(f"/v1/models/{NAME}/explain", content=body, headers=headers))


def _explain_once(ctx: Ctx, server: Server, n: int) -> Row:
    status, secs, r = _explain(ctx, server, n)
    cpu0 = server.cpu_s()
    time.sleep(5)
    burn = server.cpu_s() - cpu0
    note = f"{excerpt(r, 60)}" if r is not None and r.status_code != 200 else ""
    data = {"cpu_after_s": burn, "client_gave_up": r is None}
    after = "after the client left" if r is None else "after the answer"
    return Row(f"3 explain {n:,} rows", status, secs, f"CPU {burn:.1f} s in 5 s {after}", note,
               data)  # fmt: skip


def _sigterm_during_explain(ctx: Ctx, server: Server) -> Row:
    got: list = []
    worker = threading.Thread(target=lambda: got.append(_explain(ctx, server, 1_000, 40)))
    worker.start()
    time.sleep(3)  # the body is sent and the work under way
    in_flight, started = not got, time.monotonic()
    os.kill(server.proc.pid, signal.SIGTERM)
    try:
        server.proc.wait(20)
        exited, status = time.monotonic() - started, "exited"
    except subprocess.TimeoutExpired:
        os.killpg(server.proc.pid, signal.SIGKILL)
        exited, status = None, "SIGKILL after 20 s"
    worker.join(45)
    client = got[0][0] if got else "?"
    note = (f"rc {server.proc.wait()}; explain in flight at SIGTERM: {in_flight}; "
            f"its client got: {client}")  # fmt: skip
    data = {"client": client, "in_flight": in_flight}
    return Row("3 SIGTERM during 1,000-row explain", status, exited, "-", note, data)


# --------------------------------------------------------------------------------------------
# 4. odd values

# (label, JSON token, CSV cell bytes or None, goes into a numeric column?)
ODD = [
    ("Infinity", b"Infinity", b"Infinity", True),
    ("-Infinity", b"-Infinity", b"-Infinity", True),
    ("1e309", b"1e309", b"1e309", True),
    ("NaN", b"NaN", b"NaN", True),
    ("lone surrogate", b'"\\ud800"', b"\xed\xa0\x80", False),
    ("bool for numeric", b"true", b"true", True),
    ("list for categorical", b'["A11"]', None, False),
]
_MARK = "__odd_value__"


def probe_odd_values(ctx: Ctx) -> list[Row]:
    with serving(ctx) as server:
        return [_odd_value(ctx, server, *odd) for odd in ODD]


def _odd_bodies(ctx: Ctx, token: bytes, cell: bytes | None, numeric: bool) -> dict:
    """route -> (path, content type, body) with the odd value in one column of one row."""
    column = next(n for n, k in ctx.kinds.items() if (k == "numeric") == numeric)
    record = {**ctx.records[0], column: _MARK}
    mark = json.dumps(_MARK).encode()
    as_json = json.dumps({"records": [record]}).encode().replace(mark, token)
    bodies = {
        "predict": (f"/v1/models/{NAME}/predict", "application/json", as_json),
        "explain": (f"/v1/models/{NAME}/explain", "application/json", as_json),
        "v2": (f"/v2/models/{NAME}/infer", "application/json",
               json.dumps(v2_body(ctx, record)).encode().replace(mark, token)),
    }  # fmt: skip
    if cell is not None:
        table = csv_bytes([record]).replace(_MARK.encode(), cell)
        bodies["csv"] = (f"/v1/models/{NAME}/predict/csv", "text/csv", table)
    return bodies


def _odd_value(ctx: Ctx, server: Server, label, token, cell, numeric) -> Row:
    statuses, notes, data = [], [], {}
    for route, (path, kind, body) in _odd_bodies(ctx, token, cell, numeric).items():
        status, conn, message = _keep_alive(server, ctx.keys["predict"], path, kind, body)
        statuses.append(f"{route} {status}")
        data[route] = {"status": status, "connection": conn, "message": message}
        if conn != "kept":
            notes.append(f"{route}: connection {conn}")
    if cell is None:
        statuses.append("csv n/a")
    return Row(f"4 {label}", " | ".join(statuses), None, "-", "; ".join(notes) or "conn kept",
               data)  # fmt: skip


def _keep_alive(server: Server, key: str, path: str, kind: str, body: bytes):
    """(status, what happened to the connection, first 100 chars) on one http.client connection,
    then a follow-up request on that same connection."""
    conn = http.client.HTTPConnection(HOST, server.port, timeout=TIMEOUT)
    headers = {"Content-Type": kind, **_auth(key)}
    try:
        conn.request("POST", path, body=body, headers=headers)
        response = conn.getresponse()
        status, message = response.status, response.read()[:100].decode("utf-8", "replace")
    except (OSError, http.client.HTTPException) as exc:
        conn.close()
        return f"reset ({type(exc).__name__})", "reset", ""
    try:
        if conn.sock is None:  # the server asked to close it
            return status, "closed by the server", message
        conn.request("GET", f"/v1/models/{NAME}", headers=_auth(key))
        follow = conn.getresponse()
        follow.read()
        return status, "kept" if follow.status == 200 else f"next got {follow.status}", message
    except (OSError, http.client.HTTPException) as exc:
        return status, f"broken ({type(exc).__name__})", message
    finally:
        conn.close()


# --------------------------------------------------------------------------------------------
# 5. promoting a tampered version


def _db(ctx: Ctx) -> sqlite3.Connection:
    return sqlite3.connect(ctx.home / "registry.db", timeout=10)


def _alias_version(ctx: Ctx) -> int | None:
    with contextlib.closing(_db(ctx)) as db:
        row = db.execute(
            "SELECT a.version FROM aliases a JOIN models m ON m.id = a.model_id "
            "WHERE m.name = ? AND a.alias = 'production'", (NAME,)
        ).fetchone()  # fmt: skip
    return row[0] if row else None


def _force_alias(ctx: Ctx, version: int) -> None:
    """What a racing process could do: move the alias without any check."""
    now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")
    with contextlib.closing(_db(ctx)) as db, db:
        db.execute("UPDATE aliases SET version = ?, updated_at = ? WHERE alias = 'production' "
                   "AND model_id = (SELECT id FROM models WHERE name = ?)",
                   (version, now, NAME))  # fmt: skip


def _model_file(ctx: Ctx, version: int) -> Path:
    """A file the version's model reads when it loads: its first LightGBM member's model file,
    else model.json (a version may hold only linear members)."""
    with contextlib.closing(_db(ctx)) as db:
        (folder,) = db.execute("SELECT v.artifact_dir FROM versions v JOIN models m ON "
                               "m.id = v.model_id WHERE m.name = ? AND v.version = ?",
                               (NAME, version)).fetchone()  # fmt: skip
    folder = ctx.home / "artifacts" / folder
    members = json.loads((folder / "model.json").read_text())["members"]
    files = [f for m in members for f in m.get("files", ())]
    return folder / (files[0] if files else "model.json")


def probe_promote(ctx: Ctx) -> list[Row]:
    with serving(ctx) as server:
        target = _model_file(ctx, 2)
        size = target.stat().st_size
        try:
            with open(target, "ab") as f:
                f.write(b"\n# tampered by benchmarks/hardening.py\n")
            return _promote_broken(ctx, server, target.name)
        finally:
            os.truncate(target, size)
            _force_alias(ctx, 1)


def _promote_broken(ctx: Ctx, server: Server, tampered: str) -> list[Row]:
    started = time.perf_counter()
    promote = cli(ctx, "models", "promote", NAME, "2", "--alias", "production", check=False)
    secs = time.perf_counter() - started
    said = (promote.stderr.strip() or promote.stdout.strip()).splitlines()
    forced = _alias_version(ctx) != 2
    if forced:
        _force_alias(ctx, 2)
    time.sleep(2)  # the server re-resolves aliases at most once a second
    first = Row(f"5 promote v2 ({tampered} tampered)", f"exit {promote.returncode}", secs, "-",
                (said[-1] if said else "")[:100], {"output": said})  # fmt: skip
    return [first, _after_broken_alias(ctx, server, forced)]


def _after_broken_alias(ctx: Ctx, server: Server, forced: bool) -> Row:
    key = _auth(ctx.keys["predict"])
    with server.client() as c:
        predict = timed(lambda: c.post(f"/v1/models/{NAME}/predict", headers=key,
                                       json={"records": rows_of(ctx, 1)}))  # fmt: skip
        ready = timed(lambda: c.get("/v2/health/ready"))
        v2 = timed(lambda: c.post(f"/v2/models/{NAME}/infer", headers=key,
                                  json=v2_body(ctx, ctx.records[0])))  # fmt: skip
    bodies = [r.text for _, _, r in (predict, ready, v2) if r is not None]
    homes = {str(ctx.home), str(ctx.home.resolve())}
    leak = any(h in b for h in homes for b in bodies)
    version = predict[2].json().get("version") if predict[0] == "200" else None
    how = "alias forced in SQLite" if forced else "alias moved by promote"
    note = (f"{how}; served version {version}; registry path in a body: "
            f"{'YES' if leak else 'no'}; {excerpt(predict[2], 60)}")  # fmt: skip
    status = f"predict {predict[0]} | ready {ready[0]} | v2 {v2[0]}"
    data = {"forced": forced, "leak": leak, "version": version, "bodies": [b[:300] for b in bodies]}
    return Row("5 serving after the alias moved", status, None, "-", note, data)


# --------------------------------------------------------------------------------------------
# 6. smaller items


def probe_smaller(ctx: Ctx) -> list[Row]:
    with serving(ctx) as server:
        rows = [_huge_header(server), _feedback_echo(ctx, server), _csv_injection(ctx, server)]
        return rows + _messages(ctx, server)


def _huge_header(server: Server, megabytes: int = 32) -> Row:
    sent, outcome = 0, ""
    with Peak(server) as peak, socket.create_connection((HOST, server.port), TIMEOUT) as sock:
        started = time.perf_counter()
        try:
            sock.sendall(b"GET /v2/health/live HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Probe: ")
            for _ in range(megabytes):
                sock.sendall(b"a" * MB)
                sent += 1
            sock.sendall(b"\r\n\r\n")
        except OSError as exc:
            outcome = f"closed after {sent} MB sent ({type(exc).__name__}); "
        try:
            line = sock.recv(4096).split(b"\r\n", 1)[0].decode("latin-1")
        except OSError as exc:
            line = f"no answer ({type(exc).__name__})"
        secs = time.perf_counter() - started
    status = line.split()[1] if line.startswith("HTTP/") else (line or "closed")
    data = {"sent_mb": sent, "status_line": line, "peak_mb": peak.peak}
    return Row(f"6 {megabytes} MB header", status, secs, peak.text(server.rss_mb()),
               outcome + line, data)  # fmt: skip


def _feedback_echo(ctx: Ctx, server: Server) -> Row:
    body = {"prediction_id": first_prediction_id(server, ctx), "label": "x" * 1_000_000}
    with server.client() as c:
        status, secs, r = timed(lambda: c.post("/v1/feedback", json=body,
                                               headers=_auth(ctx.keys["feedback"])))  # fmt: skip
    size = len(r.content) if r is not None else 0
    return Row("6 1 MB feedback label", status, secs, "-", f"response body {size:,} bytes",
               {"response_bytes": size})  # fmt: skip


def _csv_injection(ctx: Ctx, server: Server) -> Row:
    cell = '=HYPERLINK("http://127.0.0.1/x","click")'
    column = next(n for n, k in ctx.kinds.items() if k != "numeric")
    table = csv_bytes([{**ctx.records[0], column: cell}])
    headers = {"Content-Type": "text/csv", **_auth(ctx.keys["predict"])}
    with server.client() as c:
        status, secs, r = timed(lambda: c.post(f"/v1/models/{NAME}/predict/csv", content=table,
                                               headers=headers))  # fmt: skip
    if r is None or r.status_code != 200:
        return Row("6 CSV injection cell", status, secs, "-", excerpt(r))
    cells = [v for row in csv.reader(io.StringIO(r.text)) for v in row if "HYPERLINK" in v]
    raw = any(v.startswith("=") for v in cells)
    note = f"echoed raw: {'YES' if raw else 'no'}; returned as {cells[0][:40]!r}" if cells else (
        "cell not in the answer")  # fmt: skip
    return Row("6 CSV injection cell", status, secs, "-", note, {"cells": cells})


def _messages(ctx: Ctx, server: Server) -> list[Row]:
    predict, key = f"/v1/models/{NAME}/predict", ctx.keys["predict"]
    json_type = {"Content-Type": "application/json"}
    no_header = b"".join(ctx.data.read_bytes().splitlines(keepends=True)[1:6])
    pid = first_prediction_id(server, ctx)
    cases = [
        ("invalid JSON body", predict, b'{"records": [', json_type, key),
        ("CSV without header row", predict + "/csv", no_header, {"Content-Type": "text/csv"}, key),
        ("null feedback label", "/v1/feedback",
         json.dumps({"prediction_id": pid, "label": None}).encode(), json_type,
         ctx.keys["feedback"]),
        ("key without 'Bearer '", predict, json.dumps({"records": rows_of(ctx, 1)}).encode(),
         {**json_type, "Authorization": key}, None),
    ]  # fmt: skip
    rows = []
    with server.client() as c:
        for label, path, body, headers, auth in cases:
            headers = {**headers, **(_auth(auth) if auth else {})}
            status, secs, r = timed(
                lambda p=path, b=body, h=headers: c.post(p, content=b, headers=h)
            )
            rows.append(Row(f"6 msg: {label}", status, secs, "-", excerpt(r)))
    return rows


# --------------------------------------------------------------------------------------------
# Setup, table, main

PROBES = {1: probe_bombs, 2: probe_logins, 3: probe_explain, 4: probe_odd_values,
          5: probe_promote, 6: probe_smaller}  # fmt: skip


def setup(ctx: Ctx) -> None:
    """Two versions of the credit model, production -> v1, and a key of each scope (kept in
    probe-keys.json of the registry folder, so that `--home` can reuse them)."""
    ctx.records = load_records(ctx.data)
    saved = ctx.home / "probe-keys.json"
    if saved.exists():
        ctx.keys = json.loads(saved.read_text())
        return
    for seed in ("0", "1"):
        say(f"training v{int(seed) + 1} (up to 30 s)")
        cli(ctx, "train", str(ctx.data), "--target", TARGET, "--name", NAME, "--trials", "3",
            "--time-budget", "30", "--no-report", "--seed", seed)  # fmt: skip
    cli(ctx, "models", "promote", NAME, "1", "--alias", "production")
    ctx.keys = {s: create_key(ctx, f"probe-{s}", s) for s in ("predict", "feedback", "admin")}
    saved.write_text(json.dumps(ctx.keys))


def say(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def tree() -> dict:
    origin = Path(importlib.util.find_spec("shipml").origin).resolve().parents[1]
    git = subprocess.run(["git", "-C", str(origin), "rev-parse", "HEAD"], capture_output=True,
                         text=True)  # fmt: skip
    return {"src": str(origin), "commit": git.stdout.strip() or "?"}


def table(rows: list[Row]) -> str:
    cells = [("probe", "status", "time", "server", "note")]
    for r in rows:
        secs = "-" if r.seconds is None else f"{r.seconds:.2f} s"
        cells.append((r.probe, r.status, secs, r.server, r.note))
    widths = [max(len(c[i]) for c in cells) for i in range(4)]
    lines = [" | ".join(c[i].ljust(widths[i]) for i in range(4)) + " | " + c[4] for c in cells]
    lines.insert(1, "-+-".join("-" * w for w in widths) + "-+-" + "-" * 20)
    return "\n".join(lines)


def run(ctx: Ctx, only: list[int]) -> list[Row]:
    rows: list[Row] = []
    for number in only:
        say(f"probe {number}: {PROBES[number].__name__}")
        try:
            rows += PROBES[number](ctx)
        except Exception as exc:  # one broken probe must not hide the others' results
            rows.append(Row(f"{number} FAILED", "error", None, "-", f"{type(exc).__name__}: "
                            f"{str(exc)[:300]}"))  # fmt: skip
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", default="1,2,3,4,5,6", help="probes to run, e.g. 1,3")
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--data", type=Path, default=DATA, help="the German-credit CSV")
    parser.add_argument("--home", type=Path, help="registry folder to use and keep (default: a "
                        "temporary one); trained once, reused by later runs")  # fmt: skip
    args = parser.parse_args()
    only = sorted({int(p) for p in args.only.split(",") if p.strip()})
    info = {**tree(), "started": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "load_before": os.getloadavg(), "cpus": os.cpu_count()}  # fmt: skip
    with contextlib.ExitStack() as stack:
        home = args.home or Path(stack.enter_context(tempfile.TemporaryDirectory(
            prefix="shipml-hardening-")))  # fmt: skip
        home.mkdir(parents=True, exist_ok=True)
        ctx = Ctx(home.resolve(), args.data.resolve())
        setup(ctx)
        rows = run(ctx, only)
    info["load_after"] = os.getloadavg()
    print(f"shipml from {info['src']} (commit {info['commit'][:12]}), {info['started']}, "
          f"{info['cpus']} CPUs, load {info['load_before'][0]:.1f} -> {info['load_after'][0]:.1f}"
          " (shared machine)\n")  # fmt: skip
    print(table(rows))
    if args.json:
        args.json.write_text(json.dumps({**info, "rows": [asdict(r) for r in rows]}, indent=1))


if __name__ == "__main__":
    main()
