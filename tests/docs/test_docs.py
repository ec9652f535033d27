"""The README's code blocks and the docstring examples, run by `make test` (as FastAPI and Typer
run their documentation).

Every fenced block of README.md (and docs/*.md) is one test, named after its file and line:
```bash / ```sh / ```shell blocks run in bash (`-e -o pipefail`: a failing command fails the
block), ```console blocks run their `$ ` lines and check the output they show, ```python blocks
run in one namespace per document, in order, as a user would paste them. Each document gets a
workspace that plays the repository after `make demo` (the data files the README names, the
demo's `.shipml-demo/` as SHIPML_HOME, `.venv` pointing at the running environment, `shipml` on
PATH) and a HOME of its own; nothing touches `~/.shipml`.

What the test changes in a block, all listed below in SPEED and SETUP and each checked to still
match the README: time budgets are capped (the README's commands, only shorter), the server's
port is a free one, and the few placeholders of the README (`...` in a JSON record, a feedback
key, a prediction id) are filled in. A block that cannot run in a test says so in the README with
`<!-- not-run: reason -->` on the line before it; NOT_RUN lists the only ones allowed.
"""

from __future__ import annotations

import doctest
import importlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pytest

from conftest import BANK, BANKING, BANKING_TEST, DATA, ROOT, copy_versions

CLINC = DATA / "clinc150_slice_train.csv"

DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SRC = ROOT / "src" / "shipml"
SHELL = {"bash", "sh", "shell", "console"}
PYTHON = {"python", "py"}
# shown, not run: data, and an unlabelled block (a diagram, a folder tree). A command or code
# block says its language, or it is not run.
SHOWN = {"", "text", "json", "csv", "toml", "yaml", "html", "dockerfile"}
NOT_RUN = {  # (document, first line of the block): why it is not run by the test
    ("README.md", "make demo"): "CI runs `make demo` and `make test` itself",
    ("README.md", "make lint"): "CI runs `make lint`; `make format` rewrites files; `make bench` "
    "takes an hour",
}
BUDGET = 8  # seconds: every time budget of a document is capped to this (defaults included)
# Each (pattern, replacement) must match somewhere in its document (test_speed_rules_match).
SPEED = {
    "README.md": [
        (r"--time-budget \d+", f"--time-budget {BUDGET}"),
        (r"time_budget=\d+", f"time_budget={BUDGET}"),
    ]
}
_FENCE = re.compile(r"^(?P<indent> *)(?P<fence>`{3,})(?P<lang>[\w+-]*)\s*$")
_NOT_RUN = re.compile(r"<!--\s*not-run:\s*(?P<reason>.+?)\s*-->")


@dataclass
class Block:
    doc: str
    line: int  # 1-based line of the opening fence
    lang: str
    code: str
    not_run: str | None

    @property
    def id(self) -> str:
        return f"{self.doc}:{self.line}"

    @property
    def first_line(self) -> str:
        return next((ln.strip() for ln in self.code.splitlines() if ln.strip()), "")


