"""Benchmark of the CPU training recipe on the Prometheus absolute sets (1-5 scale).

Converts MT-Bench + Vicuna (640 rows, GPT-4 labels), holds out a stratified test split, trains
the CPU recipe (SFT warm-up, then GRPO) on the rest (the trainer holds out its own validation
rows for best-checkpoint selection), and reports side by side on the test split: the untrained
base model, the best constant predictor (the training median), SFT only, and SFT+GRPO (final
and best-by-validation) -- parse rate, MAE (a parse failure counts as the worst error), exact
accuracy, Spearman, minutes. The greedy columns decode the mode of the model's score distribution;
the ``E[score]``/median columns read that distribution from the logits after a prefilled
``<score>`` (expected score, and the median -- the MAE-optimal point prediction).

    python benchmarks/train_cpu_recipe.py --out runs/cpu-recipe            # the default recipe
    python benchmarks/train_cpu_recipe.py --quick --out runs/cpu-quick     # ~2-4 min variant
    python benchmarks/train_cpu_recipe.py --out runs/b --reuse-sft runs/a/sft grpo.learning_rate=1e-6

Writes ``<out>/benchmark.json`` and ``<out>/benchmark.md`` (plus the trainer's outputs).
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
import time
from pathlib import Path
from typing import Any, Sequence

from judgeforge.datasets import shipped_path

DEFAULT_DATA = shipped_path("prometheus-absolute")  # the sets shipped in the package (gzipped)
DEFAULT_CONFIG = "cpu"  # the training preset (`judgeforge train cpu`); a YAML path also works
FILES = ("mt_bench_eval.json", "vicuna_eval.json")

log = logging.getLogger("train_cpu_recipe")


def load_prometheus(data_dir: Path) -> tuple[list[Any], Any]:
    """Both Prometheus sets as pointwise records (the project's converter) and their info."""
    from judgeforge.data.converters.prometheus import convert_prometheus

    records, info = [], None
    for name in FILES:
        path = data_dir / name
        res = convert_prometheus(path if path.exists() else path.with_name(name + ".gz"))
        records += res.records
        info = info or res.info
    return records, info


def evaluate_model(path: Path, rows: list[dict[str, Any]], dimension: str, scale: Any,
                   max_new_tokens: int) -> dict[str, Any]:
    """Greedy test-split summary of the HF folder at ``path``."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from judgeforge.train.cpu.evaluate import (distribution_summaries, evaluate_rows,
                                               score_distributions)
    from judgeforge.train.cpu.export import fix_special_tokens

    tok = AutoTokenizer.from_pretrained(str(path))
    model = AutoModelForCausalLM.from_pretrained(str(path), dtype=torch.float32)
    fix_special_tokens(model, tok)
    t0 = time.perf_counter()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        res = evaluate_rows(model, tok, rows, dimension, scale, max_new_tokens=max_new_tokens,
                            batch_size=16, progress=True)
        probs = score_distributions(model, tok, rows, scale)
    out = dict(res["summary"])
    dist = distribution_summaries(probs, [r["label"] for r in rows], scale)
    out["expected_spearman"] = dist["expected"]["spearman"]
    out["expected_mae"] = dist["expected"]["mae"]
    out["median_mae"] = dist["median"]["mae"]
    out["eval_seconds"] = round(time.perf_counter() - t0, 1)
    out["sample_completion"] = res["completions"][0] if res["completions"] else None
    return out


def constant_summary(value: int, labels: Sequence[int], scale: Any) -> dict[str, Any]:
    from judgeforge.metrics import compute_metrics
    from judgeforge.train.cpu.evaluate import summary

    return summary(compute_metrics([value] * len(labels), list(labels), scale, bootstrap=0))


def stage_minutes(log_rows: list[dict[str, Any]], stage: str) -> float:
    return sum(r.get("seconds_per_step") or 0.0 for r in log_rows if r.get("stage") == stage) / 60


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def table(rows: list[dict[str, Any]]) -> str:
    head = ("| model | parse rate | MAE | exact | within1 | Spearman | E[score] Spearman | "
            "E[score] MAE | median MAE | train min |\n|---|---|---|---|---|---|---|---|---|---|")
    lines = [head]
    for r in rows:
        lines.append(f"| {r['name']} | {_fmt(r.get('parse_rate'))} | {_fmt(r.get('mae'))} | "
                     f"{_fmt(r.get('exact_acc'))} | {_fmt(r.get('within1_acc'))} | "
                     f"{_fmt(r.get('spearman'))} | {_fmt(r.get('expected_spearman'))} | "
                     f"{_fmt(r.get('expected_mae'))} | {_fmt(r.get('median_mae'))} | "
                     f"{_fmt(r.get('minutes'), 1)} |")
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("overrides", nargs="*", help="config overrides section.key=value")
    p.add_argument("--config", type=Path, default=DEFAULT_CONFIG,
                   help="a training preset name or TrainConfig YAML")
    p.add_argument("--quick", action="store_true", help="the ~2-4 minute variant of the recipe")
    p.add_argument("--out", type=Path, default=Path("runs/cpu-recipe"), help="output folder")
    p.add_argument("--data-dir", type=Path, default=DEFAULT_DATA,
                   help="folder with the Prometheus mt_bench_eval.json and vicuna_eval.json")
    p.add_argument("--test-rows", type=int, default=120, help="held-out test rows (stratified)")
    p.add_argument("--seed", type=int, default=0, help="split seed")
    p.add_argument("--reuse-sft", type=Path, default=None,
                   help="copy this finished sft/ folder into the output first (compare GRPO "
                        "variants from one warm-up)")
    p.add_argument("--skip-base", action="store_true", help="do not evaluate the base model")
    p.add_argument("--skip-sft-eval", action="store_true",
                   help="do not evaluate the SFT-only model (known already, e.g. with --reuse-sft)")
    p.add_argument("--fresh", action="store_true", help="delete the output folder first")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    from judgeforge.data.split import stratified_split
    from judgeforge.train import TrainConfig
    from judgeforge.train.cpu import QUICK_OVERRIDES, run_cpu
    from judgeforge.train.cpu.data import make_rows

    if args.fresh and args.out.exists():
        shutil.rmtree(args.out)
    overrides = (QUICK_OVERRIDES if args.quick else []) + list(args.overrides)
    cfg = TrainConfig.from_yaml(args.config, overrides + [f"output_dir={args.out}"],
                                backend="cpu")
    records, info = load_prometheus(args.data_dir)
    dim = cfg.data.dimension or info.dimension_names[0]
    train, test = stratified_split(records, test_size=args.test_rows, seed=args.seed,
                                   dimension=dim)
    scale = info.scale(dim)
    if args.reuse_sft:
        args.out.mkdir(parents=True, exist_ok=True)
        if not (args.out / "sft").exists():
            shutil.copytree(args.reuse_sft, args.out / "sft")

    t0 = time.monotonic()
    result = run_cpu(cfg, train_records=train, info=info)
    train_minutes = (time.monotonic() - t0) / 60
    log_rows = [json.loads(x) for x in result.log.read_text().splitlines() if x.strip()]
    sft_min, grpo_min = stage_minutes(log_rows, "sft"), stage_minutes(log_rows, "grpo")

    test_rows = make_rows(test, cfg, dim, scale)
    labels = [r["label"] for r in test_rows]
    train_labels = sorted(r.label[dim] for r in train)
    median = train_labels[(len(train_labels) - 1) // 2]
    mnt = cfg.cpu.eval_max_new_tokens
    from judgeforge.models.default_model import prepare_default_model

    base_path = Path(cfg.model.path) if cfg.model.path else prepare_default_model()
    rows: list[dict[str, Any]] = []
    if not args.skip_base:
        rows.append({"name": "base (untrained)", "minutes": 0.0,
                     **evaluate_model(base_path, test_rows, dim, scale, mnt)})
    rows.append({"name": f"constant {median} (train median)", "minutes": 0.0,
                 **constant_summary(median, labels, scale)})
    if not args.skip_sft_eval:
        rows.append({"name": f"SFT only ({cfg.sft.steps} steps)", "minutes": sft_min,
                     **evaluate_model(args.out / "sft", test_rows, dim, scale, mnt)})
    final_step = result.metrics.get("final", {}).get("step")
    rows.append({"name": f"SFT+GRPO final (step {final_step})", "minutes": sft_min + grpo_min,
                 **evaluate_model(args.out / "final", test_rows, dim, scale, mnt)})
    if result.best is not None:
        step = result.metrics.get("best", {}).get("step")
        rows.append({"name": f"SFT+GRPO best-by-val (step {step})",
                     "minutes": sft_min + grpo_min,
                     **evaluate_model(result.best, test_rows, dim, scale, mnt)})
    report = {
        "config": cfg.model_dump(), "overrides": overrides, "threads": result.threads,
        "train_rows": len(train), "test_rows": len(test_rows),
        "test_label_counts": {str(k): labels.count(k) for k in sorted(set(labels))},
        "sft_minutes": sft_min, "grpo_minutes": grpo_min, "train_wall_minutes": train_minutes,
        "validation": result.metrics, "rows": rows,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "benchmark.json").write_text(json.dumps(report, indent=2, default=str))
    md = (f"Prometheus MT-Bench+Vicuna, {len(train)} train / {len(test_rows)} test rows, "
          f"{result.threads} torch thread(s); SFT {sft_min:.1f} min, GRPO {grpo_min:.1f} min "
          f"(step time only), whole run {train_minutes:.1f} min wall\n\n" + table(rows))
    (args.out / "benchmark.md").write_text(md + "\n")
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
