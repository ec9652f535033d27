"""First- and last-name lexicons, loaded once on first use (~0.2 s, ~13 MB).

The lists are the names ranked in the top 1,000 of at least one country in the `names-dataset`
package (55k first names, 67k last names, lower case; data/names/README.md). That package loads
its full tables (1.7M names) in ~26 s and ~1.9 GB, so shipml ships the compact lists instead;
tools/build_name_lexicon.py rebuilds them.
"""

from __future__ import annotations

import functools
import gzip
from importlib import resources

__all__ = ["first_names", "last_names"]


@functools.cache
def first_names() -> frozenset[str]:
    return _read("first.txt.gz")


@functools.cache
def last_names() -> frozenset[str]:
    return _read("last.txt.gz")


def _read(name: str) -> frozenset[str]:
    data = resources.files("shipml.data").joinpath("names", name).read_bytes()
    return frozenset(w for w in gzip.decompress(data).decode("utf-8").split("\n") if w)
