"""Draw texts for the copy audit (tests/data/copy_audit.jsonl, rules in docs/COPY_AUDIT.md): one
attempt per (product, content type) from the configured generator, on a deterministic sample of the
bundled catalog and of ../shared/data/magento-luma when present. Every raw output is kept, the ones
the gate accepts and the ones it rejects, *unlabelled*: labels come from reading each text against
its facts, never from the gate (the gate's verdict at sampling time is not written out).

    .venv/bin/python bench/copy_audit_sample.py --out .shopgen/audit/batch1.jsonl [--n 50] [--samples 1]
        [--generator today|final] [--content description,bullets,seo_title,ad_copy,faq] [--seed-salt audit1]

Each line: id, catalog, sku, type, product (the facts), output (the raw JSON the engine returned)
and texts (its text pieces when it parses, else [raw])."""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _luma():
    spec = importlib.util.spec_from_file_location("luma", ROOT / "bench" / "luma.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _pick(rows: list, n: int, salt: str, key=lambda r: r.sku) -> list:
    return sorted(rows, key=lambda r: hashlib.sha256(f"{salt}:{key(r)}".encode()).hexdigest())[:n]


def samples(n: int, salt: str) -> list[tuple[str, list, list]]:
    """(catalog name, sampled products, whole catalog) for the bundled catalog and Luma."""
    from shopgen.catalog.load import load_catalog
    from shopgen.core.records import Product

    bundled, _ = load_catalog(str(ROOT / "data" / "sample_catalog.jsonl"))
    out = [("bundled", _pick(bundled, n, salt), bundled)]
    luma = _luma()
    if luma.available():
        allp = [Product(**r) for r in luma.products()]
        out.append(("magento-luma", _pick(allp, n, salt), allp))
    return out


def _write(f, name, p, ct, raw, brands, salt) -> int:
    try:
        texts = ct.texts(ct.schema.model_validate_json(raw))
    except ValueError:
        texts = [raw]
    rid = hashlib.sha256(f"{name}:{p.sku}:{ct.name}:{salt}".encode()).hexdigest()[:12]
    f.write(json.dumps({"id": rid, "catalog": name, "sku": p.sku, "type": ct.name, "product": p.model_dump(mode="json"),
                        "brands": brands, "output": raw, "texts": texts}, ensure_ascii=False) + "\n")
    return 1


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="JSONL file to write (unlabelled audit candidates)")
    ap.add_argument("--n", type=int, default=50, help="products per catalog")
    ap.add_argument("--samples", type=int, default=1, help="independent samples per request (one prefill)")
    ap.add_argument("--content", default="description,bullets,seo_title,ad_copy,faq")
    ap.add_argument("--seed-salt", default="audit1", help="salt of the deterministic product sample")
    ap.add_argument("--generator", choices=["today", "final"], default="today",
                    help="today: no constraints, one sample; final: the configured generator (constraints, best-of-n)")
    ap.add_argument("--append", action="store_true", help="append to --out instead of replacing it")
    ap.add_argument("--catalogs", default="bundled,magento-luma", help="which samples to draw from")
    ap.add_argument("--chunk", type=int, default=10, help="products per engine call (bounds the KV cache in use)")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()

    from shopgen.adapters import models
    from shopgen.core.config import load_settings
    from shopgen.core.content import CONTENT_TYPES, parse_content
    from shopgen.generate.engine import GateSpec, Request, VLLMGenerator, fit_messages
    from shopgen.generate.fewshot import shop_examples
    from shopgen.generate.stage import few_shot

    s = load_settings()
    types = list(parse_content(a.content))
    model = models.resolve(models.generation_ref(s), s)
    engine = VLLMGenerator(model, s, types)
    out_path = Path(a.out)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    n_written, t0 = 0, time.perf_counter()
    if a.generator == "today":  # the generator before constraints and best-of-n
        engine.gen = {**engine.gen, "constrain": False, "block_banned_words": False}
    with out_path.open("a" if a.append else "w", encoding="utf-8") as f:
        for name, products, catalog in samples(a.n, a.seed_salt):
            if name not in a.catalogs.split(","):
                continue
            brands = sorted({p.brand for p in catalog if p.brand})
            gate = GateSpec(brands=brands, banned=s.qa.banned_claims, claims=s.qa.claims)
            examples = shop_examples(products, catalog, {p.sku: types for p in products}, gate, few_shot(s, types))
            for at in range(0, len(products), a.chunk):
                reqs = []
                for p in products[at:at + a.chunk]:
                    for t in types:
                        msgs, _ = fit_messages(p, CONTENT_TYPES[t], engine.count, engine.budget, engine.spec,
                                               examples.get(p.sku, {}).get(t, []))
                        if msgs is not None:  # a prompt that does not fit generates nothing
                            reqs.append(Request(msgs, CONTENT_TYPES[t], p, a.samples))
                for r, samples_ in zip(reqs, engine._engine(reqs, 0)):
                    for k, smp in enumerate(samples_):
                        n_written += _write(f, name, r.product, r.ct, smp.text, brands, f"{a.seed_salt}:{k}")
                f.flush()
                print(f"{name}: {n_written} texts so far", file=sys.stderr, flush=True)
    engine.llm.llm_engine.engine_core.shutdown()
    print(json.dumps({"out": str(out_path), "texts": n_written, "seconds": round(time.perf_counter() - t0, 1)}),
          flush=True)
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())


if __name__ == "__main__":
    main()
