"""The fine-tuning recipe: catalog -> pairs -> Ray Train (TorchTrainer, DDP) -> test-split eval of
base and fine-tuned -> model registry.

Workers read the pairs from the run's storage (local or s3://), each takes a deterministic shard,
and rank 0 checkpoints at every evaluation. A restarted worker group, or a re-run with the same
run name, resumes from the latest checkpoint; the best one (by finetune.select_metric) is
registered as a candidate version."""

from __future__ import annotations

import json
import os
import tempfile
import time
from typing import Any

from shopgen.adapters import models, raysupport, storage
from shopgen.adapters.registry import Registry, gate, new_version_id
from shopgen.core.config import Settings
from shopgen.finetune import data as sftdata
from shopgen.train import driver, worker
from shopgen.train.driver import scaling as scaling  # re-exported: callers import it from here
from shopgen.train.worker import base_path, shard_batch

IGNORE = -100
# Where and how a run goes, and whether it is promoted: not what is trained (the run name's config hash).
PLACEMENT = ("workers", "gpu", "cpu_threads", "storage_path", "auto_promote", "max_failures", "keep_checkpoints")


# ---- pure helpers ------------------------------------------------------------------------------

def encode(tok: Any, row: dict[str, Any], max_len: int) -> tuple[list[int], list[int]] | None:
    """Token ids and labels: the loss falls on the target (and its end-of-turn token) only."""
    prompt = tok.apply_chat_template(json.loads(row["messages"]), tokenize=False, add_generation_prompt=True)
    p_ids = tok(prompt, add_special_tokens=False)["input_ids"]
    t_ids = tok(row["target"] + tok.eos_token, add_special_tokens=False)["input_ids"]
    ids, labels = (p_ids + t_ids)[:max_len], ([IGNORE] * len(p_ids) + t_ids)[:max_len]
    return (ids, labels) if any(x != IGNORE for x in labels[1:]) else None


def collate(batch: list[tuple[list[int], list[int]]], pad_id: int) -> dict[str, Any]:
    import torch

    n = max(len(ids) for ids, _ in batch)
    ids = torch.full((len(batch), n), pad_id, dtype=torch.long)
    labels = torch.full((len(batch), n), IGNORE, dtype=torch.long)
    att = torch.zeros((len(batch), n), dtype=torch.long)
    for i, (x, y) in enumerate(batch):
        ids[i, :len(x)], labels[i, :len(y)], att[i, :len(x)] = torch.tensor(x), torch.tensor(y), 1
    return {"input_ids": ids, "attention_mask": att, "labels": labels}


def learning_rate(ft) -> float:
    return ft.learning_rate or (2e-4 if ft.method == "lora" else 2e-5)


def better(new: float, best: float | None, metric: str) -> bool:
    return best is None or (new < best if metric == "val_loss" else new > best)


# ---- the per-worker training loop ---------------------------------------------------------------

def _load_model(cfg: dict[str, Any], ckpt_dir: str | None, gpu: bool) -> Any:
    import torch
    from transformers import AutoModelForCausalLM

    if cfg["method"] == "full":
        src = os.path.join(ckpt_dir, "model") if ckpt_dir else base_path(cfg)
        return AutoModelForCausalLM.from_pretrained(src, dtype=torch.float32)
    from peft import LoraConfig, PeftModel, get_peft_model

    # LoRA keeps frozen base weights in bf16 on GPU; the adapter stays fp32 (peft's default).
    base = AutoModelForCausalLM.from_pretrained(base_path(cfg), dtype=torch.bfloat16 if gpu else torch.float32)
    if ckpt_dir:
        return PeftModel.from_pretrained(base, os.path.join(ckpt_dir, "adapter"), is_trainable=True)
    return get_peft_model(base, LoraConfig(r=cfg["lora_r"], lora_alpha=cfg["lora_alpha"],
                                           lora_dropout=cfg["lora_dropout"], target_modules=cfg["target_modules"],
                                           task_type="CAUSAL_LM"))


