"""The CPU recipe, measured: train from scratch on a Prometheus group split and compare.

    python -m judgeforge.train.recipe --out runs/cpu-recipe             # the default recipe
    python -m judgeforge.train.recipe --quick --out runs/cpu-quick      # a few-minute smoke run
    python -m judgeforge.train.recipe --out runs/b --reuse-sft runs/a/sft grpo.learning_rate=1e-6

Converts MT-Bench + Vicuna (640 rows, 160 questions x 4 responses, GPT-4 labels 1-5) and splits
them by question (``judgeforge.data.split.group_split``: no query crosses train, validation and
test). Trains the recipe on the training part with the validation part as the trainer's
validation set (best checkpoint by validation MAE), fits the calibration (an isotonic map from
the expected score to the scale, ``judgeforge.calibration``) on the validation rows, and prints
one table on the test rows: the constant predictor (training-label median), the untrained base
model, SFT only and SFT+GRPO, each in three read-outs:

- ``sample``: the judge's own greedy ``<score>X</score>`` (a parse failure = the worst error);
- ``expected``: the probability-weighted score after a prefilled ``<score>``;
- ``expected+cal``: the expected score through the calibration fitted on validation rows (what a
  grader does with a judge card that carries a calibration, in expected mode).

Metrics (``judgeforge.metrics``): MAE, exact and within-1 accuracy, Spearman, Pearson, QWK, with
bootstrap 95% CIs for MAE and Spearman; parse rate, steps, minutes, seconds per pair. The models
are evaluated in this process with transformers (the same prompt and the same score-token read-out
as the vLLM-served grader). Lives under ``train/`` because it trains (benchmarks never import
train); ``benchmarks/train_cpu_recipe.py`` runs it in a subprocess and adds the baselines
(``judgeforge.benchmarks.baselines``) and the verdicts. Writes ``<out>/recipe.json`` (with
per-row test predictions, in the order of ``<out>/split/test.jsonl``), ``<out>/recipe.md`` and
the split (``<out>/split/{train,val,test}.jsonl``).
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["main", "split_prometheus", "evaluate_folder", "table", "trained_folders", "READOUTS"]

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared/data/prometheus-absolute"


def default_data_dir() -> Path:
    """The Prometheus sets shipped with the package (gzipped), else the shared data folder."""
    try:
        from judgeforge.datasets import shipped_path

        path = Path(shipped_path("prometheus-absolute"))
        if path.is_dir():
            return path
    except (ImportError, OSError, ValueError):
        pass
    return SHARED_DATA
FILES = ("mt_bench_eval.json", "vicuna_eval.json")
READOUTS = ("sample", "expected", "expected+cal")

log = logging.getLogger("judgeforge.train.recipe")


def split_prometheus(data_dir: Path, test_rows: int, val_rows: int,
                     seed: int) -> tuple[list[Any], list[Any], list[Any], Any]:
    """(train, val, test, info): both Prometheus sets, split by question (group split)."""
    from judgeforge.data.converters.prometheus import convert_prometheus
    from judgeforge.data.split import group_split

    records: list[Any] = []
    info = None
    for name in FILES:
        path = data_dir / name
        res = convert_prometheus(path if path.exists() else path.with_name(name + ".gz"))
        records += res.records
        info = info or res.info
    rest, test = group_split(records, test_size=test_rows, seed=seed, group_key="idx")
    train, val = group_split(rest, test_size=val_rows, seed=seed + 1, group_key="idx")
    return train, val, test, info


def _metrics(preds: Sequence[float | None], labels: Sequence[int], scale: Any,
             bootstrap: int) -> dict[str, Any]:
    from judgeforge.metrics import compute_metrics

    m = compute_metrics(list(preds), list(labels), scale, bootstrap=bootstrap)
    keep = ("n", "parse_failure_rate", "mae", "exact_acc", "within1_acc", "spearman", "pearson",
            "qwk")
    out = {k: m.get(k) for k in keep}
    out["parse_rate"] = 1.0 - float(m["parse_failure_rate"])
    out["ci"] = {k: m.get("ci", {}).get(k) for k in ("mae", "spearman")}
    return out


def evaluate_folder(path: Path, val_rows: list[dict[str, Any]], test_rows: list[dict[str, Any]],
                    dim: str, scale: Any, *, max_new_tokens: int, bootstrap: int,
                    threads: int | None = None) -> dict[str, Any]:
    """Every read-out of the HF folder at ``path`` on the test rows (calibration fitted on the
    validation rows): ``{readout: metrics}``, plus predictions, the calibration and timings."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from judgeforge.calibration import fit_calibration
    from judgeforge.errors import ConfigError
    from judgeforge.train.cpu.evaluate import evaluate_rows, score_distributions
    from judgeforge.train.cpu.export import fix_special_tokens

    if threads:
        torch.set_num_threads(threads)
    tok = AutoTokenizer.from_pretrained(str(path))
    model = AutoModelForCausalLM.from_pretrained(str(path), dtype=torch.float32)
    fix_special_tokens(model, tok)
    values = list(range(scale.min, scale.max + 1))
    labels = [r["label"] for r in test_rows]
    out: dict[str, Any] = {}
    with torch.autocast("cpu", dtype=torch.bfloat16):
        t0 = time.perf_counter()
        greedy = evaluate_rows(model, tok, test_rows, dim, scale, max_new_tokens=max_new_tokens,
                               batch_size=16, progress=True)
        sample_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        test_p = score_distributions(model, tok, test_rows, scale)
        expected_s = time.perf_counter() - t0
        val_p = score_distributions(model, tok, val_rows, scale)
    exp_test = [sum(v * q for v, q in zip(values, p)) for p in test_p]
    exp_val = [sum(v * q for v, q in zip(values, p)) for p in val_p]
    try:
        cal = fit_calibration(exp_val, [r["label"] for r in val_rows], low=scale.min,
                              high=scale.max)
        cal_test: list[float | None] = [cal(x) for x in exp_test]
        out["calibration"] = cal.to_dict()
    except ConfigError as exc:  # a judge whose expected score never varies
        log.warning("%s: no calibration: %s", path, exc)
        cal_test = [None] * len(exp_test)
        out["calibration"] = None
    out["sample"] = _metrics(greedy["predictions"], labels, scale, bootstrap)
    out["expected"] = _metrics(exp_test, labels, scale, bootstrap)
    out["expected+cal"] = _metrics(cal_test, labels, scale, bootstrap)
    out["seconds_per_pair"] = {"sample": sample_s / len(test_rows),
                               "expected": expected_s / len(test_rows)}
    out["predictions"] = {"sample": greedy["predictions"], "expected": exp_test,
                          "expected+cal": cal_test, "val_expected": exp_val}
    out["completions"] = greedy["completions"][:3]
    return out


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _ci(m: dict[str, Any], key: str) -> str:
    ci = (m.get("ci") or {}).get(key) or [None, None]
    if ci[0] is None:
        return _fmt(m.get(key))
    return f"{_fmt(m.get(key))} [{ci[0]:.2f}, {ci[1]:.2f}]"


