"""How much of a split's test labels can any judge reach? Ceilings and cheap signals, no model.

Reads the ``train.jsonl``/``test.jsonl`` of a split folder (the CPU recipe writes one into
``<out>/split``) and prints, for the test rows, the Spearman correlation with the labels of:

- ``rater noise ceiling``: one rating against the mean of the others, when the records keep
  their raters' individual scores (``extra_info.gpt4_scores`` for Prometheus: three GPT-4 runs);
  no judge is expected to agree with the label better than the raters agree with each other;
- ``question oracle``: the mean label of the row's own question
  (:func:`judgeforge.data.split.group_of`: ``--group-key``, else the user turns' text), read off
  the test labels themselves: the share of the ranking that is "which questions get high marks"
  rather than "which answer is better"; not a predictor, an upper bound for a judge that only
  learns question difficulty;
- cheap signals a small model could latch onto, each fitted on the training rows only: response
  length (:func:`judgeforge.benchmarks.baselines.response_length`, as the length baseline reads
  it), TF-IDF cosine of the response with the query and with the reference answer
  (``extra_info.reference``), and the training-label mean of the row's ``extra_info`` fields
  given by ``--field`` (e.g. ``response_source``, ``category``).

    python benchmarks/label_signal.py runs/cpu-recipe/split --group-key idx \\
        --field response_source --field category

Numbers only: no test asserts them (README "The CPU recipe, measured" quotes them).
"""

from __future__ import annotations

import argparse
import statistics
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from judgeforge.benchmarks.baselines import response_length
from judgeforge.benchmarks.report import fmt_ci, markdown_table
from judgeforge.data.io import load_records
from judgeforge.data.schema import PointwiseRecord, Scale
from judgeforge.data.split import group_of
from judgeforge.metrics import compute_metrics

__all__ = ["main", "signal_rows", "rater_ceiling"]


def _label(record: PointwiseRecord, dimension: str) -> int:
    return int(record.label[dimension])


def rater_ceiling(records: Sequence[PointwiseRecord], field: str) -> list[float] | None:
    """Per rater position i, Spearman of rating i with the mean of the other ratings (None when
    the records do not all keep at least two ratings under ``extra_info[field]``)."""
    from scipy.stats import spearmanr

    raw = [(r.extra_info or {}).get(field) for r in records]
    lists = [x for x in raw if isinstance(x, list) and len(x) >= 2]
    if not raw or len(lists) != len(raw):
        return None
    ratings = [[float(v) for v in x] for x in lists]
    width = min(len(x) for x in ratings)
    out = []
    for i in range(width):
        one = [x[i] for x in ratings]
        rest = [statistics.mean(x[j] for j in range(width) if j != i) for x in ratings]
        out.append(float(spearmanr(one, rest)[0]))
    return out


def _tfidf_cosine(train: Sequence[PointwiseRecord], other: Callable[[PointwiseRecord], str]
                  ) -> Callable[[PointwiseRecord], float]:
    from sklearn.feature_extraction.text import TfidfVectorizer

    vec = TfidfVectorizer(sublinear_tf=True).fit(
        [r.response for r in train] + [other(r) for r in train])

    def cos(record: PointwiseRecord) -> float:
        a, b = vec.transform([record.response]), vec.transform([other(record)])
        return float((a @ b.T).toarray()[0, 0])
    return cos


def _field_mean(train: Sequence[PointwiseRecord], dimension: str, field: str
                ) -> Callable[[PointwiseRecord], float]:
    labels: dict[str, list[int]] = defaultdict(list)
    for r in train:
        labels[str((r.extra_info or {}).get(field))].append(_label(r, dimension))
    overall = statistics.mean(_label(r, dimension) for r in train)
    return lambda r: statistics.mean(labels.get(str((r.extra_info or {}).get(field)), [overall]))


def signal_rows(train: Sequence[PointwiseRecord], test: Sequence[PointwiseRecord],
                dimension: str, scale: Scale, *, group_key: str | None = None,
                fields: Sequence[str] = (), bootstrap: int = 1000) -> list[dict[str, Any]]:
    """One entry per signal: ``name``, ``spearman``, ``ci`` (bootstrap over test rows)."""
    labels = [_label(r, dimension) for r in test]
    groups: dict[str, list[int]] = defaultdict(list)
    for i, (r, y) in enumerate(zip(test, labels)):
        groups[group_of(r, group_key, index=i)].append(y)
    signals: list[tuple[str, Callable[[PointwiseRecord], float]]] = [
        ("question oracle (test labels' own question mean)",
         lambda r: statistics.mean(groups[group_of(r, group_key)])),
        ("response length (characters)", response_length),
        ("TF-IDF cosine(response, query)", _tfidf_cosine(train, lambda r: r.query)),
    ]
    if all((r.extra_info or {}).get("reference") for r in [*train, *test]):
        signals.append(("TF-IDF cosine(response, reference answer)", _tfidf_cosine(
            train, lambda r: str((r.extra_info or {})["reference"]))))
    signals += [(f"training-label mean by extra_info.{f}", _field_mean(train, dimension, f))
                for f in fields]
    out = []
    for name, fn in signals:
        m = compute_metrics([fn(r) for r in test], labels, scale, bootstrap=bootstrap)
        out.append({"name": name, "spearman": m["spearman"],
                    "ci": (m.get("ci") or {}).get("spearman")})
    return out


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("split", type=Path, help="folder with train.jsonl and test.jsonl")
    p.add_argument("--dimension", default=None, help="label dimension (default: the only one)")
    p.add_argument("--group-key", default=None,
                   help="extra_info key that names a row's question (default: the user "
                        "turns' text)")
    p.add_argument("--field", action="append", default=[],
                   help="extra_info field whose training-label mean is a signal (repeatable)")
    p.add_argument("--ratings-field", default="gpt4_scores",
                   help="extra_info field with the raters' individual scores (noise ceiling)")
    p.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples for CIs")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    train_res = load_records(args.split / "train.jsonl")
    test = load_records(args.split / "test.jsonl").records
    train = train_res.records
    dims = list(train_res.info.dimensions)
    dimension = args.dimension or (dims[0] if len(dims) == 1 else None)
    if dimension is None:
        raise SystemExit(f"the data has dimensions {dims}: pass --dimension")
    scale = train_res.info.scale(dimension)
    rows = signal_rows(train, test, dimension, scale, group_key=args.group_key,
                       fields=args.field, bootstrap=args.bootstrap)
    ceiling = rater_ceiling(test, args.ratings_field)
    table = [(r["name"], fmt_ci(r["spearman"], r["ci"])) for r in rows]
    if ceiling:
        table.insert(0, (f"rater noise ceiling (one of {len(ceiling)} ratings vs the others' "
                         "mean)", f"{statistics.mean(ceiling):.3f}"))
    print(f"{args.split}: {len(train)} train / {len(test)} test rows, {dimension} {scale}\n")
    print(markdown_table(("signal (test rows)", "Spearman [95% CI]"), table))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