def read_blocks(path: Path) -> list[Block]:
    """Every fenced code block of a Markdown file, with its line and a `not-run` marker (an HTML
    comment on the last non-blank line before the fence)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks, i = [], 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        end = next(
            (j for j in range(i + 1, len(lines)) if lines[j].strip() == m["fence"]), len(lines)
        )
        body = [ln[len(m["indent"]) :] for ln in lines[i + 1 : end]]
        before = next((ln for ln in reversed(lines[:i]) if ln.strip()), "")
        marker = _NOT_RUN.search(before)
        blocks.append(Block(path.name, i + 1, m["lang"].lower(), "\n".join(body) + "\n",
                            marker["reason"] if marker else None))  # fmt: skip
        i = end + 1
    return blocks


BLOCKS = [b for doc in DOCS for b in read_blocks(doc)]


# -- the workspace a document's blocks run in ------------------------------------------------


@dataclass
class Doc:
    """One document's state: workspace, environment, Python namespace, the blocks already run."""

    name: str
    root: Path
    env: dict
    port: int
    namespace: dict = field(default_factory=dict)
    done: set = field(default_factory=set)
    background: list = field(default_factory=list)  # process groups left running by blocks

    @property
    def home(self) -> Path:
        return Path(self.env["SHIPML_HOME"])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_workspace(root: Path) -> None:
    """The files the README names, from the real data in tests/data and examples/."""
    (root / "examples").mkdir(parents=True)
    shutil.copy(ROOT / "examples" / "german_credit.csv", root / "examples")
    shop = root / "tests" / "data" / "shop_log"  # the README's recommender log
    shop.mkdir(parents=True)
    for name in ("events.csv", "items.csv"):
        shutil.copy(DATA / "shop_log" / name, shop)
    faq = root / "tests" / "data" / "faq"  # the README's FAQ and labelled questions
    shutil.copytree(DATA / "faq", faq)
    shutil.copytree(DATA / "images", root / "tests" / "data" / "images")  # the defect photos
    (root / ".venv").symlink_to(sys.prefix, target_is_directory=True)
    demo = root / ".shipml-demo"  # what examples/demo.sh writes
    demo.mkdir()
    credit = pd.read_csv(ROOT / "examples" / "german_credit.csv")
    credit.iloc[:800].to_csv(demo / "train.csv", index=False)
    credit.iloc[800:].to_csv(root / "holdout.csv", index=False)
    applicants = credit.iloc[800:805].drop(columns="credit_risk")
    applicants.to_csv(demo / "new_applicants.csv", index=False)
    applicants.to_csv(root / "new_applicants.csv", index=False)
    # customers.csv / churn: bank customers (the bank marketing slice), `y` named as the README's
    pd.read_csv(BANK, sep=";").rename(columns={"y": "churn"}).to_csv(
        root / "customers.csv", index=False
    )
    tickets = pd.read_csv(BANKING).rename(columns={"category": "intent"})
    tickets.to_csv(root / "tickets.csv", index=False)
    three = sorted(tickets["intent"].unique())[:3]  # few-shot: 8 rows for each of 3 intents
    few = tickets[tickets["intent"].isin(three)].groupby("intent").head(8)
    few.to_csv(root / "few.csv", index=False)
    # chat.csv: the CLINC150 slice, its out-of-scope rows labelled "none" (as the README's)
    chat = pd.read_csv(CLINC).replace({"intent": {"oos": "none"}})
    chat.to_csv(root / "chat.csv", index=False)
    test = pd.read_csv(BANKING_TEST)
    test[["text"]].head(5).to_csv(root / "new_tickets.csv", index=False)
    test[["text"]].head(20).to_csv(root / "texts.csv", index=False)


@pytest.fixture(scope="module")
def docs(tmp_path_factory):
    """name -> Doc, made on first use; background servers are stopped at the end."""
    made: dict[str, Doc] = {}

    def get(name: str) -> Doc:
        if name not in made:
            root = tmp_path_factory.mktemp(name.replace(".", "_"))
            make_workspace(root)
            env = {k: v for k, v in os.environ.items() if not k.startswith("SHIPML_")}
            env.update(
                HOME=str(root / "home"),
                SHIPML_HOME=str(root / ".shipml-demo"),
                SHIPML_TIME_BUDGET=str(BUDGET),
                PATH=str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", ""),
                OMP_WAIT_POLICY="PASSIVE",
                NO_COLOR="1",
                COLUMNS="200",
            )
            (root / "home").mkdir()
            made[name] = Doc(name, root, env, _free_port())
        return made[name]

    yield get
    for doc in made.values():
        for pgid in doc.background:
            _stop(pgid)


def _stop(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGTERM)
    except ProcessLookupError:
        return


# -- per-block setup: what the README assumes before a block ---------------------------------


@dataclass
class Setup:
    """For the block whose text contains `match`: a function run first (it may add to the
    environment or the namespace, and returns more replacements), replacements in the block,
    a check of its output, and whether its background processes stay up for later blocks."""

    match: str
    before: Callable[[Doc], dict] | None = None
    replace: dict = field(default_factory=dict)
    check: Callable[[Doc, str], None] | None = None
    keep_background: bool = False


def _shipml(doc: Doc, *args: str) -> str:
    out = subprocess.run(["shipml", *args], env=doc.env, cwd=doc.root, capture_output=True,
                         text=True, timeout=120)  # fmt: skip
    assert out.returncode == 0, out.stderr
    return out.stdout


def _three_versions(doc: Doc) -> dict:
    """ "Every train registers a new version": as after three trainings of credit (versions 2
    and 3 are copies of version 1's files), production on version 1."""
    copy_versions(doc.home, doc.home, n=2)
    return {}


