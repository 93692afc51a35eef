"""Writes a synthetic shopper behaviour log for a catalog, by explicit rules (a seeded RNG, so the
same arguments give the same file):

- sessions have a category affinity: most views stay in the category the session starts in;
- popularity has a long tail (Zipf over each category's products);
- shoppers browse "collections": products a shop shows side by side, drawn here as a hidden random
  order per category; the next product viewed is often one of its neighbours in that order. Nothing in
  a product's fields reveals the order, so only behaviour can learn it;
- a view -> cart -> purchase funnel with drop-off (10% of views are carted, 40% of carts bought);
- complementary categories are bought together (a tent, then a sleeping bag);
- a share of sessions come from returning users, who look again at what they saw before;
- events spread over a date range; a session's events are seconds to minutes apart.

  python data/make_events.py --out .shopgen/events.jsonl [--sessions 3000] [--days 60]
  python data/make_events.py --out big.jsonl --events 5000000 --products 50000   (clones the catalog)
"""

from __future__ import annotations

import argparse
import bisect
import itertools
import json
import random
import sys
from collections import defaultdict
from datetime import datetime, timedelta, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
COMPLEMENTS = {
    "Tents": ["Sleeping Bags", "Headlamps"], "Sleeping Bags": ["Tents"],
    "Backpacks": ["Water Bottles", "Rain Jackets"], "Rain Jackets": ["Backpacks"],
    "Running Shoes": ["Water Bottles"], "Yoga Mats": ["Water Bottles"], "Water Bottles": ["Backpacks"],
    "Cookware": ["Kitchen Knives"], "Kitchen Knives": ["Cookware"],
    "Desk Lamps": ["Bluetooth Speakers"], "Bluetooth Speakers": ["Desk Lamps"], "Headlamps": ["Tents"],
}
CART_P, BUY_P, COMPLEMENT_P = 0.10, 0.40, 0.35
NEIGHBOUR_P, STAY_P, RETURNING_P = 0.55, 0.85, 0.3


def load_products(path: Path, products: int | None) -> list[dict]:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    rows = [{"sku": r["sku"], "category": r.get("category") or "", "locale": r.get("locale") or "en-US"} for r in rows]
    if products and products > len(rows):  # a bigger catalog for benchmarks: numbered clones
        base = rows
        rows = [{**r, "sku": f"{r['sku']}-{i // len(base)}"} if i >= len(base) else r
                for i, r in zip(range(products), itertools.cycle(base))]
    return rows[:products] if products else rows


class Shop:
    def __init__(self, products: list[dict], rng: random.Random):
        self.rng = rng
        groups: dict[tuple[str, str], list[str]] = defaultdict(list)
        for p in products:
            groups[(p["locale"], p["category"])].append(p["sku"])
        self.order, self.cum, self.pos = {}, {}, {}
        for key, skus in groups.items():
            order = sorted(skus)
            rng.shuffle(order)  # the hidden collection order
            self.order[key] = order
            self.pos.update({s: (key, i) for i, s in enumerate(order)})
            # Zipf popularity, over a second hidden order so popular products are spread over collections
            pop = order[:]
            rng.shuffle(pop)
            weights = [1.0 / (r + 1) ** 1.1 for r in range(len(pop))]
            self.cum[key] = (pop, list(itertools.accumulate(weights)))
        cats = defaultdict(list)
        for loc, cat in groups:
            cats[loc].append(cat)
        self.categories = {loc: sorted(c) for loc, c in cats.items()}
        self.locales = sorted(cats)
        self.locale_weight = [sum(len(groups[(loc, c)]) for c in cats[loc]) for loc in self.locales]

    def popular(self, key: tuple[str, str]) -> str:
        pop, cum = self.cum[key]
        return pop[bisect.bisect_left(cum, self.rng.random() * cum[-1])]

    def next_after(self, sku: str) -> str:
        key, i = self.pos[sku]
        r = self.rng.random()
        if r < NEIGHBOUR_P:
            order = self.order[key]
            j = i + self.rng.choice((-2, -1, 1, 2))
            if 0 <= j < len(order):
                return order[j]
        if r < STAY_P:
            return self.popular(key)
        loc = key[0]
        return self.popular((loc, self.rng.choice(self.categories[loc])))


