"""Training throughput: shopgen's Ray Train loop against a raw single-process PEFT loop, same model,
same pairs, same batches, measured side by side in one run; then shopgen with 2 workers (DDP).

    python bench/finetune.py [--steps 6] [--batch-size 4] [--method lora|full] [--catalog PATH] [--json]

A third measurement runs the raw loop itself inside a 1-worker TorchTrainer, which separates what
Ray's processes cost on a small machine from what shopgen's loop costs (ratio_vs_raw_in_ray_train).
tok/s counts the non-padding tokens of each batch over the time spent in the training steps
(forward, backward, optimizer), in both loops; wall-clock seconds (with Ray and model start-up) are
printed too. The last line with --json is one JSON object (shopgen_tok_s, raw_tok_s, ratio_vs_raw)."""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def raw_loop(base_path: str, rows: list[dict], steps: int, bs: int, cfg: dict) -> dict:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from shopgen.finetune.recipe import collate, encode
    from shopgen.train.worker import shard_batch

    t_wall = time.perf_counter()
    torch.set_num_threads(os.cpu_count() or 1)
    torch.manual_seed(cfg["seed"])
    tok = AutoTokenizer.from_pretrained(base_path)
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    train = [e for e in (encode(tok, r, cfg["max_seq_len"]) for r in rows if r["split"] == "train") if e]
    model = AutoModelForCausalLM.from_pretrained(base_path, dtype=torch.float32)
    if cfg["method"] == "lora":
        model = get_peft_model(model, LoraConfig(r=cfg["lora_r"], lora_alpha=cfg["lora_alpha"],
                                                 lora_dropout=cfg["lora_dropout"],
                                                 target_modules=cfg["target_modules"], task_type="CAUSAL_LM"))
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg["lr"])
    model.train()
    spe = max(1, len(train) // bs)
    toks = secs = 0.0
    for step in range(steps):
        b = collate([train[j] for j in shard_batch(len(train), step, spe, bs, 0, 1, cfg["seed"])], pad)
        t0 = time.perf_counter()
        loss = model(**b).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, cfg["max_grad_norm"])
        opt.step()
        opt.zero_grad(set_to_none=True)
        secs += time.perf_counter() - t0
        toks += float(b["attention_mask"].sum())
    return {"tok_s": toks / secs, "wall_s": time.perf_counter() - t_wall}


def _raw_in_worker(config: dict) -> None:
    import ray.train

    r = raw_loop(config["base_path"], config["rows"], config["steps"], config["bs"], config["cfg"])
    with tempfile.TemporaryDirectory() as d:  # Result.metrics holds only metrics reported with a checkpoint
        Path(d, "tok_s.json").write_text(json.dumps(r))
        ray.train.report({"tokens_per_s": r["tok_s"]}, checkpoint=ray.train.Checkpoint.from_directory(d))


def raw_in_ray_train(settings, base_path: str, rows: list[dict], steps: int, bs: int, cfg: dict) -> dict:
    """The same raw loop inside a 1-worker TorchTrainer: separates Ray's cost from shopgen's loop."""
    from ray.train import RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    from shopgen.train.driver import worker_env

    t0 = time.perf_counter()
    result = TorchTrainer(_raw_in_worker, train_loop_config=dict(base_path=base_path, rows=rows, steps=steps, bs=bs,
                                                                 cfg=cfg),
                          scaling_config=ScalingConfig(num_workers=1),
                          run_config=RunConfig(name="bench-raw", storage_path=settings.finetune_storage,
                                               worker_runtime_env=worker_env(cfg["threads"]))).fit()
    return {"tok_s": result.metrics["tokens_per_s"], "wall_s": time.perf_counter() - t0}


