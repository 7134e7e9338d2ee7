"""Benchmark of the CPU training recipe: train from scratch, then one side-by-side table.

Runs ``python -m judgeforge.train.recipe`` in a subprocess for each variant (benchmarks never
import ``judgeforge.train``): the Prometheus MT-Bench+Vicuna sets split by question (no query
crosses train, validation and test), the recipe trained on the training part, every model read
out on the test part (``sample``: the judge's own ``<score>``; ``expected``: the score-token
probabilities; ``expected+cal``: that through the calibration fitted on validation rows). Then
fits the baselines on the training part (:mod:`judgeforge.benchmarks.baselines`: constant =
training median, length = isotonic fit on response characters) and prints ONE table (MAE,
exact and within-1 accuracy, Spearman, Pearson, QWK, bootstrap 95% CIs, parse rate, steps,
minutes) and the verdicts against the baselines and against the untrained base calibrated on
the same validation rows (``base [expected+cal]``; paired bootstrap).

    python benchmarks/train_cpu_recipe.py --out runs/cpu-recipe          # the default recipe
    python benchmarks/train_cpu_recipe.py --out runs/cpu-recipe \\
        --variant "with reasons:sft.target=reason,grpo.max_steps=0,cpu.eval_max_new_tokens=64"
    python benchmarks/train_cpu_recipe.py --out runs/cpu-recipe --report-only   # re-read results
    python benchmarks/train_cpu_recipe.py --out runs/cpu-recipe \\
        --ood-sets newsroom-relevance,roscoe-gsm8k --ood-limit 60    # + the out-of-domain table

Writes ``<out>/benchmark.json`` and ``<out>/benchmark.md``. With ``--ood-sets``, the default
variant's final judge folder (``final/``, else ``sft/``) and the untrained base model (unless
``--skip-base``) are graded on those sets of the shipped benchmark suite
(:func:`judgeforge.benchmarks.suite.run.run_suite`, expected mode, a seeded sample of
``--ood-limit`` rows per set; each set's own dimension, scale and task in the judge card's
prompt, no calibration) into ``<out>/ood/``, and the out-of-domain table follows the main one.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from judgeforge.benchmarks.report import fmt, fmt_ci, markdown_table

__all__ = ["main", "run_variant", "combined_table", "run_ood", "ood_table"]

HEADER = ("model", "read-out", "parse", "MAE [95% CI]", "exact", "within-1",
          "Spearman [95% CI]", "Pearson", "QWK", "steps", "train min", "s/pair")


def run_variant(out: Path, args: argparse.Namespace, overrides: Sequence[str]) -> dict[str, Any]:
    """Train and evaluate one variant in a subprocess (skipped when ``--report-only`` and its
    ``recipe.json`` exists); returns that report."""
    report = out / "recipe.json"
    if args.report_only and not report.exists():
        raise SystemExit(f"--report-only: {report} does not exist (train it first)")
    if not args.report_only:
        cmd = [sys.executable, "-m", "judgeforge.train.recipe", "--out", str(out),
               "--config", args.config, "--seed", str(args.seed),
               "--test-rows", str(args.test_rows), "--val-rows", str(args.val_rows),
               "--bootstrap", str(args.bootstrap), *(["--quick"] if args.quick else []),
               *(["--skip-base"] if args.skip_base else []),
               *(["--data-dir", str(args.data_dir)] if args.data_dir else []), *overrides]
        print("$", " ".join(cmd), flush=True)
        subprocess.run(cmd, check=True, env=dict(os.environ))
    return json.loads(report.read_text())


def _ci(m: dict[str, Any], key: str) -> str:
    return fmt_ci(m.get(key), (m.get("ci") or {}).get(key), ci_digits=2)


def _row(name: str, readout: str, m: dict[str, Any], steps: Any, minutes: Any,
         spp: Any) -> list[str]:
    parse = m.get("parse_rate")
    if parse is None and m.get("parse_failure_rate") is not None:
        parse = 1.0 - float(m["parse_failure_rate"])
    return [name, readout, fmt(parse), _ci(m, "mae"), fmt(m.get("exact_acc")),
            fmt(m.get("within1_acc")), _ci(m, "spearman"), fmt(m.get("pearson")),
            fmt(m.get("qwk")), fmt(steps), fmt(minutes, 1), fmt(spp, 2)]


def combined_table(baseline_entries: Sequence[dict[str, Any]],
                   variants: Sequence[tuple[str, dict[str, Any]]]) -> str:
    """Baselines, then every variant's models and read-outs, in one Markdown table."""
    rows = [_row(e["label"], "-", e["metrics"], 0, 0.0, None) for e in baseline_entries]
    for i, (vname, rep) in enumerate(variants):
        for r in rep["rows"]:
            if r["name"].startswith("constant"):
                continue  # the baselines module's constant is the one shown
            if r["name"].startswith("base") and i > 0:
                continue  # the untrained model once, from the first variant
            name = r["name"] if not vname or r["name"].startswith("base") else \
                f"{vname}: {r['name']}"
            spp = ((rep.get("models", {}).get(r["name"]) or {}).get("seconds_per_pair") or {})
            rows.append(_row(name, r["readout"], r["metrics"], r.get("steps"),
                             r.get("minutes"), spp.get("expected" if "expected" in r["readout"]
                                                       else "sample")))
    return markdown_table(HEADER, rows)


