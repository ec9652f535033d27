"""A small shop log with real structure, made in a second from a seed (no data file needed).

Users belong to taste clusters (each cluster buys mostly from two of the six categories), item
popularity is skewed within a category, and each user's events follow in time (one purchase an
hour) so that leave-last-out by time applies. `catalog()` is the item table: name, category,
in-stock flag. Used by tests/recommend/test_cli.py and test_serve.py.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

CATEGORIES = ["shoes", "shirts", "books", "games", "garden", "kitchen"]
N_ITEMS = 90  # 15 per category
N_USERS = 160


def catalog() -> pd.DataFrame:
    items = np.arange(N_ITEMS)
    category = [CATEGORIES[i % len(CATEGORIES)] for i in items]
    return pd.DataFrame({
        "product_id": items + 100,
        "name": [f"{c} item {i + 100}" for i, c in zip(items, category)],
        "category": category,
        "in_stock": items % 4 != 0,
    })  # fmt: skip


def shop_log(seed: int = 0, events_per_user: int = 14) -> pd.DataFrame:
    """customer_id, product_id, ts: about N_USERS * events_per_user purchases."""
    rng = np.random.default_rng(seed)
    table = catalog()
    by_category = {c: table.product_id[table.category == c].to_numpy() for c in CATEGORIES}
    rows = []
    start = pd.Timestamp("2026-01-01")
    for user in range(N_USERS):
        cluster = user % 3
        liked = [CATEGORIES[2 * cluster], CATEGORIES[2 * cluster + 1]]
        t = start + pd.Timedelta(minutes=int(rng.integers(0, 600)))
        for _ in range(events_per_user):
            off_taste = rng.random() >= 0.85
            category = rng.choice(CATEGORIES) if off_taste else liked[int(rng.integers(2))]
            pool = by_category[category]
            weights = 1.0 / np.arange(1, len(pool) + 1) ** 1.1  # a few best sellers
            item = rng.choice(pool, p=weights / weights.sum())
            rows.append((f"u{user}", int(item), t))
            t += pd.Timedelta(minutes=int(rng.integers(30, 120)))
    frame = pd.DataFrame(rows, columns=["customer_id", "product_id", "ts"])
    return frame.drop_duplicates(["customer_id", "product_id", "ts"]).reset_index(drop=True)


def later_log(days: int = 60) -> pd.DataFrame:
    """The same shoppers `days` later (another seed): events to evaluate a trained model on."""
    frame = shop_log(seed=1, events_per_user=3)
    frame["ts"] = frame["ts"] + pd.Timedelta(days=days)
    return frame