def _python_data(doc: Doc) -> dict:
    """The frames the Python examples use: `df` (customers.csv), `X`, `y`, `X_new`."""
    df = pd.read_csv(doc.root / "customers.csv").head(50)
    credit = pd.read_csv(doc.root / "examples" / "german_credit.csv")
    doc.namespace.update(df=df, X=credit.drop(columns="credit_risk").iloc[:800],
                         y=credit["credit_risk"].iloc[:800],
                         X_new=credit.drop(columns="credit_risk").iloc[800:805])  # fmt: skip
    return {}


def _record(doc: Doc) -> dict:
    """The README abbreviates the JSON record with `...`: the first new applicant in full."""
    row = pd.read_csv(doc.root / ".shipml-demo" / "new_applicants.csv").iloc[0].to_dict()
    row["checking_status"] = "A11"
    body = json.dumps({"records": [row]})
    return {"""'{"records": [{"checking_status": "A11", ...}]}'""": f"'{body}'"}


def _feedback(doc: Doc) -> dict:
    """A feedback key and the id of a prediction made by the server the previous block left
    running (the README leaves both to the reader)."""
    import httpx

    key = _shipml(doc, "keys", "create", "--name", "docs-client", "--scope", "predict")
    doc.env["FEEDBACK_KEY"] = _shipml(
        doc, "keys", "create", "--name", "docs-feedback", "--scope", "feedback"
    ).splitlines()[-1]
    record = json.loads(_record(doc).popitem()[1].strip("'"))
    url = f"http://127.0.0.1:{doc.port}/v1/models/credit/predict"
    auth = {"Authorization": f"Bearer {key.splitlines()[-1]}"}
    answer = httpx.post(url, json=record, headers=auth, timeout=30)
    assert answer.status_code == 200, answer.text
    prediction_id = answer.json()["predictions"][0]["id"]
    return {'"prediction_id": "…"': f'"prediction_id": "{prediction_id}"'}


def _check_tour_predict(doc: Doc, out: str) -> None:
    scored = pd.read_csv(doc.root / "scored.csv")
    assert {"prediction", "probability_1", "probability_2"} <= set(scored.columns)
    assert len(scored) == 5


def _check_serve(doc: Doc, out: str) -> None:
    """The CSV route's answer: the rows sent, with `prediction_id`, `prediction` and
    `probability_<class>` columns; the JSON route's: per row an id, a label, probabilities."""
    header = next(ln for ln in out.splitlines() if ln.startswith("prediction_id,"))
    assert header.endswith(",prediction,probability_1,probability_2"), header
    assert "checking_status" in header
    assert re.search(r'"predictions":\[\{"id":"[^"]+","label":[12],"probabilities":', out), out


def _check_loop(doc: Doc, out: str) -> None:
    """Feedback accepted, a monitor report written, a new version, a bundle with a Dockerfile."""
    assert re.search(r'\{"prediction_id":"[^"]+","model":"credit"', out), out
    assert re.search(r"json: +shipml-reports/monitor-credit-[\d-]+\.json", out), out
    assert (doc.root / "dist" / "Dockerfile").is_file()


def _check_answer_loop(doc: Doc, out: str) -> None:
    """Feedback accepted, the monitor's answer counts shown, version 2 trained and promoted."""
    assert re.search(
        r'\{"prediction_id":"[^"]+","model":"helpdesk","version":1,"helpful":true', out
    ), out
    assert "questions to helpdesk/1" in out, out
    assert "confirmed question(s) added as paraphrases" in out, out


def _check_image_serve(doc: Doc, out: str) -> None:
    """Both requests answered with a label among the folder's classes; the monitor ran."""
    labels = re.findall(r'"label":"(\w+)"', out)
    assert len(labels) == 2 and set(labels) <= {"ok", "scratch", "spot"}, out
    assert "defects" in out and "predictions" in out, out


_WAIT = (  # instead of `sleep 5`: wait until the server is ready, at most 120 s
    "for _ in $(seq 240); do curl -sf 127.0.0.1:{port}/v2/health/ready >/dev/null && break; "
    "sleep 0.5; done"
)


