"""A training mix across shipped human-labelled sets on different scales (CPU backend data path).

Real files: the shipped Prometheus (1-5), FeedbackQA (0-3) and LAMP-R (1-10) sets converted to
Parquet by ``judgeforge.train.mix`` and the Prometheus converter. Checks each row's prompt shows
its own scale, validation is held out of each file by group, the judge's own scale drives the
calibration rows and ``val.parquet``, mix weights, label balancing within sets, and the
validation metrics of a mix (per scale, normalized headline). The tiny real training run on the
default model is in ``tests/test_train_mix_run.py``.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from judgeforge.errors import ConfigError
from judgeforge.train import TrainConfig


@pytest.fixture(scope="module")
def mix_files(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    from judgeforge.data.converters.prometheus import convert_prometheus
    from judgeforge.data.io import write_records
    from judgeforge.datasets import shipped_path
    from judgeforge.train.mix import write_mix

    out = tmp_path_factory.mktemp("mix")
    prom = convert_prometheus(shipped_path("prometheus-absolute/vicuna_eval.json.gz"))
    write_records(out / "prometheus.parquet", prom.records, prom.info)
    written = write_mix(out)
    return [str(out / "prometheus.parquet"), str(written["feedbackqa"]), str(written["lamp-r"])]


def _cfg(files: list[str], *extra: str) -> TrainConfig:
    return TrainConfig.for_cpu().with_overrides([
        f"data.train_files=[{','.join(files)}]", "data.group_key=idx,pair,question",
        "cpu.eval_rows=12", *extra])


def _scale_line(row: dict[str, Any]) -> str:
    text = row["prompt"][-1]["content"]
    return text[text.rindex("an integer from"):].strip()


def test_each_row_is_prompted_on_its_own_scale(mix_files: list[str]) -> None:
    from judgeforge.train.cpu.data import load_dataset
    from judgeforge.train.rows import row_group

    ds = load_dataset(_cfg(mix_files))
    groups = Counter(row_group(r) for r in ds.train)
    assert set(groups) == {"quality 1-5", "quality 0-3", "quality 1-10"}
    seen = {row_group(r): _scale_line(r) for r in ds.train}
    assert seen == {"quality 1-5": "an integer from 1 to 5.",
                    "quality 0-3": "an integer from 0 to 3.",
                    "quality 1-10": "an integer from 1 to 10."}
    for r in ds.train + ds.val:
        lo, hi = map(int, row_group(r).split()[-1].split("-"))
        assert lo <= r["label"] <= hi and r["completion"] == f"<score>{r['label']}</score>"
    # the judge's own scale is the first file's; the card lists every file
    assert (ds.dimension, ds.scale.min, ds.scale.max) == ("quality", 1, 5) and ds.mixed
    card = ds.card("base")
    assert [(t["dimension"], t["scale"]) for t in card.metrics["trained_on"]] == [
        ("quality", [1, 5]), ("quality", [0, 3]), ("quality", [1, 10])]
    assert card.dimensions["quality"].max == 5


def test_validation_is_held_out_of_each_file_by_group(mix_files: list[str],
                                                      tmp_path: Path) -> None:
    from judgeforge.data.io import load_records
    from judgeforge.train.cpu.data import load_dataset
    from judgeforge.train.rows import row_group

    ds = load_dataset(_cfg(mix_files))
    per = Counter(row_group(r) for r in ds.val)
    assert all(8 <= per[g] <= 12 for g in ("quality 1-5", "quality 0-3", "quality 1-10")), per
    own = ds.calibration_rows()
    assert own and {row_group(r) for r in own} == {"quality 1-5"}
    path = ds.write_validation(tmp_path)
    assert path is not None and path.name == "val.parquet"
    val = load_records(path)
    assert [r.id for r in val.records] == [r["extra_info"]["id"] for r in own]
    assert val.info.dimensions["quality"].max == 5
    # whole groups: no Prometheus question, LAMP-R pair or FeedbackQA question on both sides
    train_ids = {r["extra_info"]["id"] for r in ds.train}
    assert not train_ids & {r["extra_info"]["id"] for r in ds.val}
    prom = load_records(mix_files[0]).records
    idx_of = {r.id: r.extra_info["idx"] for r in prom}
    val_q = {idx_of[r.id] for r in val.records}
    assert not val_q & {idx_of[i] for i in train_ids if i in idx_of}


def test_mix_weights_set_each_files_share(mix_files: list[str]) -> None:
    from judgeforge.train.cpu.data import load_dataset
    from judgeforge.train.rows import row_group

    ds = load_dataset(_cfg(mix_files, "data.mix_weights=[2,1,1]"))
    n = Counter(row_group(r) for r in ds.train)
    total = sum(n.values())
    assert abs(n["quality 1-5"] / total - 0.5) < 0.01
    assert abs(n["quality 1-10"] / total - 0.25) < 0.01  # LAMP-R (~118 rows) repeated
    with pytest.raises(ConfigError, match="3 training file"):
        load_dataset(_cfg(mix_files, "data.mix_weights=[1,1]"))
    with pytest.raises(ConfigError, match="mix_weights"):
        load_dataset(_cfg(mix_files, "data.mix_weights=[0,0,0]"))


def test_balance_keeps_each_sets_share_and_balances_labels_within(mix_files: list[str]) -> None:
    from judgeforge.train.cpu.data import load_dataset
    from judgeforge.train.rows import balance, row_group

    ds = load_dataset(_cfg(mix_files))
    out = balance(ds.train, 2000, 0)
    share_in = Counter(row_group(r) for r in ds.train)
    share_out = Counter(row_group(r) for r in out)
    for g in share_in:
        assert abs(share_out[g] / 2000 - share_in[g] / len(ds.train)) < 0.01
    fq = Counter(r["label"] for r in out if row_group(r) == "quality 0-3")
    assert max(fq.values()) - min(fq.values()) <= 1  # labels equally often within the set


def test_balance_of_one_set_draws_as_before() -> None:
    """One group: the exact draws of the label-only balancing (seeded), so single-set recipes
    train on the same rows as before the mix."""
    import random
    from collections import defaultdict

    from judgeforge.train.rows import balance

    rows = [{"label": i % 3, "i": i} for i in range(20)] + [{"label": 4, "i": 99}]

    def old(rows: list[dict[str, Any]], n: int, seed: int) -> list[dict[str, Any]]:
        by: dict[int, list[dict[str, Any]]] = defaultdict(list)
        for r in rows:
            by[r["label"]].append(r)
        rng = random.Random(seed)
        pools: dict[int, list[dict[str, Any]]] = {k: [] for k in by}
        out: list[dict[str, Any]] = []
        while len(out) < n:
            for k in sorted(by):
                if not pools[k]:
                    pools[k] = list(by[k])
                    rng.shuffle(pools[k])
                out.append(pools[k].pop())
        out = out[:n]
        rng.shuffle(out)
        return out

    assert balance(rows, 37, 5) == old(rows, 37, 5)


def test_validation_metrics_of_a_mix_are_per_scale_with_a_normalized_headline(
        mix_files: list[str]) -> None:
    from judgeforge.train.cpu.data import load_dataset
    from judgeforge.train.cpu.evaluate import score_completions, summary
    from judgeforge.train.rows import row_group

    ds = load_dataset(_cfg(mix_files))
    rows = ds.val
    # "<score>0</score>" is a score on 0-3 and a parse failure (outside the scale) on 1-5 / 1-10
    texts = ["<score>0</score>" if row_group(r) == "quality 0-3" else
             f"<score>{r['label']}</score>" for r in rows]
    preds, metrics = score_completions(texts, [r["label"] for r in rows], ds.dimension,
                                       ds.scale, rows=rows)
    fq = [i for i, r in enumerate(rows) if row_group(r) == "quality 0-3"]
    assert all(preds[i] == 0 for i in fq)
    others = [i for i in range(len(rows)) if i not in fq]
    assert all(preds[i] == rows[i]["label"] for i in others)
    expected_mae = sum(rows[i]["label"] / 3 for i in fq) / len(rows)
    assert metrics["mae"] == pytest.approx(expected_mae)
    s = summary(metrics)
    assert s["normalized"] and set(s["groups"]) == {"quality 1-5", "quality 0-3",
                                                   "quality 1-10"}
    assert s["groups"]["quality 1-5"]["mae"] == 0 and s["groups"]["quality 0-3"]["mae"] > 0
    # a label outside the row's scale is a parse failure, counted as the worst error
    bad = ["<score>7</score>" if row_group(r) == "quality 1-5" else
           f"<score>{r['label']}</score>" for r in rows]
    preds, m = score_completions(bad, [r["label"] for r in rows], ds.dimension, ds.scale,
                                 rows=rows)
    assert all(preds[i] is None for i, r in enumerate(rows) if row_group(r) == "quality 1-5")
    assert summary(m)["groups"]["quality 1-5"]["parse_rate"] == 0.0


def test_a_validation_file_on_a_scale_no_training_file_is_on_is_an_error(
        mix_files: list[str]) -> None:
    from judgeforge.train.cpu.data import load_dataset

    cfg = _cfg(mix_files[:1], f"data.val_files=[{mix_files[1]}]")
    with pytest.raises(ConfigError, match="0-3"):
        load_dataset(cfg)


def test_cpu_mix_preset_loads_and_names_the_held_out_suite_sets() -> None:
    from judgeforge.benchmarks.suite import load_suite
    from judgeforge.train.mix import HELD_OUT_SUITE_SETS, SUITE_SETS_IN_MIX

    cfg = TrainConfig.from_yaml("cpu-mix")
    assert len(cfg.data.train_files) == 3 and cfg.data.mix_weights == [2, 1, 1]
    suite = {s.name for s in load_suite("default").sets}
    assert set(HELD_OUT_SUITE_SETS) | set(SUITE_SETS_IN_MIX) == suite
    assert not set(HELD_OUT_SUITE_SETS) & set(SUITE_SETS_IN_MIX)
