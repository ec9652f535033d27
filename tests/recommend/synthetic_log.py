"""A small seeded shop log with structure a recommender can learn: four categories of items,
each user loyal to one (80 % of their events), sessions that walk through a category's items in
order (item j is often followed by item j + 1), Zipf-like popularity of the category items, and
an item table with names, categories, stock flags and descriptions — plus new items that have
no events yet (cold start)."""

from __future__ import annotations

import numpy as np
import pandas as pd

CATEGORIES = {
    "tea": "loose leaf green tea, steeped in a ceramic teapot",
    "running": "trail running shoes and socks for long distance runners",
    "garden": "garden tools for planting seeds and watering flowers",
    "books": "paperback novels and crime stories for reading at night",
}
PER_CATEGORY = 15


def shop_log(seed: int = 0, n_users: int = 120, events: tuple[int, int] = (8, 16)):
    """(events DataFrame: customer, product, ts; items DataFrame: product, name, category,
    in_stock, description). Products 1..60 have events; 61..64 are new (one per category)."""
    rng = np.random.default_rng(seed)
    cats = list(CATEGORIES)
    rows = []
    start = pd.Timestamp("2025-01-01", tz="UTC")
    for u in range(n_users):
        home = u % len(cats)
        t = start + pd.Timedelta(hours=int(rng.integers(0, 24 * 30)))
        j = int(min(rng.zipf(1.6), PER_CATEGORY) - 1)
        for _ in range(int(rng.integers(*events))):
            if rng.random() < 0.8:
                cat, j = home, (j + 1) % PER_CATEGORY if rng.random() < 0.7 else j
            else:
                cat, j = int(rng.integers(len(cats))), int(min(rng.zipf(1.6), PER_CATEGORY) - 1)
            rows.append((f"c{u}", cat * PER_CATEGORY + j + 1, t))
            t += pd.Timedelta(minutes=int(rng.integers(5, 600)))
    log = pd.DataFrame(rows, columns=["customer", "product", "ts"])
    return log.sort_values("ts", kind="stable").reset_index(drop=True), _items(rng, cats)


def _items(rng, cats: list[str]) -> pd.DataFrame:
    rows = []
    for c, cat in enumerate(cats):
        for j in range(PER_CATEGORY):
            text = f"{CATEGORIES[cat]} (model {j + 1})"
            stocked = bool(rng.random() < 0.7)
            name = f"{cat.title()} item {j + 1}"
            rows.append((c * PER_CATEGORY + j + 1, name, cat, stocked, text))
    n = len(rows)
    for c, cat in enumerate(cats):  # new in the catalogue: no events yet
        rows.append((n + c + 1, f"New {cat} item", cat, True, f"new: {CATEGORIES[cat]}"))
    return pd.DataFrame(rows, columns=["product", "name", "category", "in_stock", "description"])