def _save(unwrapped: Any, tok: Any, opt: Any, sched: Any, state: dict, cfg: dict, out: str) -> None:
    if cfg["method"] == "lora":
        unwrapped.peft_config["default"].base_model_name_or_path = cfg["base_ref"]
        unwrapped.save_pretrained(os.path.join(out, "adapter"))
    else:
        unwrapped.save_pretrained(os.path.join(out, "model"))
        tok.save_pretrained(os.path.join(out, "model"))
    worker.save_state(out, opt, sched, state)


def _splits(cfg: dict[str, Any], tok: Any) -> tuple[list, list, list[dict[str, Any]]]:
    """Encoded train and val pairs, and the val rows whose generations are scored."""
    rows = worker.read_rows(cfg)
    train = [e for e in (encode(tok, r, cfg["max_seq_len"]) for r in rows if r["split"] == "train") if e]
    val_rows = sorted((r for r in rows if r["split"] == "val"), key=lambda r: (r["sku"], r["content"]))
    val = [e for e in (encode(tok, r, cfg["max_seq_len"]) for r in val_rows) if e]
    return train, val, val_rows[:cfg["eval_samples"]]


def _val_loss(model: Any, mine: list, bs: int, pad_id: int, to_dev: Any, reduce_sum: Any, gpu: bool) -> float:
    """Token-weighted validation loss over every worker's share (`mine`: this worker's pairs)."""
    import torch

    tot = cnt = 0.0
    model.eval()
    with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16, enabled=gpu):
        for i in range(0, len(mine), bs):
            b = to_dev(collate(mine[i:i + bs], pad_id))
            n = float((b["labels"][:, 1:] != IGNORE).sum())
            tot += float(model(**b).loss) * n
            cnt += n
    model.train()
    tot, cnt = reduce_sum(tot, cnt)
    return tot / cnt if cnt else float("nan")


def _record(state: dict[str, Any], score: float, step: int, cfg: dict[str, Any]) -> bool:
    """Early stopping: updates the best score; True when patience has run out."""
    stop = False
    if better(score, state["best"], cfg["select_metric"]):
        state.update(best=score, best_step=step, bad_evals=0)
    else:
        state["bad_evals"] += 1
        stop = state["bad_evals"] >= cfg["patience"]
    state["step"] = step
    return stop


def _optimizer_step(model: Any, b: dict, params: list, opt: Any, sched: Any, max_grad_norm: float,
                    gpu: bool) -> tuple[Any, float]:
    """One forward/backward/update (bf16 autocast on GPU); the loss and its wall seconds."""
    import torch

    t0 = time.perf_counter()
    with torch.autocast("cuda", dtype=torch.bfloat16, enabled=gpu):
        loss = model(**b).loss
    loss.backward()
    torch.nn.utils.clip_grad_norm_(params, max_grad_norm)
    opt.step()
    sched.step()
    opt.zero_grad(set_to_none=True)
    if gpu:
        torch.cuda.synchronize()
    return loss, time.perf_counter() - t0


