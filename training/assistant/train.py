"""Train the assistant, LLaVA's two stages, on accelerate (CPU or GPU; also plain python).

Stage ``align`` (stage1_align.yaml): the language model is frozen and has no adapter; only
the modality projectors learn, from (image or spectrum -> caption) examples.
Stage ``instruct`` (stage2_lora.yaml): LoRA adapters (peft) on the attention projections
and the projectors learn from retrieval-grounded question-answer examples; the loss is on
the answer tokens only.

Each stage writes its run folder: the saved model (config.json + projector.safetensors
[+ adapter/]), ``log.jsonl`` (one line per step), ``loss.png`` and ``metrics.json`` (validation
loss; for stage 2 also greedy answers on validation questions: exact answers and facts
stated). Stage 2 can copy the result to the shipped folder (``ship:``).

    accelerate launch training/assistant/train.py --config training/assistant/stage1_align.yaml
    accelerate launch training/assistant/train.py --config training/assistant/stage2_lora.yaml
"""

from __future__ import annotations

import argparse
import json
import math
import random
import shutil
import sys
import time
from pathlib import Path

import torch
import yaml
from tqdm.auto import tqdm

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from astrovlm.assistant.model import IGNORE_INDEX, AssistantConfig, AstroLlava  # noqa: E402


def load_config(path: str | Path, overrides: list[str]) -> dict:
    cfg = yaml.safe_load(Path(path).read_text())
    for item in overrides:  # --set train.epochs=2
        key, _, value = item.partition("=")
        node = cfg
        *parents, last = key.split(".")
        for k in parents:
            node = node.setdefault(k, {})
        node[last] = yaml.safe_load(value)
    return cfg


def rel(path) -> Path:
    path = Path(path)
    return path if path.is_absolute() else ROOT / path


def read_examples(path: Path, limit: int | None = None) -> list[dict]:
    rows = [json.loads(line) for line in open(path, encoding="utf-8") if line.strip()]
    return rows[:limit] if limit else rows


def read_files(data_dir: Path, names, limit: int | None, modalities=None) -> list[dict]:
    """The examples of one file or a list of files; with ``modalities``, only those with an
    attachment of one of them (the examples a projector learns from)."""
    rows = []
    for name in [names] if isinstance(names, str) else names:
        rows += read_examples(data_dir / name)
    if modalities:
        rows = [ex for ex in rows if set(ex.get("features") or {}) & set(modalities)]
    return rows[:limit] if limit else rows


def encode(model: AstroLlava, ex: dict, max_len: int) -> dict | None:
    ids, labels = model.training_example(ex["messages"], ex["answer"])
    if len(ids) > max_len:
        return None  # a prompt past the budget: better dropped than cut in the middle of a context
    return {"ids": ids, "labels": labels, "features": ex.get("features") or {}}


def batches(items: list[dict], size: int, rng: random.Random) -> list[list[dict]]:
    """Length-grouped batches (similar lengths together: less padding), in random order."""
    order = items[:]
    rng.shuffle(order)
    out = []
    group = size * 16
    for i in range(0, len(order), group):
        chunk = sorted(order[i:i + group], key=lambda e: len(e["ids"]))
        out += [chunk[j:j + size] for j in range(0, len(chunk), size)]
    rng.shuffle(out)
    return out