def table(rows: Sequence[dict[str, Any]]) -> str:
    """One markdown table: a line per (model, read-out)."""
    lines = ["| model | read-out | parse | MAE [95% CI] | exact | within-1 | Spearman [95% CI] | "
             "Pearson | QWK | steps | train min |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        m = r["metrics"]
        lines.append(f"| {r['name']} | {r['readout']} | {_fmt(m.get('parse_rate'))} | "
                     f"{_ci(m, 'mae')} | {_fmt(m.get('exact_acc'))} | "
                     f"{_fmt(m.get('within1_acc'))} | {_ci(m, 'spearman')} | "
                     f"{_fmt(m.get('pearson'))} | {_fmt(m.get('qwk'))} | "
                     f"{_fmt(r.get('steps'))} | {_fmt(r.get('minutes'), 1)} |")
    return "\n".join(lines)


def _stage_minutes(log_path: Path, stage: str) -> float:
    rows = [json.loads(x) for x in log_path.read_text().splitlines() if x.strip()]
    return sum(r.get("seconds_per_step") or 0.0 for r in rows if r.get("stage") == stage) / 60


def _validation_from_log(path: Path) -> dict[str, Any]:
    """The trainer's validation rows (stage ``eval``) from ``train_log.jsonl``, by step."""
    if not path.exists():
        return {}
    rows = [json.loads(x) for x in path.read_text().splitlines() if x.strip()]
    return {str(r.get("step")): r for r in rows if r.get("stage") == "eval"}


def trained_folders(out: Path, sft_steps: int, sft_min: float,
                    grpo_min: float) -> list[tuple[str, Path, int, float]]:
    """(name, folder, total steps, minutes) of the models a run left in ``out``: ``sft/``,
    ``final/``, ``best/`` (when it differs from final), or, for a GRPO stage stopped before
    the end, its last checkpoint."""
    from judgeforge.train.cpu.export import read_marker

    found: list[tuple[str, Path, int, float]] = []
    if (out / "sft").is_dir():
        found.append((f"SFT ({sft_steps} steps)", out / "sft", sft_steps, sft_min))
    final = read_marker(out / "final") if (out / "final").is_dir() else None
    if final is not None and not final.get("step") and (out / "sft").is_dir():
        final = None  # no GRPO step ran (grpo.max_steps=0): final/ holds sft/'s weights
    if final is not None:
        step = int(final.get("step") or 0)
        found.append((f"SFT+GRPO final ({step} GRPO steps)", out / "final", sft_steps + step,
                      sft_min + grpo_min))
    best = read_marker(out / "best") if (out / "best").is_dir() else None
    if best is not None and best.get("step") not in (None, 0, (final or {}).get("step")):
        step = int(best["step"])
        found.append((f"SFT+GRPO best by validation (GRPO step {step})", out / "best",
                      sft_steps + step, sft_min + grpo_min))
    if final is None:
        ckpts = sorted((out / "grpo").glob("checkpoint-*"),
                       key=lambda p: int(p.name.split("-")[-1])) if (out / "grpo").is_dir() \
            else []
        if ckpts:
            step = int(ckpts[-1].name.split("-")[-1])
            found.append((f"SFT+GRPO stopped (GRPO step {step})", ckpts[-1], sft_steps + step,
                          sft_min + grpo_min))
    return found


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m judgeforge.train.recipe",
                                description=(__doc__ or "").split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("overrides", nargs="*", help="config overrides section.key=value")
    p.add_argument("--config", default="cpu", help="a preset name or a TrainConfig YAML path")
    p.add_argument("--quick", action="store_true", help="the few-minute smoke variant")
    p.add_argument("--out", type=Path, default=Path("runs/cpu-recipe"), help="output folder")
    p.add_argument("--data-dir", type=Path, default=None,
                   help="folder with the Prometheus mt_bench_eval.json and vicuna_eval.json")
    p.add_argument("--test-rows", type=int, default=128,
                   help="test rows (whole questions, stratified by label)")
    p.add_argument("--val-rows", type=int, default=96,
                   help="validation rows (whole questions): best checkpoint and calibration")
    p.add_argument("--seed", type=int, default=0, help="split seed")
    p.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples for CIs")
    p.add_argument("--reuse-sft", type=Path, default=None,
                   help="copy this finished sft/ folder into the output first")
    p.add_argument("--skip-base", action="store_true", help="do not evaluate the base model")
    p.add_argument("--fresh", action="store_true", help="delete the output folder first")
    p.add_argument("--evaluate-only", action="store_true",
                   help="train nothing: evaluate the models a run left in --out (sft/, final/, "
                        "best/, or the last GRPO checkpoint of a stopped run)")
    p.add_argument("--threads", type=int, default=None,
                   help="torch threads for --evaluate-only (default: chosen from the load)")
    return p.parse_args(argv)


def _load_config(args: argparse.Namespace, overrides: list[str]) -> Any:
    from judgeforge.train import TrainConfig

    path = Path(args.config)
    if not path.exists():
        path = REPO / "train/presets" / f"{args.config}.yaml"
    return TrainConfig.from_yaml(path, overrides, backend="cpu")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    from judgeforge.data.io import write_records
    from judgeforge.train.cpu import QUICK_OVERRIDES, choose_threads, run_cpu
    from judgeforge.train.cpu.data import make_rows

    if args.fresh and args.out.exists():
        shutil.rmtree(args.out)
    overrides = ([f"cpu.eval_rows={args.val_rows}"] + (QUICK_OVERRIDES if args.quick else [])
                 + list(args.overrides) + [f"output_dir={args.out}"])
    cfg = _load_config(args, overrides)
    train, val, test, info = split_prometheus(args.data_dir or default_data_dir(),
                                              args.test_rows, args.val_rows, args.seed)
    dim = cfg.data.dimension or info.dimension_names[0]
    scale = info.scale(dim)
    if args.reuse_sft:
        args.out.mkdir(parents=True, exist_ok=True)
        if not (args.out / "sft").exists():
            shutil.copytree(args.reuse_sft, args.out / "sft")

    t0 = time.monotonic()
    if args.evaluate_only:
        threads = args.threads or choose_threads(None)
        validation = _validation_from_log(args.out / "train_log.jsonl")
    else:
        result = run_cpu(cfg, train_records=train, val_records=val, info=info)
        threads, validation = result.threads, result.metrics
    wall = (time.monotonic() - t0) / 60
    log_path = args.out / "train_log.jsonl"
    sft_min = _stage_minutes(log_path, "sft") if log_path.exists() else 0.0
    grpo_min = _stage_minutes(log_path, "grpo") if log_path.exists() else 0.0
    val_rows, test_rows = make_rows(val, cfg, dim, scale), make_rows(test, cfg, dim, scale)
    labels = [r["label"] for r in test_rows]
    train_labels = sorted(r.label[dim] for r in train)
    median = train_labels[(len(train_labels) - 1) // 2]
    ev = dict(dim=dim, scale=scale, max_new_tokens=cfg.cpu.eval_max_new_tokens,
              bootstrap=args.bootstrap, threads=threads)

    rows: list[dict[str, Any]] = [
        {"name": f"constant {median} (training median)", "readout": "-", "steps": 0,
         "minutes": 0.0, "metrics": _metrics([median] * len(labels), labels, scale,
                                              args.bootstrap)},
    ]
    split_dir = args.out / "split"
    split_dir.mkdir(parents=True, exist_ok=True)
    for part, recs in (("train", train), ("val", val), ("test", test)):
        write_records(split_dir / f"{part}.jsonl", recs, info)
    models: dict[str, Any] = {}
    folders: list[tuple[str, Path, int, float]] = []
    if not args.skip_base:
        from judgeforge.train.cpu.trainer import base_model_path

        base = base_model_path(cfg)
        folders.append(("base (untrained)", base, 0, 0.0))
    folders += trained_folders(args.out, cfg.sft.steps, sft_min, grpo_min)
    for name, path, steps, minutes in folders:
        res = evaluate_folder(path, val_rows, test_rows, **ev)
        models[name] = res
        for readout in READOUTS:
            rows.append({"name": name, "readout": readout, "steps": steps, "minutes": minutes,
                         "metrics": res[readout]})
    report = {
        "config": cfg.model_dump(), "overrides": overrides, "threads": threads,
        "dimension": dim, "scale": [scale.min, scale.max],
        "rows_train": len(train), "rows_val": len(val), "rows_test": len(test_rows),
        "test_label_counts": {str(k): labels.count(k) for k in sorted(set(labels))},
        "sft_minutes": sft_min, "grpo_minutes": grpo_min, "train_wall_minutes": wall,
        "validation": validation, "rows": rows, "models": models, "test_labels": labels,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "recipe.json").write_text(json.dumps(report, indent=2, default=str))
    md = (f"Prometheus MT-Bench+Vicuna split by question: {len(train)} train / {len(val)} "
          f"validation / {len(test_rows)} test rows; {threads} torch thread(s); SFT "
          f"{sft_min:.1f} min, GRPO {grpo_min:.1f} min of steps, {wall:.1f} min wall\n\n"
          + table(rows))
    (args.out / "recipe.md").write_text(md + "\n")
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
