"""``judgeforge bench quality``, ``bench suite`` and ``bench throughput`` (entry point
``judgeforge.commands: bench``)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

__all__ = ["register"]

_MODEL_HELP = ("the judge: an OpenAI-compatible base URL (http://host:port[/v1]), a local Hugging "
               "Face model folder (served by a managed vLLM server), or 'default' (the prepared "
               "default model); prefix NAME= to label it (e.g. base=default)")


def _server_options(args: argparse.Namespace) -> dict[str, Any]:
    opts: dict[str, Any] = {}
    if args.server_arg:
        opts["extra_args"] = tuple(args.server_arg)
    if args.kv_cache_gib is not None:
        opts["kv_cache_gib"] = args.kv_cache_gib
    if args.max_model_len is not None:
        opts["max_model_len"] = args.max_model_len
    return opts


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", required=True,
                   help="labelled pointwise file (.jsonl or .parquet, e.g. a converted "
                        "Prometheus set)")
    p.add_argument("--dimension", default=None,
                   help="label dimension to grade (default: the file's first dimension)")
    p.add_argument("--model-name", default=None,
                   help="served model name for URL judges (default: the server's first model "
                        "in /v1/models)")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of the row sample (--limit) and of the bootstrap/round order")
    p.add_argument("--max-tokens", type=int, default=None,
                   help="max generated tokens for sample/vote requests (default: the grader's, "
                        "256)")
    p.add_argument("--vote-n", type=int, default=5, help="samples per row in vote mode")
    p.add_argument("--timeout", type=float, default=600.0,
                   help="seconds per model request attempt")
    p.add_argument("--server-arg", action="append", default=[], metavar="ARG",
                   help="extra vLLM argument for managed (PATH/default) servers, repeatable; "
                        "e.g. --server-arg=--no-enable-prefix-caching")
    p.add_argument("--kv-cache-gib", type=float, default=None,
                   help="KV cache size (GiB) of a managed CPU vLLM server")
    p.add_argument("--max-model-len", type=int, default=None,
                   help="max context length of a managed vLLM server")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def _quality(args: argparse.Namespace) -> int:
    from judgeforge.benchmarks.quality import run_quality
    from judgeforge.benchmarks.report import baseline_lines, quality_table

    report = run_quality(
        args.data, args.model, out_dir=args.out, dimension=args.dimension, mode=args.mode,
        constrained=args.constrained, limit=args.limit, seed=args.seed,
        concurrency=args.concurrency, bootstrap=args.bootstrap, max_tokens=args.max_tokens,
        vote_n=args.vote_n, model_name=args.model_name, server_options=_server_options(args),
        timeout=args.timeout, show_progress=not args.no_progress, plots=not args.no_plots,
        overwrite=args.overwrite, train_data=args.train_data,
        calibration_data=args.calibration_data, base=args.base, prompt_of=args.prompt_of)
    d = report["data"]
    print(f"\n{d['name']}: {d['rows_graded']} rows, dimension {d['dimension']} "
          f"({d['scale'][0]}-{d['scale'][1]}), mode {report['mode']}"
          + (" constrained" if report["constrained"] else ""))
    print(quality_table(report))
    print("\n".join(baseline_lines(report)))
    print(f"\nreport: {args.out}/report.md, {args.out}/report.json")
    return 0


def _preference(args: argparse.Namespace) -> int:
    from judgeforge.benchmarks.preference import run_preference
    from judgeforge.benchmarks.preference_report import preference_table

    published: dict[str, str] | None = {} if args.no_published else None
    for item in args.published:
        published = published or {}
        label, sep, path = item.partition("=")
        if not sep or not label or not path:
            print(f"judgeforge bench preference: --published wants LABEL=PATH, got {item!r}",
                  file=sys.stderr)
            return 2
        published[label] = path
    report = run_preference(
        args.data, args.model, out_dir=args.out, limit=args.limit, dev_limit=args.dev_limit,
        margin=args.margin, margin_metric=args.margin_metric, mode=args.mode,
        both_orders=args.both_orders, graders=[g for g in args.graders.split(",") if g],
        published=published, seed=args.seed, concurrency=args.concurrency,
        bootstrap=args.bootstrap, max_tokens=args.max_tokens, model_name=args.model_name,
        server_options=_server_options(args), timeout=args.timeout,
        show_progress=not args.no_progress, plots=not args.no_plots, overwrite=args.overwrite)
    d = report["data"]
    print(f"\n{d['path']}: {d['rows_graded']} of {d['rows_in_file']} pairs, gold "
          f"{d['gold_counts']}")
    print(preference_table(report))
    print(f"\nreport: {args.out}/report.md, {args.out}/report.json")
    return 0


def _suite(args: argparse.Namespace) -> int:
    from judgeforge.benchmarks.suite import load_suite, run_suite
    from judgeforge.benchmarks.suite.report import set_table, summary_table

    suite = load_suite(args.suite)
    sets = [x.strip() for x in args.sets.split(",") if x.strip()] if args.sets else None
    if not args.model and not args.report_only:
        print("judgeforge bench suite: give at least one --model (or --report-only)",
              file=sys.stderr)
        return 2
    report = run_suite(
        suite, args.model or [], out_dir=args.out, sets=sets, limit=args.limit, seed=args.seed,
        mode=args.mode, concurrency=args.concurrency, bootstrap=args.bootstrap,
        max_tokens=args.max_tokens, vote_n=args.vote_n, model_name=args.model_name,
        server_options=_server_options(args), timeout=args.timeout,
        show_progress=not args.no_progress, plots=not args.no_plots, overwrite=args.overwrite,
        report_only=args.report_only)
    for s in report["sets"]:
        print(f"\n## {s['name']}: {s['dimension']} ({s['scale'][0]}-{s['scale'][1]}), "
              f"{s['rows_graded']} of {s['rows_in_set']} rows")
        print(set_table(report, s, all_anchors=False))
    print(f"\n## Spearman with the human labels (suite {report['suite']['name']})")
    print(summary_table(report))
    print(f"\nreport: {args.out}/suite.md, {args.out}/suite.json, {args.out}/suite.png "
          f"({report['timings']['total_s']:.0f} s)")
    return 0


def _throughput(args: argparse.Namespace) -> int:
    from judgeforge.benchmarks.report import throughput_goals_table, throughput_table
    from judgeforge.benchmarks.throughput import run_throughput

    variants = [v.strip() for v in args.variants.split(",") if v.strip()] if args.variants \
        else None
    report = run_throughput(
        args.model, args.data, concurrency=args.concurrency, rounds=args.rounds,
        limit=args.limit, dimension=args.dimension, constrained=args.constrained,
        max_tokens=args.max_tokens, vote_n=args.vote_n, seed=args.seed, variants=variants,
        warmup=args.warmup, model_name=args.model_name, server_options=_server_options(args),
        timeout=args.timeout, out_dir=args.out, show_progress=not args.no_progress)
    s = report["setup"]
    print(f"\n{s['served_model']} at {s['base_url']}: {s['rows']} rows x {s['rounds']} rounds "
          f"(medians), constrained={s['constrained']}")
    print(throughput_table(report))
    for lim in report["prefill_limit"]:
        print(f"prefill-bound limit at c={lim['concurrency']}: "
              f"{lim['prompt_tokens_per_s']:.0f} prompt tok/s / "
              f"{lim['prompt_tokens_per_pair']:.0f} tok/pair = "
              f"{lim['limit_pairs_per_s']:.3f} pairs/s")
    if report["goals"]:
        print()
        print(throughput_goals_table(report))
    for note in report["notes"]:
        print(f"note: {note}")
    if args.out:
        print(f"\nreport: {args.out}/throughput.md, {args.out}/throughput.json")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``bench`` with its ``quality`` and ``throughput`` subcommands."""
    bench = subparsers.add_parser(
        "bench", help="benchmark judges: quality against human labels, grading throughput",
        description="Benchmark judges: how close to human labels (quality) and how fast "
                    "(throughput).")
    sub = bench.add_subparsers(dest="bench_command", metavar="BENCH")

    def no_sub(_args: argparse.Namespace) -> int:
        bench.print_help(sys.stderr)
        return 2

    bench.set_defaults(func=no_sub)

    q = sub.add_parser(
        "quality", help="grade a labelled file with one or more judges; metrics, tables, plots",
        description="Grade a labelled pointwise file with each judge and write report.json "
                    "(every metric with bootstrap CIs, per data_source), report.md (judges side "
                    "by side), PNG plots and the per-row results (results.jsonl, resumable; "
                    "rows.jsonl).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    _add_common(q)
    q.add_argument("--model", action="append", required=True, metavar="[NAME=]URL|PATH|default",
                   help=_MODEL_HELP + "; repeat to compare judges")
    q.add_argument("--mode", choices=("sample", "expected", "vote"), default="expected",
                   help="scoring mode: sample (parse <score>X</score>), expected "
                        "(probability-weighted score after a <score> prefill), vote (n samples)")
    q.add_argument("--constrained", action=argparse.BooleanOptionalAction, default=False,
                   help="constrain sample/vote decoding to the <score>X</score> format")
    q.add_argument("--limit", type=int, default=None,
                   help="grade a seeded random sample of N rows (default: all rows)")
    q.add_argument("--concurrency", type=int, default=8,
                   help="(row, judge) evaluations in flight")
    q.add_argument("--bootstrap", type=int, default=1000,
                   help="bootstrap resamples for the confidence intervals (0: none)")
    q.add_argument("--out", required=True, help="output folder for the report, plots and rows")
    q.add_argument("--train-data", default=None, metavar="FILE",
                   help="the training split the judges learned from: fits the constant and "
                        "response-length baselines shown beside them (default: no baselines)")
    q.add_argument("--calibration-data", default=None, metavar="VAL",
                   help="validation rows (e.g. the val.parquet a CPU training run writes into "
                        "its output folder; --mode expected): each judge is also reported as "
                        "'<label> (calibrated)', its expected score mapped through an isotonic "
                        "calibration fitted on these rows, and every judge gets a verdict "
                        "against the calibrated --base judge")
    q.add_argument("--base", default="base", metavar="LABEL",
                   help="label of the untrained base judge whose calibrated twin the other "
                        "judges must beat (with --calibration-data)")
    q.add_argument("--prompt-of", default=None, metavar="LABEL",
                   help="grade every judge with the prompt of judge LABEL's judge card (e.g. "
                        "--prompt-of trained: the untrained base sees the trained judge's "
                        "prompt settings); default: each judge its own card's, or the plain "
                        "prompt")
    q.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    q.add_argument("--overwrite", action="store_true",
                   help="discard results already in --out instead of resuming from them")
    q.set_defaults(func=_quality)

    pr = sub.add_parser(
        "preference", help="which of two responses is better: a judge against human verdicts",
        description="Grade a pairwise file (judgeforge data convert pandalm/hhh/pairs) with one "
                    "judge two ways: its pointwise scores of both responses (expected mode; a tie "
                    "within a margin) and its pairwise verdict (both orders); write report.json, "
                    "report.md (beside the published verdicts, 'longer wins' and the majority "
                    "class, with bootstrap intervals), preference.png and rows.jsonl "
                    "(resumable).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    pr.add_argument("--data", required=True, help="pairwise Parquet/JSONL file")
    pr.add_argument("--model", required=True, metavar="[NAME=]URL|PATH|default",
                    help=_MODEL_HELP)
    pr.add_argument("--model-name", default=None,
                    help="served model name for URL judges (default: the server's first model)")
    pr.add_argument("--out", required=True, help="output folder (resumable)")
    pr.add_argument("--limit", type=int, default=None,
                    help="grade a seeded random sample of N pairs (default: all)")
    pr.add_argument("--dev-limit", type=int, default=0,
                    help="fit the pointwise tie margin on N other pairs of the file (0: margin "
                         "0 unless --margin)")
    pr.add_argument("--margin", type=float, default=None,
                    help="the pointwise tie margin on the judge's scale (default: fitted on "
                         "--dev-limit pairs, else 0)")
    pr.add_argument("--margin-metric", choices=("macro_f1", "accuracy"), default="macro_f1",
                    help="what the fitted margin maximises on the dev pairs")
    pr.add_argument("--mode", choices=("expected", "sample"), default="expected",
                    help="pairwise verdicts: expected (verdict-token probabilities after a "
                         "<verdict> prefill) or sample (parse <verdict>A|B|TIE</verdict>)")
    pr.add_argument("--both-orders", action=argparse.BooleanOptionalAction, default=True,
                    help="judge (a, b) and (b, a) and average (pairwise verdicts)")
    pr.add_argument("--graders", default="pointwise,pairwise",
                    help="comma-separated: pointwise (derived from scores), pairwise")
    pr.add_argument("--published", action="append", default=[], metavar="LABEL=PATH",
                    help="a published judge's verdict file to stand beside (PandaLM's "
                         "gpt-3.5-turbo-testset-v1.json or pandalm-7b-testset-v1.json), joined "
                         "by record id; repeatable (default: the shipped GPT-3.5 and "
                         "PandaLM-7B verdicts when the pairs are PandaLM's)")
    pr.add_argument("--no-published", action="store_true",
                    help="stand no published verdicts beside the judge")
    pr.add_argument("--seed", type=int, default=0, help="seed of the sample and the bootstrap")
    pr.add_argument("--concurrency", type=int, default=8, help="pairs in flight")
    pr.add_argument("--bootstrap", type=int, default=1000,
                    help="bootstrap resamples for the intervals (0: none)")
    pr.add_argument("--max-tokens", type=int, default=None,
                    help="max generated tokens in sample mode (default: 256)")
    pr.add_argument("--timeout", type=float, default=600.0,
                    help="seconds per model request attempt")
    pr.add_argument("--server-arg", action="append", default=[], metavar="ARG",
                    help="extra vLLM argument for managed (PATH/default) servers, repeatable")
    pr.add_argument("--kv-cache-gib", type=float, default=None,
                    help="KV cache size (GiB) of a managed CPU vLLM server")
    pr.add_argument("--max-model-len", type=int, default=None,
                    help="max context length of a managed vLLM server")
    pr.add_argument("--no-plots", action="store_true", help="skip the PNG plot")
    pr.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    pr.add_argument("--overwrite", action="store_true",
                    help="discard results already in --out instead of resuming from them")
    pr.set_defaults(func=_preference)

    st = sub.add_parser(
        "suite", help="grade judges over a suite of human-labelled sets, with published anchors",
        description="Grade one or more judges over every set of a benchmark suite (the shipped "
                    "'default' suite or a suite YAML) with `bench quality`'s machinery per set "
                    "(resumable), and write suite.json, suite.md and suite.png: per set rows, "
                    "parse failures, MAE, Spearman, Pearson, Kendall and QWK with bootstrap CIs, "
                    "the constant and length baselines, the published anchors and a human "
                    "ceiling where rater scores exist.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    st.add_argument("--suite", default="default",
                    help="a shipped suite name (default, prometheus) or a suite YAML file")
    st.add_argument("--sets", default=None,
                    help="comma-separated set names to run (default: every set of the suite)")
    st.add_argument("--model", action="append", default=None, metavar="[NAME=]URL|PATH|default",
                    help=_MODEL_HELP + "; repeat to compare judges (a judge already graded in "
                         "--out is reused, a new label is graded alone)")
    st.add_argument("--model-name", default=None,
                    help="served model name for URL judges (default: the server's first model "
                         "in /v1/models)")
    st.add_argument("--mode", choices=("sample", "expected", "vote"), default="expected",
                    help="scoring mode (see bench quality)")
    st.add_argument("--limit", type=int, default=None,
                    help="grade a seeded random sample of N rows per set (default: all rows)")
    st.add_argument("--seed", type=int, default=0,
                    help="seed of the row sample (--limit) and of the bootstrap")
    st.add_argument("--concurrency", type=int, default=4,
                    help="(row, judge) evaluations in flight")
    st.add_argument("--bootstrap", type=int, default=1000,
                    help="bootstrap resamples for the confidence intervals (0: none)")
    st.add_argument("--max-tokens", type=int, default=None,
                    help="max generated tokens for sample/vote requests")
    st.add_argument("--vote-n", type=int, default=5, help="samples per row in vote mode")
    st.add_argument("--timeout", type=float, default=600.0,
                    help="seconds per model request attempt")
    st.add_argument("--server-arg", action="append", default=[], metavar="ARG",
                    help="extra vLLM argument for managed (PATH/default) servers, repeatable")
    st.add_argument("--kv-cache-gib", type=float, default=None,
                    help="KV cache size (GiB) of a managed CPU vLLM server")
    st.add_argument("--max-model-len", type=int, default=None,
                    help="max context length of a managed vLLM server")
    st.add_argument("--out", required=True,
                    help="output folder: suite.{json,md,png} and one folder per set (resumable)")
    st.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    st.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    st.add_argument("--overwrite", action="store_true",
                    help="discard results already in --out instead of resuming from them")
    st.add_argument("--report-only", action="store_true",
                    help="grade nothing: rebuild suite.json/md/png from the per-set reports "
                         "already in --out (same --limit and --seed)")
    st.set_defaults(func=_suite)

    t = sub.add_parser(
        "throughput", help="pairs/s of judgeforge vs the raw client and OpenJudge, one server",
        description="Send the same grading requests several ways against one server, in "
                    "interleaved rounds: the raw AsyncOpenAI client, judgeforge's runner in each "
                    "mode, OpenJudge's runner with the same grader, OpenJudge's JSON "
                    "RelevanceGrader, and max_tokens=1 probes for the prefill-bound limit.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    _add_common(t)
    t.add_argument("--model", required=True, metavar="[NAME=]URL|PATH|default", help=_MODEL_HELP)
    t.add_argument("--concurrency", default="1,8",
                   help="comma-separated concurrency levels, e.g. 1,8,32")
    t.add_argument("--rounds", type=int, default=3,
                   help="interleaved rounds per concurrency (medians are reported)")
    t.add_argument("--limit", type=int, default=12,
                   help="rows graded by every variant in every round (a seeded sample)")
    t.add_argument("--constrained", action=argparse.BooleanOptionalAction, default=True,
                   help="constrain sample/vote decoding to <score>X</score> (raw baseline too)")
    t.add_argument("--variants", default=None,
                   help="comma-separated subset of: raw, prefill, jf-sample, jf-expected, "
                        "jf-vote, oj-runner, oj-relevance (default: all available)")
    t.add_argument("--warmup", type=int, default=2,
                   help="rows each variant grades once before measuring (0: no warm-up)")
    t.add_argument("--out", default=None,
                   help="folder for throughput.json and throughput.md (default: print only)")
    t.set_defaults(func=_throughput)