def judge_folder(out: Path) -> Path | None:
    """The folder the recipe's default variant ships: ``final/`` (it carries the judge card),
    else ``sft/`` (an SFT-only run that left no final folder)."""
    for name in ("final", "sft"):
        if (out / name / "config.json").is_file():
            return out / name
    return None


def base_model(folder: Path) -> str:
    """The untrained model a judge folder was trained from (its card's ``base_model`` when that
    folder exists here), else ``default``."""
    from judgeforge.card import JudgeCard

    card = JudgeCard.read(folder)
    base = card.base_model if card is not None else None
    return str(base) if base and Path(base).is_dir() else "default"


def run_ood(out: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Grade the trained judge (and the base model unless ``--skip-base``) on ``--ood-sets``
    of the shipped suite into ``<out>/ood`` (resumable; ``--report-only`` re-reads it)."""
    from judgeforge.benchmarks.suite.run import run_suite

    sets = [x.strip() for x in args.ood_sets.split(",") if x.strip()]
    models: list[str] = []
    if not args.report_only:
        folder = judge_folder(out)
        if folder is None:
            raise SystemExit(f"--ood-sets: no trained judge folder in {out} (final/ or sft/)")
        models = ([] if args.skip_base else [f"base={base_model(folder)}"]) + [
            f"trained={folder}"]
    return run_suite("default", models, out_dir=out / "ood", sets=sets,
                     limit=args.ood_limit or None,
                     seed=0, mode="expected", bootstrap=args.bootstrap, plots=False,
                     show_progress=False, report_only=args.report_only)


OOD_HEADER = ("set", "scale", "mode", "rows", "who", "parse", "MAE [95% CI]",
              "Spearman [95% CI]")


def ood_table(report: dict[str, Any], sets: Sequence[str] | None = None) -> str:
    """Per set (``sets``: only those, in report order): each judge and baseline (MAE, Spearman
    with CIs), then the suite's headline published anchors (Spearman on the whole set) and the
    human ceiling where known."""
    from judgeforge.benchmarks.suite.report import headline_anchors

    rows: list[list[str]] = []
    for s in report.get("sets", []):
        if sets is not None and s["name"] not in sets:
            continue
        head = [s["name"], f"{s['scale'][0]}-{s['scale'][1]}",
                str(s.get("mode", "")).split(" (")[0], fmt(s.get("rows_graded"))]
        for e in list(s.get("judges", [])) + list(s.get("baselines", [])):
            fail = e.get("parse_failure_rate")
            rows.append(head + [str(e["label"]),
                                fmt(None if fail is None else 1.0 - float(fail)),
                                _ci(e, "mae"), _ci(e, "spearman")])
        for a in headline_anchors(report, s):
            rows.append(head + [f"{a['judge']} (published, {fmt(a.get('n'))} rows)", "-", "-",
                                fmt(a.get("spearman"), 2)])
        c = s.get("ceiling")
        if c:
            rows.append(head + ["human (leave-one-rater-out)", "-", "-",
                                fmt(c.get("spearman"), 2)])
    return markdown_table(OOD_HEADER, rows)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("overrides", nargs="*", help="config overrides section.key=value (default "
                   "variant)")
    p.add_argument("--config", default="cpu", help="a training preset name or TrainConfig YAML")
    p.add_argument("--quick", action="store_true", help="the few-minute smoke variant")
    p.add_argument("--out", type=Path, default=Path("runs/cpu-recipe"), help="output folder")
    p.add_argument("--data-dir", type=Path, default=None,
                   help="folder with the Prometheus mt_bench_eval.json and vicuna_eval.json "
                        "(default: the recipe's)")
    p.add_argument("--test-rows", type=int, default=128, help="test rows (whole questions)")
    p.add_argument("--val-rows", type=int, default=96, help="validation rows (whole questions)")
    p.add_argument("--seed", type=int, default=0, help="split seed")
    p.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples for CIs")
    p.add_argument("--variant", action="append", default=[],
                   help="another variant to train on the same split, NAME:key=value,key=value "
                        "(its outputs go to <out>/<NAME with spaces as ->)")
    p.add_argument("--skip-base", action="store_true", help="do not evaluate the base model")
    p.add_argument("--report-only", action="store_true",
                   help="train nothing: re-read every variant's recipe.json (and <out>/ood)")
    p.add_argument("--ood-sets", default=None,
                   help="comma-separated sets of the shipped benchmark suite to grade the "
                        "default variant's judge on afterwards (e.g. newsroom-relevance,"
                        "roscoe-gsm8k): the out-of-domain table")
    p.add_argument("--ood-limit", type=int, default=60,
                   help="seeded sample of rows graded per out-of-domain set (0: all rows)")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    from judgeforge.benchmarks.baselines import baseline_entries, fit_baselines, verdicts
    from judgeforge.data.io import load_records

    variants: list[tuple[str, dict[str, Any]]] = [
        ("", run_variant(args.out, args, args.overrides))]
    for spec in args.variant:
        name, _, rest = spec.partition(":")
        sub = args.out / name.strip().replace(" ", "-")
        variants.append((name.strip(), run_variant(sub, args, [x for x in rest.split(",") if x])))
    split = args.out / "split"
    train = load_records(split / "train.jsonl").records
    test = load_records(split / "test.jsonl").records
    first = variants[0][1]
    from judgeforge.data.schema import Scale

    dim = first["dimension"]
    scale = Scale(min=int(first["scale"][0]), max=int(first["scale"][1]))
    baselines = fit_baselines(train, dim, scale)
    entries = baseline_entries(baselines, test, dim, scale, bootstrap=args.bootstrap)
    labels = [r.label[dim] for r in test]
    if labels != first["test_labels"]:
        raise SystemExit("the split files and the recipe's predictions disagree (rerun without "
                         "--report-only)")
    judges = {}
    for vname, rep in variants:
        for mname, res in rep.get("models", {}).items():
            if mname.startswith("base"):
                continue
            for readout in ("sample", "expected+cal"):
                preds = (res.get("predictions") or {}).get(readout)
                if preds is not None:
                    judges[f"{vname + ': ' if vname else ''}{mname} [{readout}]"] = preds
    lines = verdicts(labels, scale, judges, {e["label"]: p for e, p in zip(
        entries, [b.predict_all(test) for b in baselines])}, bootstrap=args.bootstrap)
    # the untrained base as it would be used: calibrated on the same validation rows
    base_cal = next(((res.get("predictions") or {}).get("expected+cal")
                     for mname, res in first.get("models", {}).items()
                     if mname.startswith("base")), None)
    if base_cal is not None and None not in base_cal:
        lines += verdicts(labels, scale, judges, {"base [expected+cal]": base_cal},
                          bootstrap=args.bootstrap)
    head = (f"Prometheus MT-Bench+Vicuna split by question: {first['rows_train']} train / "
            f"{first['rows_val']} validation / {first['rows_test']} test rows; "
            f"{first['threads']} torch thread(s); calibration fitted on the validation rows\n")
    md = head + "\n" + combined_table(entries, variants) + "\n\n" + "\n".join(
        f"- {v.text}" for v in lines)
    ood = None
    if args.ood_sets:
        ood = run_ood(args.out, args)
        st = ood.get("settings", {})
        md += ("\n\nOut of domain: the default variant's judge on sets of the shipped benchmark "
               f"suite, mode {st.get('mode')} (each set's dimension, scale and task in the "
               "judge's own prompt; no calibration), a seeded sample of at most "
               f"{st.get('limit')} rows per set (seed {st.get('seed')}); baselines fitted on "
               "the set's rows not graded here; anchors: published Spearman on the whole set "
               f"(`{args.out / 'ood' / 'suite.md'}` has every number)\n\n"
               + ood_table(ood, [x.strip() for x in args.ood_sets.split(",") if x.strip()]))
    (args.out / "benchmark.md").write_text(md + "\n")
    (args.out / "benchmark.json").write_text(json.dumps(
        {"baselines": entries, "variants": dict(variants),
         "verdicts": [v.to_dict() for v in lines], "ood": ood}, indent=2, default=str))
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