def _free_the_port(doc: Doc) -> dict:
    """The answer model's server takes the port: stop the one "Serve it" left running."""
    for pgid in doc.background:
        _stop(pgid)
    doc.background.clear()
    return {}


SETUP = {
    "README.md": [
        Setup("shipml predict credit new_applicants.csv", check=_check_tour_predict),
        Setup("shipml models promote credit 3", before=_three_versions),
        Setup("model = shipml.train(", before=_python_data),
        Setup(
            "shipml serve credit@production",
            before=_record,
            keep_background=True,
            replace={"sleep 5": _WAIT},
            check=_check_serve,
        ),  # fmt: skip
        Setup(
            "/v1/feedback",
            before=_feedback,
            # exit code 1 is `monitor`'s documented "drift found", not a failure
            replace={"--since 7d": "--since 7d || test $? = 1"},
            check=_check_loop,
        ),
        Setup(
            "shipml serve helpdesk",
            before=_free_the_port,
            replace={"sleep 5": _WAIT},
            check=_check_answer_loop,
        ),
        Setup(
            "shipml serve defects",
            before=_free_the_port,
            replace={"sleep 5": _WAIT, "--since 7d": "--since 7d || test $? = 1"},
            check=_check_image_serve,
        ),
    ]
}


def setup_for(block: Block) -> Setup:
    found = [s for s in SETUP.get(block.doc, []) if s.match in block.code]
    assert len(found) <= 1, f"{block.id}: several SETUP entries match"
    return found[0] if found else Setup(match="")


def prepare(block: Block, doc: Doc, setup: Setup) -> str:
    """The block's code as the test runs it: setup's replacements, the doc's port, budgets."""
    replace = dict(setup.replace)
    if setup.before:
        replace.update(setup.before(doc))
    code = block.code
    for old, new in replace.items():
        assert old in code, f"{block.id}: {old!r} not in the block"
        code = code.replace(old, new.replace("{port}", str(doc.port)))
    code = code.replace("localhost:8080", f"127.0.0.1:{doc.port}")
    code = code.replace("--port 8080", f"--port {doc.port}")
    for pattern, new in SPEED.get(block.doc, []):
        code = re.sub(pattern, new, code)
    return code


# -- running a block -------------------------------------------------------------------------


def run_shell(code: str, doc: Doc, keep_background: bool) -> str:
    """Run `code` in bash; its output goes to a file (a server it leaves running in the
    background would hold a pipe open)."""
    script, log = doc.root / "block.sh", doc.root / "block.log"
    script.write_text(code)
    bash = ["bash", "--noprofile", "--norc", "-e", "-o", "pipefail", str(script)]
    with log.open("w") as out:
        proc = subprocess.Popen(
            bash, cwd=doc.root, env=doc.env, start_new_session=True, stdout=out, stderr=out
        )
    try:
        proc.wait(timeout=600)
    finally:
        if keep_background:
            doc.background.append(proc.pid)
        else:
            _stop(proc.pid)
    text = log.read_text(errors="replace")
    assert proc.returncode == 0, f"exit code {proc.returncode}:\n{text[-4000:]}"
    return text


def run_console(code: str, doc: Doc) -> str:
    """`$ command` lines are run; the lines shown after one must appear in its output (spaces
    normalized), except `...`, which stands for any lines."""
    out_all, cmd, shown = [], None, []

    def flush():
        if cmd is None:
            return
        got = run_shell(cmd + "\n", doc, keep_background=False)
        norm = " ".join(got.split())
        for line in shown:
            if line.strip() and line.strip() != "...":
                assert " ".join(line.split()) in norm, f"{cmd}: {line!r} not in:\n{got}"
        out_all.append(got)

    for line in code.splitlines():
        if line.startswith("$ "):
            flush()
            cmd, shown = line[2:], []
        else:
            shown.append(line)
    flush()
    return "".join(out_all)


def run_python(code: str, doc: Doc, monkeypatch, name: str) -> str:
    monkeypatch.chdir(doc.root)
    for key in ("SHIPML_HOME", "SHIPML_TIME_BUDGET", "HOME"):
        monkeypatch.setenv(key, doc.env[key])
    exec(compile(code, name, "exec"), doc.namespace)
    return ""


