"""``judgeforge data``: validate, convert, split and describe pointwise data files.

    judgeforge data validate FILE [--scale 1-5 | --scale DIM=MIN-MAX ...]
    judgeforge data convert helpsteer2 [SOURCE] --out OUT [--split train]
    judgeforge data convert prometheus FILE --out OUT [--dimension quality]
    judgeforge data convert judge-bench FILE --out OUT [--metric Relevance]
    judgeforge data convert feedbackqa FILE [FILE ...] --out OUT
    judgeforge data convert lamp FILE --out OUT
    judgeforge data convert generic FILE --out OUT --map query=COL --map response=COL \\
        --label DIM=COL [--scale 0-4]
    judgeforge data convert pandalm|hhh|pairs|pairs-from-pointwise FILE --out OUT  (pairwise)
    judgeforge data split FILE --out-dir DIR [--test-size 0.2] [--seed 0] [--group-key KEY]
    judgeforge data info FILE

Exit codes: 0 success, 1 invalid data (every bad row printed, no traceback), 2 usage.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from typing import Any

from judgeforge.errors import DataError

__all__ = ["register"]

_EPILOG = "Exit status: 0 success, 1 invalid data or error, 2 bad usage."


def _print_errors(errors: list[Any], *, limit: int = 0, stream: Any = None) -> None:
    """Every error one a line (at most ``limit`` when > 0)."""
    stream = stream or sys.stdout
    shown = errors if limit <= 0 else errors[:limit]
    for err in shown:
        print(str(err), file=stream)
    if len(shown) < len(errors):
        print(f"... and {len(errors) - len(shown)} more", file=stream)


def _add_scale(p: argparse.ArgumentParser, default_help: str) -> None:
    p.add_argument("--scale", action="append", default=None, metavar="[DIM=]MIN-MAX",
                   help="score scale: MIN-MAX for every dimension or DIM=MIN-MAX for one "
                        f"(repeatable); {default_help}")


def _add_out(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", required=True, help="output file (.parquet or .jsonl); the dataset "
                                                "info goes into its metadata or a sidecar")
    p.add_argument("--skip-invalid", action="store_true",
                   help="skip rows that cannot be converted (they are counted and listed) "
                        "instead of failing")


def _report(result: Any, out: str) -> None:
    from judgeforge.data.io import write_records

    if result.errors:
        for err in result.errors:
            print(f"skipped: {err}", file=sys.stderr)
    write_records(out, result.records, result.info)
    dims = ", ".join(f"{d} {s}" for d, s in result.info.dimensions.items())
    print(f"wrote {len(result.records)} records to {out} (skipped {result.skipped}; "
          f"dimensions: {dims})")
    for dim in result.info.dimensions:
        spread = Counter(r.label[dim] for r in result.records if dim in r.label)
        print(f"label spread {dim}: " + json.dumps({str(k): spread[k] for k in sorted(spread)}))


def _guard(func: Any) -> Any:
    """Run a subcommand; a DataError prints every bad row and field, then exits 1."""

    def run(args: argparse.Namespace) -> int:
        try:
            return int(func(args) or 0)
        except DataError as exc:
            validating = args.data_command == "validate"
            _print_errors(exc.errors, limit=getattr(args, "max_errors", 0),
                          stream=sys.stdout if validating else sys.stderr)
            head = str(exc).splitlines()[0] if str(exc) else "invalid data"
            print(f"judgeforge data {args.data_command}: {head}", file=sys.stderr)
            return 1

    return run


def _cmd_validate(args: argparse.Namespace) -> int:
    from judgeforge.data.io import load_records
    from judgeforge.data.pairwise import is_pairwise_file

    if is_pairwise_file(args.file):  # response_a/response_b columns: pairwise records
        from judgeforge.data.cli_pairwise import validate_pairwise

        return validate_pairwise(args.file, args.max_errors)
    result = load_records(args.file, scale=args.scale, skip_invalid=True)
    total = len(result.records) + result.skipped
    if result.errors:
        _print_errors(result.errors, limit=args.max_errors)
        print(f"{args.file}: {result.skipped} invalid row(s) of {total}", file=sys.stderr)
        return 1
    from judgeforge.data.validate import duplicate_ids

    repeats = duplicate_ids(result.records)
    if repeats:
        _print_errors(repeats, limit=args.max_errors)
        print(f"{args.file}: {len(repeats)} row(s) repeat an earlier row's id", file=sys.stderr)
        return 1
    dims = ", ".join(f"{d} {s}" for d, s in result.info.dimensions.items())
    print(f"{args.file}: {total} rows OK (dimensions: {dims})")
    return 0


def _cmd_helpsteer2(args: argparse.Namespace) -> int:
    from judgeforge.data.converters.helpsteer2 import HELPSTEER2_DIMENSIONS, convert_helpsteer2

    dims = args.dimensions.split(",") if args.dimensions else HELPSTEER2_DIMENSIONS
    result = convert_helpsteer2(args.source, split=args.split, dimensions=dims,
                                skip_invalid=args.skip_invalid)
    _report(result, args.out)
    return 0


def _cmd_prometheus(args: argparse.Namespace) -> int:
    from judgeforge.data.converters.prometheus import convert_prometheus

    result = convert_prometheus(args.file, dimension=args.dimension,
                                data_source=args.data_source, skip_invalid=args.skip_invalid)
    _report(result, args.out)
    return 0


def _cmd_judge_bench(args: argparse.Namespace) -> int:
    from judgeforge.data.converters.judge_bench import convert_judge_bench

    result = convert_judge_bench(args.file, metric=args.metric, data_source=args.data_source,
                                 skip_invalid=args.skip_invalid)
    _report(result, args.out)
    return 0


def _cmd_feedbackqa(args: argparse.Namespace) -> int:
    from judgeforge.data.converters.base import merge_results
    from judgeforge.data.converters.feedbackqa import convert_feedbackqa

    result = merge_results([convert_feedbackqa(f, dimension=args.dimension,
                                               skip_invalid=args.skip_invalid)
                            for f in args.files])
    _report(result, args.out)
    return 0


def _cmd_lamp(args: argparse.Namespace) -> int:
    from judgeforge.data.converters.lamp import convert_lamp

    result = convert_lamp(args.file, dimension=args.dimension, data_source=args.data_source,
                          skip_invalid=args.skip_invalid)
    _report(result, args.out)
    return 0


def _cmd_generic(args: argparse.Namespace) -> int:
    from judgeforge.data.converters.generic import ColumnMapping, convert_generic

    mapping = ColumnMapping.from_specs(args.map or [], args.label or [], args.extra or [])
    result = convert_generic(args.file, mapping, scale=args.scale, data_source=args.data_source,
                             name=args.name, skip_invalid=args.skip_invalid, fmt=args.format)
    _report(result, args.out)
    return 0


def _cmd_split(args: argparse.Namespace) -> int:
    from judgeforge.data.split import split_file

    size: float | int = float(args.test_size)
    if size >= 1 and float(size).is_integer():
        size = int(size)
    train, test = split_file(args.file, args.out_dir, test_size=size, seed=args.seed,
                             dimension=args.dimension, fmt=args.format,
                             skip_invalid=args.skip_invalid, group_key=args.group_key,
                             grouped=not args.by_row)
    print(f"wrote {train} and {test}")
    return 0


def _cmd_info(args: argparse.Namespace) -> int:
    from judgeforge.data.io import load_records

    result = load_records(args.file, scale=args.scale, skip_invalid=args.skip_invalid)
    spread = {d: dict(sorted(Counter(r.label[d] for r in result if d in r.label).items()))
              for d in result.info.dimensions}
    sources = Counter(r.data_source for r in result)
    print(json.dumps({"info": result.info.model_dump(mode="json"), "rows": len(result.records),
                      "skipped": result.skipped, "data_sources": dict(sources),
                      "label_counts": spread}, indent=2, ensure_ascii=False))
    return 0


def _convert_parsers(sub: Any) -> None:
    conv = sub.add_parser("convert", help="convert a dataset to pointwise or pairwise records",
                          description="Convert a dataset to pointwise records (or pairwise "
                                      "ones: pandalm, hhh, pairs, pairs-from-pointwise).",
                          epilog=_EPILOG)
    kinds = conv.add_subparsers(dest="convert_kind", metavar="KIND", required=True)

    hs = kinds.add_parser("helpsteer2", help="HelpSteer2 (hub, folder or local file)",
                          description="HelpSteer2 -> records with all five 0-4 dimensions.")
    hs.add_argument("source", nargs="?", default="nvidia/HelpSteer2",
                    help="hub name or dataset folder (read with `datasets`), or a local "
                         "Parquet/JSONL file (hub columns or SteerLM text/label rows)")
    hs.add_argument("--split", default="train", help="split to read from the hub or a folder")
    hs.add_argument("--dimensions", default=None,
                    help="comma-separated subset of helpfulness,correctness,coherence,"
                         "complexity,verbosity (default: all five)")
    _add_out(hs)
    hs.set_defaults(func=_guard(_cmd_helpsteer2))

    pr = kinds.add_parser("prometheus", help="a Prometheus absolute-grading set (1-5)",
                          description="Prometheus absolute grading (e.g. mt_bench_eval.json) -> "
                                      "records; label = mean of the GPT-4 scores rounded "
                                      "half up; rubric and reference go to extra_info.")
    pr.add_argument("file", help="JSON list or JSONL of {idx, instruction, gpt4_score, ...}")
    pr.add_argument("--dimension", default="quality", help="name of the label dimension")
    pr.add_argument("--data-source", default=None,
                    help="data_source of the records (default prometheus/<file stem>)")
    _add_out(pr)
    pr.set_defaults(func=_guard(_cmd_prometheus))

    jb = kinds.add_parser("judge-bench", help="a JUDGE-BENCH human-rated set (graded metric)",
                          description="JUDGE-BENCH {annotations, instances} file -> records for "
                                      "one graded metric; label = mean of the individual human "
                                      "scores rounded half up (kept in extra_info.rater_scores);"
                                      " the instance text is split into query and response.")
    jb.add_argument("file", help="e.g. newsroom.json or roscoe-gsm8k-overall.json (.gz too)")
    jb.add_argument("--metric", default=None,
                    help="graded metric to convert, e.g. Relevance or 'Overall Quality' "
                         "(default: the file's first graded metric)")
    jb.add_argument("--data-source", default=None,
                    help="data_source of the records (default judge-bench/<file stem>)")
    _add_out(jb)
    jb.set_defaults(func=_guard(_cmd_judge_bench))

    fq = kinds.add_parser("feedbackqa", help="FeedbackQA rated answers (0-3)",
                          description="FeedbackQA feedback_<split>.json files -> one record "
                                      "file; label = mean of the ratings (Bad 0 .. Excellent 3) "
                                      "rounded half up; ratings, explanations and the question "
                                      "(group key) go to extra_info.")
    fq.add_argument("files", nargs="+",
                    help="one or more <domain>_feedback_<split>.json files (.gz too)")
    fq.add_argument("--dimension", default="quality", help="name of the label dimension")
    _add_out(fq)
    fq.set_defaults(func=_guard(_cmd_feedbackqa))

    la = kinds.add_parser("lamp", help="LAMP-R expert-rated paragraphs (1-10)",
                          description="LAMP-R chat rows -> records (the paragraph is the "
                                      "response); draft/edit twins share extra_info.pair.")
    la.add_argument("file", help="LAMP-R test/train JSON lines (.gz too)")
    la.add_argument("--dimension", default="quality", help="name of the label dimension")
    la.add_argument("--data-source", default=None,
                    help="data_source of the records (default lamp-r/<split>)")
    _add_out(la)
    la.set_defaults(func=_guard(_cmd_lamp))

    ge = kinds.add_parser("generic", help="any JSONL/JSON/CSV/Parquet table by column mapping",
                          description="A flat table -> records, mapping columns to roles.")
    ge.add_argument("file", help="input table (.jsonl, .json, .csv or .parquet)")
    ge.add_argument("--map", action="append", metavar="ROLE=COLUMN",
                    help="map a column: roles query, response (required), system, id, "
                         "data_source, rubric, reference (repeatable)")
    ge.add_argument("--label", action="append", metavar="[DIM=]COLUMN",
                    help="a label column and its dimension name (repeatable; at least one)")
    ge.add_argument("--extra", action="append", metavar="COLUMN",
                    help="copy this column into extra_info (repeatable)")
    _add_scale(ge, "default 0-4")
    ge.add_argument("--data-source", default=None,
                    help="data_source when no column is mapped (default: the file's stem)")
    ge.add_argument("--name", default=None, help="dataset name in the info (default: file stem)")
    ge.add_argument("--format", choices=["jsonl", "json", "csv", "parquet"], default=None,
                    help="input format (default: from the suffix)")
    _add_out(ge)
    ge.set_defaults(func=_guard(_cmd_generic))

    from judgeforge.data.cli_pairwise import add_pairwise_converters

    add_pairwise_converters(kinds, _guard)


def register(subparsers: Any) -> None:
    """Add ``data`` and its subcommands to the judgeforge CLI."""
    data = subparsers.add_parser("data", help="validate, convert, split and describe data files",
                                 description="Pointwise data files (Parquet, JSONL).",
                                 epilog=_EPILOG)
    sub = data.add_subparsers(dest="data_command", metavar="SUBCOMMAND", required=True)

    va = sub.add_parser("validate", help="check a file; print every bad row and field",
                        description="Validate a pointwise or pairwise Parquet/JSONL file (a "
                                    "pairwise one has response_a and response_b columns).",
                        epilog=_EPILOG)
    va.add_argument("file", help="a .parquet or .jsonl file")
    _add_scale(va, "default: the file's stored info, else 0-4")
    va.add_argument("--max-errors", type=int, default=0,
                    help="print at most this many errors (0: all)")
    va.set_defaults(func=_guard(_cmd_validate))

    _convert_parsers(sub)

    sp = sub.add_parser("split", help="group-aware, stratified, seeded train/test split",
                        description="Split a file into DIR/train.* and DIR/test.*, stratified by "
                                    "a label dimension; rows of one group (same query text, or "
                                    "same extra_info[--group-key]) stay on one side; both keep "
                                    "the dataset info.",
                        epilog=_EPILOG)
    sp.add_argument("file", help="a .parquet or .jsonl file")
    sp.add_argument("--test-size", type=float, default=0.2,
                    help="test fraction (0-1) or number of test rows (>= 1)")
    sp.add_argument("--seed", type=int, default=0, help="random seed (same seed, same split)")
    sp.add_argument("--out-dir", required=True, help="directory for train.* and test.*")
    sp.add_argument("--dimension", default=None,
                    help="label dimension to stratify by (default: the first)")
    sp.add_argument("--group-key", default=None, metavar="KEY",
                    help="group rows by extra_info[KEY] (default: by the text of the query)")
    sp.add_argument("--by-row", action="store_true",
                    help="split row by row, ignoring groups (only for data whose rows share "
                         "no query)")
    sp.add_argument("--format", choices=["parquet", "jsonl"], default=None,
                    help="output format (default: the input's)")
    sp.add_argument("--skip-invalid", action="store_true",
                    help="leave out invalid rows (counted) instead of failing")
    sp.set_defaults(func=_guard(_cmd_split))

    inf = sub.add_parser("info", help="print the dataset info, row count and label spread",
                         description="Describe a pointwise file as JSON.", epilog=_EPILOG)
    inf.add_argument("file", help="a .parquet or .jsonl file")
    _add_scale(inf, "default: the file's stored info, else 0-4")
    inf.add_argument("--skip-invalid", action="store_true",
                     help="describe the valid rows only (invalid ones are counted)")
    inf.set_defaults(func=_guard(_cmd_info))
