"""Reading a folder of pages (.md, .txt, .html) as FAQ entries: each page split into passages
under their heading path; the passage is the answer, the heading path its "question", and the
file and heading its source.

Markdown is split at its ATX headings (`#`..`######`, outside fenced code); HTML at h1-h6 with
the standard library's html.parser (script, style and the like dropped); plain text by
paragraphs. A section longer than `_MAX_WORDS` words is cut into passages of whole paragraphs
(the sentence encoder reads about 256 tokens). Anything else in the folder, a file that is not
UTF-8 text, or one that cannot be read is a DataError naming the file.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

from shipml.errors import DataError

__all__ = ["read_documents", "DOCUMENT_SUFFIXES", "split_markdown", "split_html"]

DOCUMENT_SUFFIXES = (".md", ".markdown", ".txt", ".html", ".htm")
_MAX_WORDS = 160  # words per passage, at most (paragraphs are never cut)
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_FENCE = re.compile(r"^\s*(```|~~~)")
_SKIP_TAGS = {"script", "style", "noscript", "template", "head", "svg", "nav"}
_BLOCK_TAGS = {"p", "div", "li", "br", "tr", "section", "article", "table", "ul", "ol", "pre",
               "blockquote", "dd", "dt"}  # fmt: skip


def read_documents(folder: Path) -> tuple[list[dict], list[str]]:
    """(entries, notes) of every page under `folder` (recursively, hidden files skipped)."""
    folder = Path(folder)
    files = sorted(p for p in folder.rglob("*") if p.is_file() and not _hidden(p, folder))
    if not files:
        raise DataError(f"{folder}: the folder has no files (give .md, .txt or .html pages)")
    others = [p for p in files if p.suffix.lower() not in DOCUMENT_SUFFIXES]
    if others:
        names = ", ".join(str(p.relative_to(folder)) for p in others[:5])
        raise DataError(f"{folder}: {len(others)} file(s) that are not text documents "
                        f"({names}); shipml reads {', '.join(DOCUMENT_SUFFIXES)} pages: remove "
                        "or convert them")  # fmt: skip
    entries, notes = [], []
    for path in files:
        relative = path.relative_to(folder).as_posix()
        sections = _sections(path, _text(path, relative))
        passages = [(h, t) for h, text in sections for t in _passages(text)]
        if not passages:
            notes.append(f"{relative}: no text (left out)")
        for n, (heading, text) in enumerate(passages, start=1):
            title = heading or path.stem.replace("_", " ").replace("-", " ")
            entries.append({"id": f"{relative}#{n}", "question": title, "answer": text,
                            "paraphrases": [], "category": None, "url": None,
                            "source": {"file": relative, "heading": heading or None}})  # fmt: skip
    if not entries:
        raise DataError(f"{folder}: no text in any of its {len(files)} page(s)")
    return entries, notes


def _hidden(path: Path, root: Path) -> bool:
    return any(part.startswith(".") for part in path.relative_to(root).parts)


def _text(path: Path, relative: str) -> str:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(f"{relative}: cannot read the file ({exc.strerror or exc})") from exc
    if b"\x00" in raw[:8192]:
        raise DataError(f"{relative}: not a text document (binary content); give UTF-8 text")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(f"{relative}: not UTF-8 text (byte {exc.start}); save it as UTF-8") from exc


def _sections(path: Path, text: str) -> list[tuple[str, str]]:
    suffix = path.suffix.lower()
    if suffix in (".md", ".markdown"):
        return split_markdown(text)
    if suffix in (".html", ".htm"):
        return split_html(text)
    return [("", text)]


def split_markdown(text: str) -> list[tuple[str, str]]:
    """(heading path "A > B", section text) per section of a markdown page."""
    path: list[tuple[int, str]] = []
    sections: list[tuple[str, list[str]]] = [("", [])]
    fenced = False
    for line in text.splitlines():
        if _FENCE.match(line):
            fenced = not fenced
        match = None if fenced else _HEADING.match(line)
        if match is None:
            sections[-1][1].append(line)
            continue
        level, title = len(match.group(1)), match.group(2).strip()
        path = [(lv, t) for lv, t in path if lv < level] + [(level, title)]
        sections.append((" > ".join(t for _, t in path), []))
    return [(h, "\n".join(lines)) for h, lines in sections]


class _HtmlSections(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.sections: list[tuple[str, list[str]]] = [("", [])]
        self.path: list[tuple[int, str]] = []
        self.skip = 0
        self.heading: tuple[int, list[str]] | None = None

    def handle_starttag(self, tag, attrs):
        if tag in _SKIP_TAGS:
            self.skip += 1
        elif re.fullmatch(r"h[1-6]", tag):
            self.heading = (int(tag[1]), [])
        elif tag in _BLOCK_TAGS:
            self.sections[-1][1].append("\n\n" if tag == "p" else "\n")

    def handle_endtag(self, tag):
        if tag in _SKIP_TAGS:
            self.skip = max(0, self.skip - 1)
        elif re.fullmatch(r"h[1-6]", tag) and self.heading is not None:
            level, words = self.heading
            title = " ".join("".join(words).split())
            self.heading = None
            if title:
                self.path = [(lv, t) for lv, t in self.path if lv < level] + [(level, title)]
                self.sections.append((" > ".join(t for _, t in self.path), []))
        elif tag in _BLOCK_TAGS:
            self.sections[-1][1].append("\n\n" if tag == "p" else "\n")

    def handle_data(self, data):
        if self.skip:
            return
        if self.heading is not None:
            self.heading[1].append(data)
        else:
            self.sections[-1][1].append(data)


def split_html(text: str) -> list[tuple[str, str]]:
    """(heading path, section text) per section of an HTML page (tags dropped)."""
    parser = _HtmlSections()
    parser.feed(text)
    parser.close()
    return [(h, "".join(parts)) for h, parts in parser.sections]


def _passages(text: str) -> list[str]:
    """The section's paragraphs grouped into passages of at most `_MAX_WORDS` words."""
    paragraphs = [" ".join(p.split()) for p in re.split(r"\n\s*\n", text)]
    out: list[str] = []
    words = 0
    for p in (p for p in paragraphs if p):
        n = len(p.split())
        if out and words + n <= _MAX_WORDS:
            out[-1] += "\n\n" + p
            words += n
        else:
            out.append(p)
            words = n
    return out