def shopgen_loop(settings, base, data_uri: str, workers: int, name: str) -> dict:
    from shopgen.finetune.recipe import fit, worker_config

    s = settings.model_copy(update={"finetune": settings.finetune.model_copy(update={"workers": workers})})
    t0 = time.perf_counter()
    result = fit(s, worker_config(s, base, data_uri), name)
    return {"tok_s": result.metrics["tokens_per_s"], "wall_s": time.perf_counter() - t0}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--catalog", default=str(ROOT / "data" / "sample_catalog.jsonl"))
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--method", choices=["lora", "full"], default="lora")
    ap.add_argument("--no-scaling", action="store_true", help="skip the 2-worker run")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    from shopgen.adapters import models
    from shopgen.catalog.load import load_catalog
    from shopgen.core.config import load_settings
    from shopgen.finetune import data as sftdata
    from shopgen.finetune.recipe import worker_config, write_examples
    from shopgen.train.driver import session

    tmp = tempfile.mkdtemp(prefix="bench-ft-")
    settings = load_settings(models={"cache_dir": str(ROOT / ".shopgen" / "models")}, home=tmp)
    settings = settings.model_copy(update={"finetune": settings.finetune.model_copy(update=dict(
        method=a.method, max_steps=a.steps, batch_size=a.batch_size, eval_every=a.steps + 1, eval_samples=0,
        storage_path=f"{tmp}/ft"))})
    products, _ = load_catalog(a.catalog)
    kept = sftdata.keep(sftdata.build_examples(products, settings.finetune.content))
    base = models.resolve("base", settings)
    data_uri = f"{tmp}/examples.parquet"
    write_examples(data_uri, kept, settings)
    cfg = worker_config(settings, base, data_uri)
    rows = [e.as_row() for e in kept]

    # The raw loop runs in its own process: left in this one, its model and thread pool slowed the
    # Ray side that follows by ~30% on 2 cores.
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(1, mp_context=mp.get_context("spawn")) as pool:
        raw = pool.submit(raw_loop, models.materialize(base, settings).path, rows, a.steps, a.batch_size, cfg).result()
    with session(settings):
        one = shopgen_loop(settings, base, data_uri, 1, "bench-1w")
        raw_ray = raw_in_ray_train(settings, models.materialize(base, settings).path, rows, a.steps, a.batch_size, cfg)
        two = None if a.no_scaling else shopgen_loop(settings, base, data_uri, 2, "bench-2w")
    out = {"bench": "finetune", "method": a.method, "model": base.version, "steps": a.steps,
           "batch_size_per_worker": a.batch_size, "train_pairs": sum(r["split"] == "train" for r in rows),
           "cpus": os.cpu_count(),
           "raw_tok_s": round(raw["tok_s"], 1), "shopgen_tok_s": round(one["tok_s"], 1),
           "ratio_vs_raw": round(one["tok_s"] / raw["tok_s"], 3),
           "raw_in_ray_train_tok_s": round(raw_ray["tok_s"], 1),
           "ratio_vs_raw_in_ray_train": round(one["tok_s"] / raw_ray["tok_s"], 3),
           "wall_s": {"raw": round(raw["wall_s"], 1), "shopgen_1w": round(one["wall_s"], 1),
                      "raw_in_ray_train": round(raw_ray["wall_s"], 1)}}
    if two:
        out.update(shopgen_2w_tok_s=round(two["tok_s"], 1), scaling_2w_vs_1w=round(two["tok_s"] / one["tok_s"], 3))
        out["wall_s"]["shopgen_2w"] = round(two["wall_s"], 1)
    print(f"raw PEFT loop      {out['raw_tok_s']:>8} tok/s")
    print(f"raw loop in a Ray Train worker {out['raw_in_ray_train_tok_s']:>8} tok/s")
    print(f"shopgen, 1 worker  {out['shopgen_tok_s']:>8} tok/s  ratio vs raw {out['ratio_vs_raw']}, "
          f"vs the raw loop in Ray Train {out['ratio_vs_raw_in_ray_train']}")
    if two:
        print(f"shopgen, 2 workers {out['shopgen_2w_tok_s']:>8} tok/s  scaling vs 1 worker {out['scaling_2w_vs_1w']}")
    if a.json:
        print(json.dumps(out))


if __name__ == "__main__":
    main()
