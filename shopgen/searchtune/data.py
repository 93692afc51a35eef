"""Search judgments -> contrastive training pairs (pure: no model, no I/O).

A pair is (query, a product judged relevant to it); its loss weight is grade / the file's top grade.
Each pair carries hard negatives: the query's zero-grade judgments first, then lexical (BM25)
misses, i.e. the products a keyword search ranks high for the query that it has not judged at all.
Queries are split into train and test by a sha256 of the normalised query (tune-search's split),
so a query never changes sides as the judgments grow and its pairs never straddle the split."""

from __future__ import annotations

import hashlib
import json
import math
import re
import unicodedata
from collections import Counter
from collections.abc import Collection, Mapping
from dataclasses import asdict, dataclass
from typing import Any

SPLITS = ("train", "test")
Judgments = Mapping[str, Mapping[str, float]]


def split_judgments(judgments: Judgments, test_fraction: float, seed: int = 0) -> dict[str, dict[str, dict[str, float]]]:
    """{"train": {query: judged}, "test": {...}}, queries in their order in the file. The split is
    tune-search's (indexing.tune.split_queries, a sha256 of the normalised query), so with the same
    fraction and seed both hold out the same queries, and a larger fraction holds out a superset."""
    from indexing.tune import split_queries

    train, test = split_queries(judgments, test_fraction, seed)
    return {"train": {q: dict(j) for q, j in train.items()}, "test": {q: dict(j) for q, j in test.items()}}


def restrict(judgments: Judgments, known: Collection[str]) -> tuple[dict[str, dict[str, float]], dict[str, Any]]:
    """Only the judgments whose SKU is among the products; figures of what was dropped (pairs, distinct
    unknown SKUs with a sample, queries left with nothing)."""
    kept: dict[str, dict[str, float]] = {}
    unknown: Counter[str] = Counter()
    for q, judged in judgments.items():
        mine = {s: g for s, g in judged.items() if s in known}
        unknown.update(s for s in judged if s not in known)
        if mine:
            kept[q] = mine
    return kept, {"dropped_pairs": sum(unknown.values()), "unknown_skus": len(unknown),
                  "unknown_sample": sorted(unknown)[:10], "dropped_queries": len(judgments) - len(kept)}


# ---- a small BM25 over the products, for lexical hard negatives ---------------------------------

_CJK = "\u3400-\u9fff\uf900-\ufaff"
TOKEN = re.compile(rf"[{_CJK}]|[^\W_{_CJK}]+")


def tokens(text: str) -> list[str]:
    """Lower-cased words; CJK characters one by one (no word segmenter needed)."""
    return TOKEN.findall(unicodedata.normalize("NFKC", text).casefold())


class Lexical:
    """Okapi BM25 (k1, b) over {sku: text}, in memory with an inverted index."""

    def __init__(self, docs: Mapping[str, str], k1: float = 1.2, b: float = 0.75):
        self.skus = list(docs)
        self.k1, self.b = k1, b
        self.postings: dict[str, list[tuple[int, int]]] = {}
        self.lengths: list[int] = []
        for i, text in enumerate(docs.values()):
            tf = Counter(tokens(text))
            self.lengths.append(sum(tf.values()))
            for t, n in tf.items():
                self.postings.setdefault(t, []).append((i, n))
        self.avg = (sum(self.lengths) / len(self.lengths)) if self.lengths else 0.0

    def top(self, query: str, k: int) -> list[str]:
        n = len(self.skus)
        scores: dict[int, float] = {}
        for t in set(tokens(query)):
            post = self.postings.get(t, [])
            idf = math.log(1 + (n - len(post) + 0.5) / (len(post) + 0.5))
            for i, tf in post:
                norm = tf + self.k1 * (1 - self.b + self.b * self.lengths[i] / (self.avg or 1))
                scores[i] = scores.get(i, 0.0) + idf * tf * (self.k1 + 1) / norm
        best = sorted(scores.items(), key=lambda x: (-x[1], self.skus[x[0]]))[:k]
        return [self.skus[i] for i, _ in best]