def sessions(shop: Shop, n_sessions: int | None, n_events: int | None, start: datetime, days: int,
             rng: random.Random):
    users: list[list[str]] = []  # each returning user's earlier views
    span = days * 86400
    written = 0
    for s in itertools.count():
        if (n_sessions is not None and s >= n_sessions) or (n_events is not None and written >= n_events):
            return
        loc = rng.choices(shop.locales, weights=shop.locale_weight)[0]
        user, seen_before = None, []
        if users and rng.random() < RETURNING_P:
            u = rng.randrange(len(users))
            user, seen_before = f"u{u:07d}", users[u]
        elif rng.random() < 0.5:
            users.append([])
            user = f"u{len(users) - 1:07d}"
        t = start + timedelta(seconds=rng.random() * span)
        cat = rng.choice(shop.categories[loc])
        same_locale = [x for x in seen_before if shop.pos.get(x, (("",),))[0][0] == loc]
        sku = rng.choice(same_locale) if same_locale and rng.random() < 0.5 else shop.popular((loc, cat))
        length = min(1 + int(rng.expovariate(1 / 5.0)), 40)
        sid = f"s{s:08d}"
        out = []
        for _ in range(length):
            if rng.random() < 0.3:
                out.append((sid, user, sku, "click", t))
                t += timedelta(seconds=rng.randint(1, 5))
            out.append((sid, user, sku, "view", t))
            t += timedelta(seconds=rng.randint(10, 180))
            if rng.random() < CART_P:
                out.append((sid, user, sku, "cart", t))
                t += timedelta(seconds=rng.randint(5, 60))
                if rng.random() < BUY_P:
                    out.append((sid, user, sku, "purchase", t))
                    t += timedelta(seconds=rng.randint(30, 300))
                    key = shop.pos[sku][0]
                    comps = [c for c in COMPLEMENTS.get(key[1], []) if (key[0], c) in shop.cum]
                    if comps and rng.random() < COMPLEMENT_P:
                        # The complement is viewed, carted and bought in the same session.
                        other = shop.popular((key[0], rng.choice(comps)))
                        for kind in ("view", "cart", "purchase"):
                            out.append((sid, user, other, kind, t))
                            t += timedelta(seconds=rng.randint(10, 120))
            sku = shop.next_after(sku)
        if user is not None:
            users[int(user[1:])].extend(e[2] for e in out if e[3] == "view")
        written += len(out)
        yield out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--catalog", type=Path, default=HERE / "sample_catalog.jsonl")
    ap.add_argument("--out", type=Path, required=True, help="JSONL file to write")
    ap.add_argument("--sessions", type=int, default=None, help="number of sessions (default 3000)")
    ap.add_argument("--events", type=int, default=None, help="stop after about this many events instead")
    ap.add_argument("--products", type=int, default=None, help="clone the catalog up to this many SKUs")
    ap.add_argument("--days", type=int, default=60)
    ap.add_argument("--end", default="2026-11-30", help="last day of the log (UTC)")
    ap.add_argument("--seed", type=int, default=7)
    a = ap.parse_args(argv)
    rng = random.Random(a.seed)
    shop = Shop(load_products(a.catalog, a.products), rng)
    end = datetime.fromisoformat(a.end).replace(tzinfo=timezone.utc)
    n_sessions = a.sessions if a.sessions is not None or a.events is not None else 3000
    a.out.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    with a.out.open("w", encoding="utf-8") as f:
        for batch in sessions(shop, n_sessions, a.events, end - timedelta(days=a.days), a.days, rng):
            for sid, user, sku, kind, t in batch:
                f.write(json.dumps({"session_id": sid, "user_id": user, "sku": sku, "event": kind,
                                    "ts": t.isoformat().replace("+00:00", "Z")}) + "\n")
                n += 1
    print(f"wrote {n} events to {a.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
