"""near_duplicates: copy that is identical or near-identical across a run's products (MinHash LSH)."""

from __future__ import annotations

import re
from collections.abc import Sequence

from shopgen.checks.base import CJK, norm


# ---- near-duplicates across a run --------------------------------------------------------------
def _shingles(text: str, n: int = 3) -> set[str]:
    t = norm(text)
    toks = list(re.sub(r"\s+", "", t)) if CJK.search(t) else re.findall(r"\w+", t)
    return {" ".join(toks[i:i + n]) for i in range(max(1, len(toks) - n + 1))}


def near_duplicates(items: Sequence[tuple[str, str]], threshold: float = 0.9, num_perm: int = 128) -> dict[str, str]:
    """sku -> earlier sku whose copy is identical or near-identical (MinHash LSH on word 3-shingles)."""
    from datasketch import MinHash, MinHashLSH

    lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
    exact: dict[str, str] = {}
    dups: dict[str, str] = {}
    for sku, text in items:
        key = re.sub(r"\W+", " ", norm(text)).strip()
        if not key:
            continue
        if key in exact:
            dups[sku] = exact[key]
            continue
        exact[key] = sku
        mh = MinHash(num_perm=num_perm)
        for s in _shingles(text):
            mh.update(s.encode("utf-8"))
        found = lsh.query(mh)
        if found:
            dups[sku] = sorted(found)[0]
        lsh.insert(sku, mh)
    return dups