def collate(batch: list[dict], pad_id: int, modalities) -> dict:
    """Left padding: every answer ends at the last column, so the loss needs only the
    logits of the last few positions."""
    width = max(len(e["ids"]) for e in batch)
    ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    labels = torch.full((len(batch), width), IGNORE_INDEX, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for i, e in enumerate(batch):
        n = len(e["ids"])
        ids[i, width - n:] = torch.tensor(e["ids"])
        labels[i, width - n:] = torch.tensor(e["labels"])
        mask[i, width - n:] = 1
    feats = {}
    for m in modalities:
        rows = [e["features"][m] for e in batch if m in e["features"]]
        if rows:
            feats[m] = torch.tensor(rows, dtype=torch.float32)
    return {"input_ids": ids, "labels": labels, "attention_mask": mask, "features": feats}


def to_device(batch: dict, device) -> dict:
    """The collated batch on the model's device (accelerate moves the model, not our batches)."""
    return {k: ({m: f.to(device) for m, f in v.items()} if isinstance(v, dict) else v.to(device))
            for k, v in batch.items()}


@torch.no_grad()
def validation_loss(model, items, pad_id, modalities, size) -> float:
    model.eval()
    total, n = 0.0, 0
    for i in range(0, len(items), size):
        b = to_device(collate(items[i:i + size], pad_id, modalities), model.device)
        loss, _ = model(b["input_ids"], b["attention_mask"], b["labels"], b["features"])
        total += float(loss) * len(items[i:i + size])
        n += len(items[i:i + size])
    model.train()
    return total / max(n, 1)


def _norm(text: str) -> str:
    return " ".join(text.lower().replace("[", " [").split())


def answer_checks(model, examples: list[dict], n: int) -> dict:
    """Greedy answers to validation questions: exact answers, and the fact part stated
    (the target answer without its citation appears in the generated one)."""
    import re

    model.eval()
    exact = stated = cited_ok = refusals_ok = refusals = 0
    shown = []
    for ex in tqdm(examples[:n], desc="validation answers", unit="question"):
        feats = {m: torch.tensor([v]) for m, v in (ex.get("features") or {}).items()}
        got = model.generate(ex["messages"], feats, max_new_tokens=64)
        want = ex["answer"]
        fact = re.sub(r"\s*\[\d+\]", "", want).rstrip(".").lower()
        exact += _norm(got) == _norm(want)
        stated += fact in got.lower()
        cites = re.findall(r"\[\d+\]", want)
        cited_ok += all(c in got for c in cites)
        if ex["kind"].startswith("none"):
            refusals += 1
            refusals_ok += "context does not say" in got.lower()
        if len(shown) < 12:
            shown.append({"kind": ex["kind"], "want": want, "got": got})
    model.train()
    k = max(min(n, len(examples)), 1)
    return {"val_exact": round(exact / k, 4), "val_fact_stated": round(stated / k, 4),
            "val_citation_right": round(cited_ok / k, 4),
            "val_refusal_right": round(refusals_ok / max(refusals, 1), 4), "val_answers_checked": k,
            "samples": shown}


def plot_loss(log: list[dict], out: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = [r["step"] for r in log]
    loss = [r["loss"] for r in log]
    smooth, acc = [], None
    for v in loss:
        acc = v if acc is None else 0.9 * acc + 0.1 * v
        smooth.append(acc)
    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=120)
    ax.plot(steps, loss, alpha=0.3, label="batch loss")
    ax.plot(steps, smooth, label="smoothed (EMA 0.9)")
    ax.set_xlabel("step")
    ax.set_ylabel("cross-entropy (answer tokens)")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)


