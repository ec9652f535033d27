"""Write the synthetic shop log: events.csv (who viewed, carted or bought what, and when) and
items.csv (the catalogue). Seeded and NumPy only: running it again writes the same files.

    python tests/data/shop_log/make_shop_log.py          # rewrites both CSVs next to this file

The structure a recommender can learn (and a test can check):
- 8 categories; each user has 1-2 favourite ones and starts most sessions there;
- item popularity is Zipf-like (a few best sellers, a long tail);
- within a session the next item is often one of 3 "neighbours" of the current one (same
  category), else from the same category, and some items are
  "bought together" (a coffee grinder -> coffee beans): after carting the first, the second
  is often viewed next;
- sessions: views, some carts, some purchases (quantity 1-3 on carts and purchases);
- a few users have only 1-2 events; 12 items are new in the last three weeks and trend then.
"""

from __future__ import annotations

import csv
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np

SEED = 15
N_USERS = 300
N_DAYS = 90
START = datetime(2025, 1, 6, tzinfo=timezone.utc)
HERE = Path(__file__).resolve().parent

# category -> (item nouns, adjectives, description phrases, price range)
CATALOGUE = {
    "coffee": (["Espresso Beans", "Filter Coffee", "Coffee Grinder", "Moka Pot", "Pour-Over Kettle",
                "Milk Frother", "Cold Brew Jar"], ["Dark Roast", "Single Origin", "Burr", "Steel"],
               ["freshly roasted arabica", "rich crema", "for espresso and filter", "even grind"],
               (6, 90)),
    "tea": (["Green Tea", "Earl Grey", "Teapot", "Matcha Whisk", "Tea Infuser", "Chai Blend"],
            ["Loose Leaf", "Organic", "Ceramic", "Spiced"],
            ["loose leaf tea", "steeps in three minutes", "calming evening cup", "fine leaves"],
            (4, 45)),
    "running": (["Trail Shoes", "Road Shoes", "Running Socks", "Running Vest", "Head Torch",
                 "Water Bottle"], ["Lightweight", "Cushioned", "Breathable", "Reflective"],
                ["for long runs", "grippy outsole", "breathable mesh upper", "light on the feet"],
                (9, 160)),
    "yoga": (["Yoga Mat", "Yoga Block", "Yoga Strap", "Meditation Cushion", "Yoga Towel"],
             ["Non-Slip", "Cork", "Extra Thick", "Travel"],
             ["non-slip grip for every pose", "soft on the knees", "for stretching and balance"],
             (8, 70)),
    "books": (["Mystery Novel", "Cookbook", "Travel Guide", "Science Fiction Novel", "Biography",
               "Poetry Collection"], ["Bestselling", "Illustrated", "Paperback", "Hardcover"],
              ["a gripping story", "recipes for every season", "chapters you read in one sitting"],
              (7, 35)),
    "games": (["Board Game", "Card Game", "Jigsaw Puzzle", "Dice Set", "Party Game"],
              ["Family", "Strategy", "1000-Piece", "Cooperative"],
              ["for two to six players", "an evening of fun", "clever strategy and luck"],
              (10, 60)),
    "kitchen": (["Chef Knife", "Cutting Board", "Cast Iron Pan", "Mixing Bowls", "Spice Rack",
                 "Apron"], ["Stainless", "Oak", "Non-Stick", "Professional"],
                ["sharp and balanced", "for everyday cooking", "easy to clean", "heats evenly"],
                (8, 120)),
    "garden": (["Seed Kit", "Pruning Shears", "Watering Can", "Planter", "Garden Gloves",
                "Compost Bin"], ["Herb", "Galvanised", "Terracotta", "Heavy Duty"],
               ["for balcony and garden", "grows from seed in weeks", "sturdy for outdoor work"],
               (5, 80)),
}  # fmt: skip
# "bought together": (first noun, second noun) — after carting the first, the second follows
PAIRS = [("Coffee Grinder", "Espresso Beans"), ("Moka Pot", "Espresso Beans"),
         ("Teapot", "Green Tea"), ("Matcha Whisk", "Green Tea"), ("Trail Shoes", "Running Socks"),
         ("Road Shoes", "Running Socks"), ("Yoga Mat", "Yoga Block"), ("Cookbook", "Spice Rack"),
         ("Cast Iron Pan", "Chef Knife"), ("Seed Kit", "Planter"), ("Board Game", "Dice Set"),
         ("Pour-Over Kettle", "Filter Coffee")]  # fmt: skip