def train_loop_per_worker(cfg: dict[str, Any]) -> None:
    import ray.train.torch as rtt
    import torch
    import torch.distributed as dist
    from transformers import AutoTokenizer, get_cosine_schedule_with_warmup

    from shopgen.finetune.evaluate import evaluate_rows

    rank, world, gpu, device = raysupport.train_worker(cfg)
    tok = AutoTokenizer.from_pretrained(base_path(cfg))
    pad_id = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    train, val, sample = _splits(cfg, tok)
    bs = cfg["batch_size"]
    steps_per_epoch = max(1, (len(train) // world) // bs)
    total = cfg["max_steps"] or cfg["epochs"] * steps_per_epoch
    fresh = {"step": 0, "best": None, "best_step": None, "bad_evals": 0, "starts": 0}
    state, model, optim_state = worker.restore(fresh, lambda d: _load_model(cfg, d, gpu))
    resumed_from = state["step"]
    model = rtt.prepare_model(model, parallel_strategy_kwargs={"find_unused_parameters": False})
    unwrapped = model.module if hasattr(model, "module") else model
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg["lr"], weight_decay=cfg["weight_decay"])
    sched = get_cosine_schedule_with_warmup(opt, int(cfg["warmup_ratio"] * total), total)
    worker.resume_optimizer(opt, sched, optim_state)

    def to_dev(b: dict) -> dict:
        return {k: v.to(device) for k, v in b.items()}

    def reduce_sum(*vals: float) -> list[float]:
        t = torch.tensor(vals, dtype=torch.float64, device=device if gpu else "cpu")
        if world > 1:
            dist.all_reduce(t)
        return t.tolist()

    model.train()
    step, stop = state["step"], False
    tok_n = train_s = loss_sum = loss_n = 0.0
    while step < total and not stop:
        idx = shard_batch(len(train), step, steps_per_epoch, bs, rank, world, cfg["seed"])
        b = to_dev(collate([train[j] for j in idx], pad_id))
        loss, secs = _optimizer_step(model, b, params, opt, sched, cfg["max_grad_norm"], gpu)
        train_s += secs
        tok_n += float(b["attention_mask"].sum())
        loss_sum, loss_n = loss_sum + float(loss.detach()), loss_n + 1
        step += 1
        if step % cfg["eval_every"] and step < total:
            continue
        metrics: dict[str, Any] = {"step": step, "epoch": round(step / steps_per_epoch, 3),
                                   "train_loss": loss_sum / max(1, loss_n),
                                   "val_loss": _val_loss(unwrapped, val[rank::world], bs, pad_id, to_dev, reduce_sum, gpu),
                                   "lr": sched.get_last_lr()[0], "resumed_from_step": resumed_from,
                                   "starts": state["starts"]}
        toks, secs = reduce_sum(tok_n, train_s)
        metrics["tokens_per_s"] = toks / (secs / world) if secs else 0.0
        if rank == 0 and sample:
            metrics.update({k: v for k, v in evaluate_rows(unwrapped, tok, sample, cfg["max_new_tokens"]).items()
                            if k != "n"})
        score = metrics.get(cfg["select_metric"], metrics["val_loss"])
        if world > 1:  # rank 0's generation metrics decide for everyone
            t = torch.tensor([score], dtype=torch.float64, device=device if gpu else "cpu")
            dist.broadcast(t, 0)
            score = float(t[0])
        stop = _record(state, score, step, cfg)
        metrics.update(best_step=state["best_step"], stopped_early=stop)
        loss_sum = loss_n = 0.0
        worker.report(metrics, (lambda d: _save(unwrapped, tok, opt, sched, state, cfg, d)) if rank == 0 else None)


# ---- the driver ---------------------------------------------------------------------------------

def worker_config(settings: Settings, base: models.ModelRef, data_uri: str) -> dict[str, Any]:
    ft = settings.finetune
    if ft.select_metric == "rouge_l" and not ft.eval_samples:
        raise ValueError("finetune.select_metric rouge_l needs finetune.eval_samples > 0")
    return {**driver.worker_config(ft, settings, base, data_uri), "base_ref": base.ref, "lr": learning_rate(ft)}


def fit(settings: Settings, cfg: dict[str, Any], name: str) -> Any:
    """Run TorchTrainer; a run of this name already in storage resumes from its latest checkpoint."""
    ft = settings.finetune
    keep = {"num_to_keep": ft.keep_checkpoints, "checkpoint_score_attribute": ft.select_metric,
            "checkpoint_score_order": "min" if ft.select_metric == "val_loss" else "max"}
    return driver.fit(train_loop_per_worker, cfg, ft, name, settings.finetune_storage, settings.s3, keep)


def _test_eval(cfg: dict[str, Any], checkpoint: Any, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Base and fine-tuned model on the same test rows, greedy decoding."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from shopgen.finetune.evaluate import evaluate_rows

    gpu = bool(cfg["gpu"]) and torch.cuda.is_available()
    if not gpu:
        torch.set_num_threads(os.cpu_count() or 1)
    device = "cuda" if gpu else "cpu"
    dtype = torch.bfloat16 if gpu else torch.float32
    tok = AutoTokenizer.from_pretrained(base_path(cfg))
    base = AutoModelForCausalLM.from_pretrained(base_path(cfg), dtype=dtype).to(device)
    out = {"base": evaluate_rows(base, tok, rows, cfg["max_new_tokens"])}
    with checkpoint.as_directory() as d:
        if cfg["method"] == "lora":
            from peft import PeftModel

            tuned = PeftModel.from_pretrained(base, os.path.join(d, "adapter"))
        else:
            del base
            tuned = AutoModelForCausalLM.from_pretrained(os.path.join(d, "model"), dtype=dtype).to(device)
        out["finetuned"] = evaluate_rows(tuned, tok, rows, cfg["max_new_tokens"])
    return out


def write_examples(uri: str, examples: list[sftdata.Example], settings: Settings) -> None:
    driver.write_rows(uri, [e.as_row() for e in examples], settings.s3)


def accepted_copy(state: str, settings: Settings, products: list[Any]) -> dict[str, dict[str, dict[str, Any]]]:
    """sku -> content type -> the fields of the copy the gate accepted in earlier nightly runs, read
    from a nightly state prefix, for the products whose facts are unchanged since (content hash)."""
    from shopgen import state as st8
    from shopgen.core.records import content_hash
    from shopgen.generate.engine import TYPE_FIELDS

    store = st8.StateStore(state, settings.s3)
    if not store.exists("skus.parquet"):
        raise FileNotFoundError(f"--from-accepted {state}: no nightly state there (skus.parquet); run "
                                "`shopgen nightly` first, and name its state prefix (<workdir>/state/<alias>)")
    rows = st8.load_state(store)
    hashes = {p.sku: content_hash(p) for p in products}
    entries = {sku: st8.copy_entries(rows[sku]) for sku in hashes
               if sku in rows and rows[sku].get("content_hash") == hashes[sku]}
    fields = {t: [n for n, _ in fs] for t, fs in TYPE_FIELDS.items()}
    copy = {sku: split_copy(f) for sku, f in st8.read_copy(store, entries, fields).items()}
    return without_rejected(copy, store, settings, hashes)


def without_rejected(copy: dict[str, dict[str, dict[str, Any]]], store: Any, settings: Settings,
                     hashes: dict[str, str]) -> dict[str, dict[str, dict[str, Any]]]:
    """Accepted copy as people left it on the review page: a text they rejected is no target, and
    a text they edited is the edit (shopgen.review.night.overlay, as the document shows it)."""
    from shopgen.review.night import load_review, overlay

    review = load_review(store, settings.review.store)
    if not review.human:
        return copy
    out = {}
    for sku, types in copy.items():
        names = {t: list(f) for t, f in types.items()}
        flat, _ = overlay(sku, hashes.get(sku), {k: v for f in types.values() for k, v in f.items()}, names, review)
        kept = {t: {n: flat.get(n) for n in ns} for t, ns in names.items()}
        out[sku] = {t: f for t, f in kept.items() if all(v not in (None, [], "") for v in f.values())}
    return out


def split_copy(fields: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """A product's accepted output fields (as read_copy returns them) -> per content type."""
    from shopgen.generate.engine import TYPE_FIELDS

    out = {t: {n: fields[n] for n, _ in fs if fields.get(n) not in (None, [], "")} for t, fs in TYPE_FIELDS.items()}
    return {t: f for t, f in out.items() if len(f) == len(TYPE_FIELDS[t])}


def training_pairs(catalog: str, settings: Settings, limit: int | None,
           accepted: dict[str, dict[str, dict[str, Any]]] | None = None) -> tuple[list[Any], list[Any], dict[str, Any]]:
    """The training pairs from finetune.sources (valid products, kept pairs, their figures); a
    clear error when a split is empty. accepted: sku -> type -> fields, for the accepted source."""
    from shopgen.catalog.load import load_catalog
    from shopgen.generate.stage import gate_spec

    ft = settings.finetune
    products, bad = load_catalog(catalog, settings.catalog, settings.s3, limit)
    gate = gate_spec(settings, sorted({p.brand for p in products if p.brand}))
    split = dict(val_fraction=ft.val_fraction, test_fraction=ft.test_fraction, seed=ft.split_seed,
                 variant_keys=settings.related.variant_keys, prompt=ft.prompt, gate=gate)
    examples = sftdata.build_examples(products, ft.content, **split) if "catalog" in ft.sources else []
    if "accepted" in ft.sources:
        if accepted is None:
            if not ft.accepted_state:
                raise ValueError("finetune.sources has 'accepted' but no state: give --from-accepted STATE "
                                 "or finetune.accepted_state")
            accepted = accepted_copy(ft.accepted_state, settings, products)
        examples += sftdata.accepted_examples(products, accepted, ft.content, **split)
    if ft.reviewed:
        from shopgen.finetune.reviewed import read_rows, reviewed_examples

        examples += reviewed_examples(read_rows(ft.reviewed, settings.s3), ft.content,
                                      **{k: v for k, v in split.items() if k != "gate"})
    examples = sftdata.dedupe(examples)
    kept = sftdata.keep(examples, ft.unsupported)
    stats = sftdata.stats(len(products), examples, kept, ft.content, ft.prompt)
    stats["invalid_products"] = len(bad)
    stats["sources"] = list(ft.sources)
    if stats["by_split"]["train"] and not stats["by_split"]["val"]:
        raise ValueError(f"no validation pairs among {stats['kept']}: raise finetune.val_fraction or add products "
                         "(evaluation and early stopping need a validation split)")
    if not stats["by_split"]["train"]:
        raise ValueError(f"no training pairs: {len(products)} valid products, {stats['pairs']} with a "
                         f"{'/'.join(ft.content)} target from {'/'.join(ft.sources)}, {stats['dropped']} dropped "
                         "by the gate")
    return products, kept, stats


def trained_types(kept: list[Any], content: list[str]) -> list[str]:
    return [t for t in content if any(e.content == t and e.split == "train" for e in kept)]


def held_out_products(products: list[Any], settings: Settings) -> list[Any]:
    """The held-out products the serving evaluation generates for (at most finetune.test_samples)."""
    ft = settings.finetune
    held = [p for p in products if sftdata.product_split(p, ft.val_fraction, ft.test_fraction, ft.split_seed,
                                                         settings.related.variant_keys) == "test"]
    return sorted(held, key=lambda p: p.sku)[:ft.test_samples]


def run_finetune(catalog: str, settings: Settings, base: str = "base", name: str | None = None,
                 limit: int | None = None, promote: bool | None = None, console: Any = None,
                 accepted: dict[str, dict[str, dict[str, Any]]] | None = None) -> dict[str, Any]:
    """accepted: sku -> type -> fields of gate-accepted copy, given directly (a benchmark's own
    rounds) instead of read from finetune.accepted_state."""
    say = console.print if console else print
    ft = settings.finetune
    t_start = time.time()
    products, kept, stats = training_pairs(catalog, settings, limit, accepted)
    base_ref = driver.resolve_base(base, settings, "; fine-tune from a base or merged model")
    dh = sftdata.data_hash(kept)
    name = name or driver.run_name("run", dh, ft, base_ref.version, PLACEMENT)
    reg = Registry(settings.registry_uri, settings.s3)
    report: dict[str, Any] = {"run": name, "catalog": catalog, "base": base_ref.ref, "base_version": base_ref.version,
                              "method": ft.method, "data_hash": dh, "data": stats, "registry": reg.uri,
                              "storage": f"{settings.finetune_storage}/{name}"}
    done = driver.already_registered(reg, name, dh, report, say)
    if done:
        return done
    say(f"data: {stats['kept']} pairs from {len(products)} products (train {stats['by_split']['train']}, "
        f"val {stats['by_split']['val']}, test {stats['by_split']['test']}; catalog {stats['by_source']['catalog']}, "
        f"accepted {stats['by_source']['accepted']}; dropped {stats['dropped']} by the gate)")
    run_uri = f"{settings.finetune_storage}/{name}"
    data_uri = f"{run_uri}/shopgen/examples.parquet"
    write_examples(data_uri, kept, settings)
    cfg = worker_config(settings, base_ref, data_uri)
    test_rows = sorted((e.as_row() for e in kept if e.split == "test"), key=lambda r: (r["sku"], r["content"]))
    with driver.session(settings):
        say(f"training {ft.method} on {ft.workers} {'GPU' if ft.gpu else 'CPU'} worker(s); run {name} "
            f"(checkpoints under {run_uri})")
        t0 = time.time()
        result = fit(settings, cfg, name)
        train_s = time.time() - t0
        ckpt, best = driver.best_checkpoint(result, ft.select_metric, ft.select_metric == "val_loss", "val_loss")
        last = result.metrics or {}
        metrics, samples = _evaluate(settings, cfg, ckpt, best, base_ref, products, kept,
                                     test_rows[:ft.test_samples], say)
    passed, reasons = gate(metrics)
    version = new_version_id(name)
    with tempfile.TemporaryDirectory() as tmp:
        ckpt.to_directory(tmp)
        folders = {k: os.path.join(tmp, k) for k in ("adapter", "model") if os.path.isdir(os.path.join(tmp, k))}
        if ft.merge and "adapter" in folders:
            folders["merged"] = _merge(models.materialize(base_ref, settings).path, folders["adapter"],
                                       os.path.join(tmp, "merged"))
        manifest = reg.register(folders, {
            "version": version, "run": name, "base": base_ref.ref, "base_version": base_ref.version,
            "method": ft.method, "data_hash": dh, "catalog": catalog, "config": ft.model_dump(mode="json"),
            # The prompt the model was trained on, and so is served with (models.resolve -> ModelRef.prompt).
            "prompt": ft.prompt,
            "data": stats, "metrics": metrics, "gate": {"passed": passed, "reasons": reasons},
            "training": {k: best.get(k) for k in ("step", "epoch", "val_loss", "train_loss", "rouge_l",
                                                  "attribute_coverage", "unsupported_rate")}
                        | {"final_step": last.get("step"), "tokens_per_s": last.get("tokens_per_s"),
                           "resumed_from_step": last.get("resumed_from_step"), "starts": last.get("starts"),
                           "stopped_early": last.get("stopped_early"), "seconds": round(train_s, 1)},
        })
    promoted = driver.promote(reg, version, promote, ft.auto_promote)
    report.update(status="succeeded", version=version, metrics=metrics, gate=manifest["gate"],
                  training=manifest["training"], promoted=promoted, seconds=round(time.time() - t_start, 1))
    if samples:  # every sample the evaluation served, for reading (and for a copy audit)
        storage.write_bytes(f"{run_uri}/shopgen/eval_samples.jsonl",
                            "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in samples).encode(), settings.s3)
        report["eval_samples"] = f"{run_uri}/shopgen/eval_samples.jsonl"
    return driver.write_report(report, run_uri, settings.s3)


def _evaluate(settings: Settings, cfg: dict[str, Any], ckpt: Any, best: dict[str, Any], base_ref: Any,
              products: list[Any], kept: list[Any], test_rows: list[dict[str, Any]],
              say: Any) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The best checkpoint and the base on held-out products, in a Ray task: through the serving
    path (finetune.eval=serving), or greedy transformers output on the test pairs (hf).
    Returns (metrics, every served sample)."""
    import ray

    ft = settings.finetune
    res = {"num_gpus": 1} if ft.gpu else {"num_cpus": 1}
    if ft.eval == "serving":
        from shopgen.finetune.serving import eval_checkpoint

        types, held = trained_types(kept, ft.content), held_out_products(products, settings)
        say(f"best checkpoint at step {best.get('step')}; serving base and fine-tuned through vLLM (grammar, "
            f"best-of-n, gate) on {len(held)} test products: {', '.join(types)}")
        figs = ray.get(ray.remote(**res)(eval_checkpoint).remote(
            settings, base_ref, ckpt, ft.method, ft.prompt, held, products, types)) if held else {}
        samples = figs.pop("samples", [])
        return {"eval": "serving", "types": types, "products": len(held), **figs}, samples
    say(f"best checkpoint at step {best.get('step')} ({ft.select_metric} "
        f"{best.get(ft.select_metric, best.get('val_loss')):.4f}); scoring base and fine-tuned on "
        f"{len(test_rows)} test pairs (greedy transformers output)")
    metrics = ray.get(ray.remote(**res)(_test_eval).remote(cfg, ckpt, test_rows)) if test_rows else {}
    return {**metrics, "eval": "hf"}, []


def _merge(base_path: str, adapter_dir: str, out: str) -> str:
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(base_path, dtype=torch.bfloat16)
    PeftModel.from_pretrained(model, adapter_dir).merge_and_unload().save_pretrained(out)
    AutoTokenizer.from_pretrained(base_path).save_pretrained(out)
    return out
