"""`shipml train FOLDER --task answer`: a folder of .md/.txt pages becomes passages with their
headings; `shipml ask` answers from them."""

import json

from conftest import run_cli


def test_train_a_folder_of_pages(tmp_path, capsys):
    pages = tmp_path / "handbook"
    pages.mkdir()
    (pages / "returns.md").write_text(
        "# Returns\n\n## How to return an item\n\nPack the item in its box, print the label from "
        "your account and drop the parcel at any post office within 30 days.\n\n## Refunds\n\n"
        "Refunds reach your card within 5 working days after the parcel arrives.\n"
    )
    (pages / "accounts.txt").write_text(
        "Password reset\n\nClick 'Forgot password' on the login page and follow the link we "
        "e-mail you. The link is valid for one hour.\n"
    )
    reg = tmp_path / "reg"
    code, out, err = run_cli(["train", pages, "--task", "answer", "--name", "handbook",
                              "--time-budget", "10", "--no-report", "--registry-uri", reg],
                             capsys)  # fmt: skip
    assert code == 0, err
    assert "registered handbook/1" in out
    code, out, _ = run_cli(["ask", "handbook", "When do refunds reach my card?", "--json",
                            "--registry-uri", reg], capsys)  # fmt: skip
    body = json.loads(out)
    assert body["entry"] == "returns.md#2" and "5 working days" in body["answer"]
    assert body["source"] == {"file": "returns.md", "heading": "Returns > Refunds"}
    code, out, _ = run_cli(["ask", "handbook", "I forgot my password", "--registry-uri", reg],
                           capsys)  # fmt: skip
    text = " ".join(out.split())
    assert "entry accounts.txt#1" in text and "source: file accounts.txt" in text
