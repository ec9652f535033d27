"""Build the compact first/last-name lexicons shipml detects people's names with.

The `names-dataset` package (MIT, Philippe Remy) holds 730k first and 980k last names with their
rank in 105 countries, but loading it takes ~26 s and ~1.9 GB (it unpickles two large dicts), far
too much for every `shipml train`. This script keeps the names ranked in the top RANK of at
least one country (the names that make up most of any country's population) and writes them as
gzipped text, one name per line, to src/shipml/data/names/. Run it again to refresh them:

    pip install names-dataset && python tools/build_name_lexicon.py
"""

from __future__ import annotations

import gzip
import re
from pathlib import Path

RANK = 1000
OUT = Path(__file__).resolve().parents[1] / "src" / "shipml" / "data" / "names"
_WORD = re.compile(r"^[^\W\d_]+(['-][^\W\d_]+)*$")  # letters, "Jean-Luc", "O'Neil"


def top_names(table: dict, rank: int = RANK) -> list[str]:
    keep = set()
    for name, info in table.items():
        ranks = [r for r in info["rank"].values() if r is not None]
        if ranks and min(ranks) <= rank and len(name) >= 2 and _WORD.match(name):
            keep.add(name.casefold())
    return sorted(keep)


def main() -> None:
    from names_dataset import NameDataset

    data = NameDataset()
    OUT.mkdir(parents=True, exist_ok=True)
    for kind, table in (("first", data.first_names), ("last", data.last_names)):
        names = top_names(table)
        path = OUT / f"{kind}.txt.gz"
        text = ("\n".join(names) + "\n").encode("utf-8")
        path.write_bytes(gzip.compress(text, mtime=0))  # mtime=0: the same bytes every run
        print(f"{path}: {len(names):,} names, {path.stat().st_size:,} bytes")


if __name__ == "__main__":
    main()
