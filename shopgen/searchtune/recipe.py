"""The search fine-tuning recipe: judgments + products -> (query, product) pairs with hard negatives
-> Ray Train (TorchTrainer, contrastive InfoNCE with in-batch negatives, grade-weighted) -> held-out
NDCG@10 of the base and the fine-tuned embedder (brute-force cosine over the products) -> model
registry (an `embedder` version, promoted through its own gate).

Workers read the pairs from the run's storage (local or s3://) and each takes a deterministic shard
per step (train.worker.shard_batch); rank 0 checkpoints every search_finetune.checkpoint_every
steps and at the end, and a restarted worker group resumes from the latest checkpoint."""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from shopgen.adapters import models, raysupport, storage
from shopgen.adapters.registry import VERSION_RE, Registry, embedder_gate, kind_of, new_version_id
from shopgen.core.config import Settings
from shopgen.searchtune import data as stdata
from shopgen.train import driver, worker
from shopgen.train.worker import base_path, shard_batch

EVAL_DEPTH = 100  # hits ranked per held-out query (recall@100)


# ---- pure helpers ------------------------------------------------------------------------------

def excluded(rows: list[dict[str, Any]], doc_skus: list[str]) -> list[list[bool]]:
    """Per row, the candidate documents that may not count as its negatives: any product its query
    graded at least as high as the row's own positive (column i), which stays. A lower-graded one
    is a negative, so the loss orders grades. Documents are the rows' positives (in row order)
    followed by their hard negatives."""
    out = []
    for i, r in enumerate(rows):
        keep_out = set(r["at_least"])
        out.append([c != i and s in keep_out for c, s in enumerate(doc_skus)])
    return out


def info_nce(q: Any, docs: Any, weights: Any, mask: Any, scale: float) -> Any:
    """Weighted InfoNCE over cosine scores: row i's positive is docs[i]; every other document (the
    batch's other positives and all hard negatives) is a negative unless masked. q, docs: unit
    vectors [B, d], [N, d]; weights [B]; mask [B, N] (True: left out)."""
    import torch
    import torch.nn.functional as F

    scores = scale * (q @ docs.T)
    scores = scores.masked_fill(mask, float("-inf"))
    per_row = F.cross_entropy(scores, torch.arange(q.shape[0], device=q.device), reduction="none")
    return (per_row * weights).sum() / weights.sum().clamp_min(1e-12)