def run_block(block: Block, doc: Doc, monkeypatch) -> None:
    setup = setup_for(block)
    code = prepare(block, doc, setup)
    if block.lang == "console":
        out = run_console(code, doc)
    elif block.lang in SHELL:
        out = run_shell(code, doc, setup.keep_background)
    else:
        out = run_python(code, doc, monkeypatch, block.id)
    if setup.check:
        setup.check(doc, out)


def runnable(block: Block) -> bool:
    return block.not_run is None and block.lang in SHELL | PYTHON


@pytest.mark.slow
@pytest.mark.parametrize("block", [b for b in BLOCKS if runnable(b)], ids=lambda b: b.id)
def test_block(block, docs, monkeypatch):
    """The block runs (after the document's earlier blocks, as a reader would run them)."""
    doc = docs(block.doc)
    for earlier in BLOCKS:
        if earlier.doc != block.doc or earlier.line >= block.line:
            continue
        if runnable(earlier) and earlier.line not in doc.done:
            doc.done.add(earlier.line)  # run once, even if it fails (its own test reports it)
            run_block(earlier, doc, monkeypatch)
    doc.done.add(block.line)
    run_block(block, doc, monkeypatch)


# -- the rules that keep the list above honest -----------------------------------------------


def test_every_block_is_run_or_marked():
    """A block is shell, Python or shown text; only NOT_RUN's few blocks carry a not-run
    marker."""
    for block in BLOCKS:
        known = SHELL | PYTHON | SHOWN
        assert block.lang in known, f"{block.id}: say which language (one of {sorted(known)})"
    marked = {(b.doc, b.first_line.split("#")[0].strip()): b.not_run for b in BLOCKS if b.not_run}
    extra = set(marked) - set(NOT_RUN)
    assert not extra, f"not-run markers on blocks NOT_RUN does not list: {extra}"
    assert set(NOT_RUN) <= set(marked), (
        f"NOT_RUN entries without a marker: {set(NOT_RUN) - set(marked)}"
    )
    assert len(NOT_RUN) <= 3, "keep the blocks that are not run to a few: run them instead"
    assert len([b for b in BLOCKS if runnable(b)]) >= 10


def test_setup_and_speed_rules_match():
    """Every SETUP entry matches exactly one block and every SPEED rule something: a README edit
    that drops one fails here rather than being ignored."""
    for doc, setups in SETUP.items():
        for s in setups:
            hits = [b.id for b in BLOCKS if b.doc == doc and s.match in b.code]
            assert len(hits) == 1, f"SETUP {s.match!r}: blocks {hits}"
    for doc, rules in SPEED.items():
        text = "".join(b.code for b in BLOCKS if b.doc == doc)
        for pattern, _ in rules:
            assert re.search(pattern, text), f"SPEED {pattern!r} matches nothing in {doc}"


def test_a_failing_command_fails_its_block(tmp_path):
    """A command that fails, in a pipe too, fails the block, with its output in the message."""
    doc = Doc("page.md", tmp_path, dict(os.environ), 0)
    assert run_shell("echo one | tr o O\n", doc, False) == "One\n"
    with pytest.raises(AssertionError, match="exit code 3:\n *before"):
        run_shell("echo before\n(exit 3)\necho after\n", doc, False)
    with pytest.raises(AssertionError, match="exit code 1"):
        run_shell("false | cat\necho after\n", doc, False)


def test_read_blocks_finds_lines_and_markers(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("# t\n\n```bash\necho hi\n```\n\n<!-- not-run: needs a GPU -->\n\n"
                    "```python\nx = 1\n```\n  ```sh\n  ls\n  ```\n")  # fmt: skip
    got = [(b.line, b.lang, b.code, b.not_run) for b in read_blocks(page)]
    assert got == [(3, "bash", "echo hi\n", None), (9, "python", "x = 1\n", "needs a GPU"),
                   (12, "sh", "ls\n", None)]  # fmt: skip


# -- docstring examples ----------------------------------------------------------------------


def _module(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


EXAMPLES = sorted(_module(p) for p in SRC.rglob("*.py") if ">>>" in p.read_text(encoding="utf-8"))


@pytest.mark.parametrize("module", EXAMPLES)
def test_docstring_examples(module):
    """The `>>>` examples of src/shipml give the outputs they show."""
    mod = importlib.import_module(module)
    flags = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    result = doctest.testmod(mod, optionflags=flags, report=True, verbose=False)
    assert result.attempted > 0
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed"