def negative_candidates(query: str, judged: Mapping[str, float], lexical: Lexical | None,
                        depth: int) -> tuple[list[str], list[str]]:
    """(zero-grade judgments, lexical misses): the query's explicit negatives in file order, and the
    top-`depth` lexical hits it has not judged (a judged hit with a grade is never a negative)."""
    zero = [s for s, g in judged.items() if g == 0]
    misses = [s for s in lexical.top(query, depth) if s not in judged] if lexical else []
    return zero, misses


def lower_graded(judged: Mapping[str, float], grade: float) -> list[str]:
    """The query's products graded above 0 but below `grade`, lowest first: negatives for a pair of
    that grade, so that the loss orders an exact match above a merely related product."""
    return [s for s, g in sorted(judged.items(), key=lambda x: x[1]) if 0 < g < grade]


# ---- pairs ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Pair:
    query: str
    sku: str
    grade: float
    weight: float
    negatives: tuple[str, ...]  # hard-negative SKUs
    # Every SKU the query graded at least this pair's grade: never an in-batch negative for it.
    at_least: tuple[str, ...]

    def as_row(self, texts: Mapping[str, str]) -> dict[str, Any]:
        """The training row: texts in, SKUs kept for masking and the data hash."""
        return {**asdict(self), "negatives": list(self.negatives), "at_least": list(self.at_least),
                "positive": texts[self.sku], "negative_texts": [texts[s] for s in self.negatives]}


def build_pairs(judgments: Judgments, lexical: Lexical | None, hard_negatives: int = 1, depth: int = 30,
                min_grade: float = 1.0, graded: bool = True) -> tuple[list[Pair], dict[str, int]]:
    """One pair per (query, SKU graded >= min_grade), with `hard_negatives` negatives each, taken in
    turn from its candidates (zero grades, then with `graded` the query's lower-graded products, then
    lexical misses) so that the query's pairs spread over them. Returns the pairs and how many
    negatives came from each source."""
    top = max((g for judged in judgments.values() for g in judged.values()), default=0.0)
    pairs: list[Pair] = []
    used: Counter[str] = Counter()
    for q, judged in judgments.items():
        zero, misses = negative_candidates(q, judged, lexical, depth) if hard_negatives else ([], [])
        positives = [(s, g) for s, g in judged.items() if g >= min_grade]
        for j, (sku, g) in enumerate(positives):
            lower = lower_graded(judged, g) if graded and hard_negatives else []
            cands = zero + lower + misses
            n = min(hard_negatives, len(cands))
            negs = tuple(cands[(j * n + t) % len(cands)] for t in range(n)) if n else ()
            used.update("zero_grade" if s in zero else "lower_grade" if s in lower else "lexical" for s in negs)
            at_least = tuple(s for s, x in judged.items() if (x >= g if graded else x > 0))
            pairs.append(Pair(q, sku, g, round(g / top, 6) if top else 0.0, negs, at_least))
    return pairs, {k: used[k] for k in ("zero_grade", "lower_grade", "lexical")}


def data_hash(rows: list[dict[str, Any]]) -> str:
    """Identity of a training set: its pairs, weights, negatives and texts, in any order."""
    keys = ("query", "sku", "weight", "negatives", "positive", "negative_texts")
    h = hashlib.sha256()
    for line in sorted(json.dumps([r[k] for k in keys], ensure_ascii=False) for r in rows):
        h.update(line.encode())
    return h.hexdigest()


def stats(judgments: Judgments, splits: Mapping[str, Judgments], pairs: list[Pair], negatives: Mapping[str, int],
          dropped: Mapping[str, Any], min_grade: float) -> dict[str, Any]:
    grades = Counter(f"{g:g}" for judged in judgments.values() for g in judged.values())
    return {"queries": len(judgments), "judged_pairs": sum(len(j) for j in judgments.values()),
            "grades": dict(sorted(grades.items())), "by_split": {s: len(splits[s]) for s in SPLITS},
            "train_pairs": len(pairs), "min_grade": min_grade, "hard_negatives": dict(negatives),
            "test_queries_without_relevant": sum(1 for j in splits["test"].values() if not any(g > 0 for g in j.values())),
            **dropped}