def build_model(cfg: dict) -> AstroLlava:
    if cfg.get("from_model"):  # stage reproject: a trained assistant, only some projectors learn
        model = AstroLlava.from_pretrained(rel(cfg["from_model"]), merge=False)
        learn = set(cfg.get("projectors") or model.config.modalities)
        for p in model.lm.parameters():
            p.requires_grad_(False)  # the LM and its LoRA adapter stay as they are
        for m, proj in model.projectors.by_modality.items():
            proj.requires_grad_(m in learn)
        return model
    lora = cfg.get("lora")
    config = AssistantConfig(language_model=cfg.get("language_model", "smollm2-135m-instruct"),
                             enc_dim=int(cfg.get("enc_dim", 256)),
                             num_visual_tokens=int(cfg.get("num_visual_tokens", 2)))
    if lora:
        config.lora_r, config.lora_alpha = int(lora["r"]), int(lora["alpha"])
        config.lora_dropout = float(lora.get("dropout", 0.05))
        config.lora_target_modules = list(lora.get("target_modules", ["q_proj", "v_proj"]))
    model = AstroLlava.build(config, lora=bool(lora))
    if not lora:
        for p in model.lm.parameters():
            p.requires_grad_(False)
    if cfg.get("init"):
        from safetensors.torch import load_file

        init = rel(cfg["init"])
        model.projectors.load_state_dict(load_file(str(init / "projector.safetensors")))
        prev = json.loads((init / "config.json").read_text())
        model.config.trained = dict(prev.get("trained", {}))
    return model


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="Train the assistant (one stage per config).")
    p.add_argument("--config", required=True)
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config value")
    args = p.parse_args(argv)
    cfg = load_config(args.config, args.set)
    tcfg = cfg["train"]
    seed = int(cfg.get("seed", 0))
    random.seed(seed)
    torch.manual_seed(seed)
    torch.set_num_threads(int(cfg.get("threads", 2)))
    from accelerate import Accelerator

    accelerator = Accelerator(cpu=not torch.cuda.is_available())
    torch.backends.cuda.matmul.allow_tf32 = True  # fp32 weights, TF32 matmuls on a GPU
    run = rel(cfg["output"])
    run.mkdir(parents=True, exist_ok=True)

    model = build_model(cfg)
    data_dir = rel(cfg["data_dir"])
    data_summary = json.loads((data_dir / "summary.json").read_text())
    model.config.encoder_fingerprint = data_summary.get("encoder_fingerprint")
    model.config.encoder_towers = data_summary.get("encoder_towers") or {}
    model.config.checked_with = []  # a retrained model is trained on this encoder itself
    modalities = model.config.modalities
    max_len = int(tcfg.get("max_tokens", 512))
    train = [e for e in (encode(model, ex, max_len) for ex in
                         read_files(data_dir, cfg["train_file"], tcfg.get("max_examples"), cfg.get("projectors")))
             if e]
    val_raw = read_files(data_dir, cfg["val_file"], tcfg.get("max_val_examples", 200), cfg.get("projectors"))
    val = [e for e in (encode(model, ex, max_len) for ex in val_raw) if e]
    lengths = sorted(len(e["ids"]) for e in train)
    accelerator.print(f"{cfg['stage']}: {len(train)} training examples (median {lengths[len(lengths) // 2]} "
                      f"tokens, max {lengths[-1]}), {len(val)} validation examples")

    proj_params = [p for p in model.projectors.parameters() if p.requires_grad]
    lora_params = [p for n, p in model.lm.named_parameters() if p.requires_grad]
    groups = [{"params": proj_params, "lr": float(tcfg.get("lr_projector", tcfg["lr"]))}]
    if lora_params:
        groups.append({"params": lora_params, "lr": float(tcfg["lr"])})
    opt = torch.optim.AdamW(groups, weight_decay=float(tcfg.get("weight_decay", 0.0)))
    rng = random.Random(seed)
    size = int(tcfg["batch_size"])
    micro = int(tcfg.get("micro_batch_size") or size)
    epochs = float(tcfg.get("epochs", 1))
    steps_per_epoch = math.ceil(len(train) / size)
    total = max(1, int(steps_per_epoch * epochs))
    warmup = int(tcfg.get("warmup_steps", 10))
    base_lrs = [g["lr"] for g in opt.param_groups]
    model, opt = accelerator.prepare(model, opt)
    pad_id = accelerator.unwrap_model(model).tokenizer.pad_token_id
    budget_s = float(tcfg.get("max_minutes", 1e9)) * 60

    before = None
    if cfg["stage"] == "reproject" and tcfg.get("check_answers", 0):
        # the refitted projector's figures beside the stale one's, on the same questions
        before = answer_checks(accelerator.unwrap_model(model), val_raw, int(tcfg["check_answers"]))
        before.pop("samples")
    log, step, t0 = [], 0, time.time()
    model.train()
    bar = tqdm(total=total, desc=f"train ({cfg['stage']})", unit="step", disable=not accelerator.is_main_process)
    stopped_early = False
    while step < total:
        for batch in batches(train, size, rng):
            if step >= total:
                break
            if time.time() - t0 > budget_s:
                stopped_early = True
                break
            scale = (step + 1) / warmup if step < warmup else \
                0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))
            for g, lr in zip(opt.param_groups, base_lrs):
                g["lr"] = lr * scale
            # Micro-batches bound the activations' memory (16 long prompts at once need
            # over 24 GB on a CPU); each one's loss is weighted by its share of answer tokens,
            # so the gradient is the whole batch's.
            answer_tokens = sum(sum(t != IGNORE_INDEX for t in e["labels"][1:]) for e in batch)
            loss_sum, tokens = 0.0, 0
            for i in range(0, len(batch), micro):
                part = batch[i:i + micro]
                b = to_device(collate(part, pad_id, modalities), accelerator.device)
                share = sum(sum(t != IGNORE_INDEX for t in e["labels"][1:]) for e in part) / answer_tokens
                loss, _ = model(b["input_ids"], b["attention_mask"], b["labels"], b["features"])
                accelerator.backward(loss * share)
                loss_sum += loss.item() * share
                tokens += int(b["attention_mask"].sum())
            accelerator.clip_grad_norm_([q for g in groups for q in g["params"]], float(tcfg.get("grad_clip", 1.0)))
            opt.step()
            opt.zero_grad(set_to_none=True)
            step += 1
            log.append({"step": step, "loss": round(loss_sum, 5), "lr": round(opt.param_groups[-1]["lr"], 8),
                        "tokens": tokens, "elapsed_s": round(time.time() - t0, 1)})
            bar.update(1)
            bar.set_postfix(loss=f"{log[-1]['loss']:.3f}")
        if stopped_early:
            break
    bar.close()
    train_s = time.time() - t0
    unwrapped = accelerator.unwrap_model(model)
    metrics = {"stage": cfg["stage"], "steps": step, "planned_steps": total, "stopped_early": stopped_early,
               "train_examples": len(train), "train_seconds": round(train_s, 1),
               "final_loss_ema": round(_ema([r["loss"] for r in log]), 4),
               "val_loss": round(validation_loss(unwrapped, val, pad_id, modalities, micro), 4)}
    if cfg["stage"] in ("instruct", "reproject") and tcfg.get("check_answers", 0):
        metrics.update(answer_checks(unwrapped, val_raw, int(tcfg["check_answers"])))
    if before is not None:
        metrics["before"] = before
    trained = dict(unwrapped.config.trained)
    trained[cfg["stage"]] = {k: v for k, v in metrics.items() if k != "samples"} | {
        "config": Path(args.config).name, "data": data_summary.get("train", {}), "device": str(accelerator.device)}
    unwrapped.config.trained = trained
    if accelerator.is_main_process:
        unwrapped.save_pretrained(run / "model")
        (run / "log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in log))
        (run / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
        plot_loss(log, run / "loss.png", f"assistant {cfg['stage']}: {step} steps, {train_s / 60:.1f} min")
        if cfg.get("ship"):
            ship = rel(cfg["ship"])
            unwrapped.save_pretrained(ship)
        results = rel(cfg.get("results", "training/assistant/results"))
        results.mkdir(parents=True, exist_ok=True)
        shutil.copy(run / "loss.png", results / f"loss_{cfg['stage']}.png")
        shutil.copy(run / "metrics.json", results / f"metrics_{cfg['stage']}.json")
        shutil.copy(run / "log.jsonl", results / f"log_{cfg['stage']}.jsonl")
        accelerator.print(json.dumps(metrics, indent=2))
    return 0


def _ema(values: list[float], a: float = 0.9) -> float:
    acc = None
    for v in values:
        acc = v if acc is None else a * acc + (1 - a) * v
    return float(acc or 0.0)


if __name__ == "__main__":
    sys.exit(main())