def steps_of(n_pairs: int, world: int, batch_size: int, epochs: int, max_steps: int | None) -> tuple[int, int]:
    """(steps per epoch, total steps)."""
    per_epoch = max(1, (n_pairs // world) // batch_size)
    return per_epoch, max_steps or epochs * per_epoch


# ---- the per-worker training loop ---------------------------------------------------------------

def _prompts(model: Any, cfg: dict[str, Any]) -> tuple[str, str]:
    """The query and document prefixes serving uses (embed.encoder.model_prompt), so training sees
    the texts the index and the search see. An explicit document prefix is already in the texts."""
    from shopgen.adapters.encoder import model_prompt

    doc = model_prompt(model, "document", "auto") if cfg["document_prefix"] == "auto" else ""
    return model_prompt(model, "query", cfg["query_prefix"]), doc


def _dual(st: Any) -> Any:
    """One module that embeds queries and documents in one forward call (DDP allows one per step)."""
    import torch
    import torch.nn.functional as F

    class Dual(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.st = st

        def forward(self, qf: dict, df: dict) -> tuple[Any, Any]:
            return (F.normalize(self.st(qf)["sentence_embedding"], dim=-1),
                    F.normalize(self.st(df)["sentence_embedding"], dim=-1))

    return Dual()


def progress(msg: str) -> None:
    """A progress line from a worker or task: on stderr, which Ray forwards to the driver's stderr
    (the driver's stdout carries --json). Written, not printed: Ray Train patches print in workers
    into its logger, which would show the line twice."""
    sys.stderr.write(f"[finetune-search] {msg}\n")
    sys.stderr.flush()


def _features(st: Any, texts: list[str], device: Any) -> dict[str, Any]:
    f = st.preprocess(texts)
    return {k: v.to(device) if hasattr(v, "to") else v for k, v in f.items()}


def _batch_loss(model: Any, st: Any, batch: list[dict[str, Any]], prompts: tuple[str, str], cfg: dict[str, Any],
                device: Any) -> Any:
    import torch

    qp, dp = prompts
    docs = [r["positive"] for r in batch] + [t for r in batch for t in r["negative_texts"]]
    doc_skus = [r["sku"] for r in batch] + [s for r in batch for s in r["negatives"]]
    q, d = model(_features(st, [qp + r["query"] for r in batch], device), _features(st, [dp + t for t in docs], device))
    mask = torch.tensor(excluded(batch, doc_skus), dtype=torch.bool, device=device)
    weights = torch.tensor([r["weight"] for r in batch], dtype=torch.float32, device=device)
    return info_nce(q, d, weights, mask, cfg["scale"])


def _save(st: Any, opt: Any, sched: Any, state: dict[str, Any], serve: dict[str, Any], train_len: int,
          out: str) -> None:
    """A checkpoint: the sentence-transformers folder as serving loads it (the base's own
    max_seq_length, and any prefix found by `auto` kept as the model's prompts, so the saved model
    is served with the prefixes it was trained with), the optimizer and the step."""
    st.max_seq_length = serve["max_seq_length"]
    for kind, prompt in serve["prompts"].items():
        if prompt and not (st.prompts or {}).get(kind):
            st.prompts = {**(st.prompts or {}), kind: prompt}
    st.save(os.path.join(out, "model"), create_model_card=False)
    st.max_seq_length = train_len
    worker.save_state(out, opt, sched, state)


def _load_encoder(cfg: dict[str, Any], ckpt_dir: str | None, device: Any) -> Any:
    """The SentenceTransformer of a checkpoint folder, or the base."""
    from shopgen.adapters.encoder import load_encoder

    return load_encoder(os.path.join(ckpt_dir, "model") if ckpt_dir else base_path(cfg), str(device))


def train_loop_per_worker(cfg: dict[str, Any]) -> None:
    import ray.train.torch as rtt
    import torch
    from transformers import get_linear_schedule_with_warmup

    rank, world, gpu, device = raysupport.train_worker(cfg)
    pairs = worker.read_rows(cfg)
    per_epoch, total = steps_of(len(pairs), world, cfg["batch_size"], cfg["epochs"], cfg["max_steps"])
    state, st, optim_state = worker.restore({"step": 0, "starts": 0}, lambda d: _load_encoder(cfg, d, device))
    prompts = _prompts(st, cfg)
    serve = {"max_seq_length": st.max_seq_length,
             "prompts": {"query": prompts[0] if cfg["query_prefix"] == "auto" else "", "document": prompts[1]}}
    st.max_seq_length = cfg["max_seq_len"]
    # Some weights take no part in a sentence embedding (e.g. BERT's pooler under mean pooling).
    model = rtt.prepare_model(_dual(st), parallel_strategy_kwargs={"find_unused_parameters": True})
    opt = torch.optim.AdamW(model.parameters(), lr=cfg["learning_rate"], weight_decay=cfg["weight_decay"])
    sched = get_linear_schedule_with_warmup(opt, int(cfg["warmup_ratio"] * total), total)
    worker.resume_optimizer(opt, sched, optim_state)
    model.train()
    step, resumed_from, t0, loss_sum, loss_n = state["step"], state["step"], time.perf_counter(), 0.0, 0
    while step < total:
        idx = shard_batch(len(pairs), step, per_epoch, cfg["batch_size"], rank, world, cfg["seed"])
        loss = _batch_loss(model, st, [pairs[j] for j in idx], prompts, cfg, device)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg["max_grad_norm"])
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        step, loss_sum, loss_n = step + 1, loss_sum + float(loss.detach()), loss_n + 1
        if step % cfg["log_every"] and step % cfg["checkpoint_every"] and step < total:
            continue
        secs = time.perf_counter() - t0
        metrics = {"step": step, "total_steps": total, "epoch": round(step / per_epoch, 3),
                   "train_loss": loss_sum / loss_n, "lr": sched.get_last_lr()[0], "resumed_from_step": resumed_from,
                   "starts": state["starts"], "pairs_per_s": (step - resumed_from) * len(idx) * world / secs}
        loss_sum, loss_n = 0.0, 0
        if rank == 0:
            progress(f"step {step}/{total}  loss {metrics['train_loss']:.4f}  {metrics['pairs_per_s']:.1f} pairs/s")
        saved = {**state, "step": step}
        ckpt = rank == 0 and (step % cfg["checkpoint_every"] == 0 or step == total)
        worker.report(metrics, (lambda d, s=saved: _save(st, opt, sched, s, serve, cfg["max_seq_len"], d))
                      if ckpt else None)


# ---- held-out evaluation ------------------------------------------------------------------------

def evaluate_embedder(model: Any, skus: list[str], texts: list[str], judgments: dict[str, dict[str, float]],
                      emb_cfg: Any, depth: int = EVAL_DEPTH) -> dict[str, Any]:
    """NDCG@10, recall@depth and MRR of brute-force cosine retrieval over the products, with the
    prefixes serving uses (embed.encoder.encode_queries / encode_documents)."""
    import numpy as np

    from indexing.evaluate import evaluate
    from shopgen.adapters.encoder import encode_documents, encode_queries

    docs = np.asarray(encode_documents(model, texts, emb_cfg))
    queries = list(judgments)
    scores = np.asarray(encode_queries(model, queries, emb_cfg)) @ docs.T
    ranked = {q: [skus[i] for i in np.argsort(-scores[n], kind="stable")[:depth]] for n, q in enumerate(queries)}
    res = evaluate(lambda q, size: ranked[q][:size], judgments, k=10, depth=depth)
    return {"n": res["queries"], "ndcg@10": res["ndcg@10"], f"recall@{depth}": res[f"recall@{depth}"],
            "mrr": res["mrr"], "skipped": res["skipped"]}


def heldout_eval(cfg: dict[str, Any], checkpoint: Any, skus: list[str], texts: list[str],
                 judgments: dict[str, dict[str, float]], emb_cfg: Any) -> dict[str, Any]:
    """Base and fine-tuned embedder on the same held-out queries (a Ray task, on a training node)."""
    import torch

    from shopgen.adapters.encoder import load_encoder

    gpu = bool(cfg["gpu"]) and torch.cuda.is_available()
    if not gpu:
        torch.set_num_threads(os.cpu_count() or 1)
    device = "cuda" if gpu else "cpu"
    out = {}
    progress(f"scoring the base: {len(texts)} products, {len(judgments)} held-out queries")
    out["base"] = evaluate_embedder(load_encoder(base_path(cfg), device), skus, texts, judgments, emb_cfg)
    progress("scoring the fine-tuned model")
    with checkpoint.as_directory() as d:
        out["finetuned"] = evaluate_embedder(load_encoder(os.path.join(d, "model"), device), skus, texts, judgments,
                                             emb_cfg)
    return out


# ---- the driver ---------------------------------------------------------------------------------

# Placement, progress and promotion choices: not what is trained (the run name's config hash).
PLACEMENT = ("workers", "gpu", "accelerator_type", "resources", "cpu_threads", "storage_path", "auto_promote",
             "max_failures", "log_every", "checkpoint_every")


def worker_config(settings: Settings, base: models.ModelRef, data_uri: str) -> dict[str, Any]:
    sf = settings.search_finetune
    return {**driver.worker_config(sf, settings, base, data_uri), "gpu": sf.gpu or bool(sf.accelerator_type),
            "query_prefix": settings.embedding.query_prefix, "document_prefix": settings.embedding.document_prefix}


def search_storage(settings: Settings) -> str:
    return str(settings.search_finetune.storage_path or (settings.home / "finetune-search").absolute())


def fit(settings: Settings, cfg: dict[str, Any], name: str) -> Any:
    """Run TorchTrainer; a run of this name already in storage resumes from its latest checkpoint."""
    return driver.fit(train_loop_per_worker, cfg, settings.search_finetune, name, search_storage(settings),
                      settings.s3, {"num_to_keep": 2})


def base_reference(base: str, settings: Settings) -> models.ModelRef:
    """--base: 'base' is models.embedder itself (never the promoted one); a registry version must be
    an embedder; an adapter is refused."""
    if base == "base":
        base = settings.models.embedder
    if VERSION_RE.match(base):
        try:
            kind = kind_of(Registry(settings.registry_uri, settings.s3).get(base))
        except KeyError:
            raise FileNotFoundError(f"model version {base!r} is not in registry {settings.registry_uri}") from None
        if kind != "embedder":
            raise ValueError(f"--base {base} is a {kind} version; fine-tune search from an embedder")
    plain = settings.model_copy(update={"models": settings.models.model_copy(update={"use_promoted": False})})
    return driver.resolve_base(base, plain, ", not a sentence-transformers model")


def _local_judgments(uri: str, settings: Settings, tmp: str) -> Path:
    if not storage.is_s3(uri):
        return Path(uri)
    p = Path(tmp, uri.rstrip("/").rsplit("/", 1)[-1])
    p.write_bytes(storage.read_bytes(uri, settings.s3))
    return p


def prepare(catalog: str, judgments: str, settings: Settings) -> dict[str, Any]:
    """Products and judgments -> the split, the training rows and their figures; a clear error
    when nothing is left to train on or to score."""
    from indexing.evaluate import load_judgments
    from shopgen.adapters.encoder import document_text
    from shopgen.catalog.load import load_catalog
    from shopgen.generate.engine import product_row

    sf = settings.search_finetune
    products, bad = load_catalog(catalog, settings.catalog, settings.s3)
    if not products:
        raise ValueError(f"no valid products in {catalog} ({len(bad)} invalid rows)")
    texts = {p.sku: document_text(product_row(p), settings.embedding) for p in products}
    with tempfile.TemporaryDirectory() as tmp:
        raw = load_judgments(_local_judgments(judgments, settings, tmp))
    kept, dropped = stdata.restrict(raw, texts)
    if not kept:
        raise ValueError(f"none of the {sum(len(j) for j in raw.values())} judgments in {judgments} names a "
                         f"product of {catalog} (e.g. {', '.join(dropped['unknown_sample'][:3])})")
    frac = sf.test_fraction if sf.test_fraction is not None else settings.search.heldout_fraction
    seed = sf.split_seed if sf.split_seed is not None else settings.search.split_seed
    splits = stdata.split_judgments(kept, frac, seed)
    lexical = stdata.Lexical(texts) if sf.hard_negatives else None
    pairs, negs = stdata.build_pairs(splits["train"], lexical, sf.hard_negatives, sf.negative_depth, sf.min_grade,
                                     sf.graded_negatives)
    stats = stdata.stats(kept, splits, pairs, negs, dropped, sf.min_grade) | {
        "products": len(products), "invalid_products": len(bad), "test_fraction": frac, "split_seed": seed}
    if len(pairs) < 2:
        raise ValueError(f"{len(pairs)} training pair(s) from {len(splits['train'])} training queries: need at "
                         f"least 2 (lower search_finetune.test_fraction or min_grade, or add judgments)")
    test = {q: j for q, j in splits["test"].items() if any(g > 0 for g in j.values())}
    if not test:
        raise ValueError(f"no held-out query with a relevant product among {len(kept)} queries: raise "
                         "search_finetune.test_fraction or add judgments")
    rows = [p.as_row(texts) for p in pairs]
    return {"rows": rows, "test": test, "skus": list(texts), "texts": list(texts.values()), "stats": stats,
            "data_hash": stdata.data_hash(rows)}


def _train_and_score(settings: Settings, cfg: dict[str, Any], name: str, d: dict[str, Any],
                     say: Any) -> tuple[Any, dict[str, Any], dict[str, Any], float]:
    """TorchTrainer, then the held-out scoring as a Ray task; (checkpoint, last metrics, metrics, seconds)."""
    sf = settings.search_finetune
    with driver.session(settings):
        import ray

        say(f"training on {sf.workers} {'GPU' if cfg['gpu'] else 'CPU'} worker(s), {len(d['rows'])} pairs, batch "
            f"{sf.batch_size}; run {name} (checkpoints under {search_storage(settings)}/{name})")
        t0 = time.time()
        result = fit(settings, cfg, name)
        train_s = time.time() - t0
        ckpt = driver.latest_checkpoint(result)
        say(f"scoring base and fine-tuned on {len(d['test'])} held-out queries over {len(d['skus'])} products")
        res = {"num_gpus": 1} if cfg["gpu"] else {"num_cpus": 1}
        task = ray.remote(**res)(heldout_eval)
        metrics = ray.get(task.remote(cfg, ckpt, d["skus"], d["texts"], d["test"], settings.embedding))
    return ckpt, result.metrics or {}, metrics, train_s


def run_search_finetune(catalog: str, judgments: str, settings: Settings, base: str = "base",
                        name: str | None = None, promote: bool | None = None, console: Any = None) -> dict[str, Any]:
    say = console.print if console else print
    sf, t_start = settings.search_finetune, time.time()
    base_ref = base_reference(base, settings)
    d = prepare(catalog, judgments, settings)
    st = d["stats"]
    name = name or driver.run_name("search", d["data_hash"], sf, base_ref.version, PLACEMENT)
    reg = Registry(settings.registry_uri, settings.s3)
    run_uri = f"{search_storage(settings)}/{name}"
    report: dict[str, Any] = {"run": name, "kind": "embedder", "catalog": catalog, "judgments": str(judgments),
                              "base": base_ref.ref, "base_version": base_ref.version, "data_hash": d["data_hash"],
                              "data": st, "registry": reg.uri, "storage": run_uri}
    done = driver.already_registered(reg, name, d["data_hash"], report, say)
    if done:
        return done
    if st["dropped_pairs"]:
        say(f"left out {st['dropped_pairs']} judgments naming {st['unknown_skus']} SKUs not in {catalog} "
            f"(e.g. {', '.join(st['unknown_sample'][:3])}); {st['dropped_queries']} queries had nothing else")
    say(f"data: {st['queries']} queries (train {st['by_split']['train']}, held out {st['by_split']['test']}), "
        f"{st['train_pairs']} training pairs over {st['products']} products; hard negatives: "
        + ", ".join(f"{n} {k.replace('_', '-')}" for k, n in st["hard_negatives"].items()))
    data_uri = f"{run_uri}/shopgen/pairs.parquet"
    driver.write_rows(data_uri, d["rows"], settings.s3)
    cfg = worker_config(settings, base_ref, data_uri)
    ckpt, last, metrics, train_s = _train_and_score(settings, cfg, name, d, say)
    passed, reasons = embedder_gate(metrics)
    version = new_version_id(name)
    with tempfile.TemporaryDirectory() as tmp:
        ckpt.to_directory(tmp)
        manifest = reg.register({"model": os.path.join(tmp, "model")}, {
            "version": version, "kind": "embedder", "run": name, "base": base_ref.ref,
            "base_version": base_ref.version, "method": "contrastive", "data_hash": d["data_hash"],
            "catalog": catalog, "judgments": str(judgments), "config": sf.model_dump(mode="json"), "data": st,
            "metrics": metrics, "gate": {"passed": passed, "reasons": reasons},
            "training": {k: last.get(k) for k in ("step", "total_steps", "epoch", "train_loss", "pairs_per_s",
                                                  "resumed_from_step", "starts")} | {"seconds": round(train_s, 1)}})
    promoted = driver.promote(reg, version, promote, sf.auto_promote)
    report.update(status="succeeded", version=version, model_version=models.resolve(version, settings).version,
                  metrics=metrics, gate=manifest["gate"], training=manifest["training"], promoted=promoted,
                  seconds=round(time.time() - t_start, 1))
    return driver.write_report(report, run_uri, settings.s3)