def make_items(rng: np.random.Generator) -> list[dict]:
    items = []
    for category, (nouns, adjectives, phrases, (low, high)) in CATALOGUE.items():
        n = 19 if category not in ("yoga", "games") else 18
        for k in range(n):
            noun = nouns[k % len(nouns)]
            adjective = adjectives[(k // len(nouns) + k) % len(adjectives)]
            said = rng.choice(phrases, size=2, replace=False)
            number = f" {k // len(nouns) + 1}" if k >= len(nouns) else ""
            items.append({
                "category": category, "noun": noun,
                "name": f"{adjective} {noun}{number}",
                "price": round(float(np.exp(rng.uniform(np.log(low), np.log(high)))), 2),
                "in_stock": bool(rng.random() < 0.85),
                "description": f"{adjective} {noun.lower()}, {said[0]}; {said[1]}.",
            })  # fmt: skip
    order = rng.permutation(len(items))
    items = [items[i] for i in order]
    for pid, item in enumerate(items, start=1):
        item["product_id"] = pid
    return items


def popularity(rng: np.random.Generator, n: int) -> np.ndarray:
    """Zipf-like weights (exponent 0.9) over a random ranking of the items."""
    ranks = rng.permutation(n) + 1
    return 1.0 / ranks**0.9


def partners(items: list[dict]) -> dict[int, list[int]]:
    out: dict[int, list[int]] = {}
    for first, second in PAIRS:
        a = [i for i, it in enumerate(items) if it["noun"] == first]
        b = [i for i, it in enumerate(items) if it["noun"] == second]
        for i in a:
            out[i] = b
    return out


def pick(rng, weights: np.ndarray, allowed: np.ndarray) -> int:
    p = weights * allowed
    return int(rng.choice(len(p), p=p / p.sum()))


def neighbours(rng: np.random.Generator, items: list[dict]) -> list[np.ndarray]:
    """3 items of the same category looked at after each item (similar styles, a series)."""
    cats = np.array([it["category"] for it in items])
    out = []
    for i, it in enumerate(items):
        same = np.flatnonzero((cats == it["category"]) & (np.arange(len(items)) != i))
        out.append(rng.choice(same, size=3, replace=False))
    return out


def session(rng, day: float, fav: list[str], items, pop, release, together, near) -> list[tuple]:
    """One visit: a few items looked at, some carted, some bought; (time, item, event, qty)."""
    cats = np.array([it["category"] for it in items])
    live = release <= day
    # new items trend: 4x more likely than their base popularity once released
    boost = pop * np.where(release > 0, 4.0, 1.0)
    t = day * 86400 + rng.uniform(7, 22) * 3600  # one visit a day, in the day or evening
    cat = rng.choice(fav) if rng.random() < 0.8 else rng.choice(list(CATALOGUE))
    current = pick(rng, boost, live & (cats == cat))
    events = []
    for _ in range(int(rng.integers(1, 7))):
        events.append((t, current, "view", ""))
        carted = rng.random() < 0.3
        if carted:
            t += rng.uniform(20, 120)
            events.append((t, current, "cart", str(rng.choice([1, 1, 1, 2, 3]))))
            if rng.random() < 0.6:
                t += rng.uniform(30, 300)
                events.append((t, current, "purchase", events[-1][3]))
        t += rng.uniform(30, 400)
        mates = [j for j in together.get(current, []) if live[j]]
        if carted and mates and rng.random() < 0.7:
            current = int(rng.choice(mates))
        elif (step := rng.random()) < 0.45 and live[near[current]].any():
            current = int(rng.choice(near[current][live[near[current]]]))
        elif step < 0.75:
            current = pick(rng, boost, live & (cats == items[current]["category"]))
        else:
            current = pick(rng, boost, live)
    return events


def make_events(rng: np.random.Generator, items: list[dict]) -> list[dict]:
    cats = list(CATALOGUE)
    pop = popularity(rng, len(items))
    release = np.zeros(len(items))
    new = rng.choice(len(items), size=12, replace=False)
    release[new] = rng.uniform(N_DAYS - 21, N_DAYS - 3, size=12)
    together = partners(items)
    near = neighbours(rng, items)
    rows = []
    for u in range(N_USERS):
        fav = list(rng.choice(cats, size=int(rng.integers(1, 3)), replace=False))
        first = int(rng.integers(0, N_DAYS - 2))
        few = u % 20 == 0  # a few users with only 1-2 events
        n_sessions = 1 if few else 1 + int(rng.poisson(3.4))
        free = np.arange(first, N_DAYS - 1)
        days = np.sort(rng.choice(free, size=min(n_sessions, len(free)), replace=False))
        user_rows = []
        for day in days:
            user_rows += session(rng, day, fav, items, pop, release, together, near)
        if few:
            user_rows = user_rows[: int(rng.integers(1, 3))]
        for t, i, event, qty in user_rows:
            rows.append((t, 1000 + u, items[i]["product_id"], event, qty))
    rows.sort(key=lambda r: (r[0], r[1]))
    return [{"customer_id": cu, "product_id": pid, "ts": _iso(t), "event": ev, "quantity": q}
            for t, cu, pid, ev, q in rows]  # fmt: skip


def _iso(seconds: float) -> str:
    when = START + timedelta(seconds=float(seconds))
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def write(path: Path, rows: list[dict], columns: list[str]) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def main() -> None:
    rng = np.random.default_rng(SEED)
    items = make_items(rng)
    events = make_events(rng, items)
    for item in items:
        item["in_stock"] = "true" if item["in_stock"] else "false"
    write(HERE / "items.csv", sorted(items, key=lambda it: it["product_id"]),
          ["product_id", "name", "category", "price", "in_stock", "description"])  # fmt: skip
    write(HERE / "events.csv", events, ["customer_id", "product_id", "ts", "event", "quantity"])


if __name__ == "__main__":
    main()
