"""Real records for the record-to-prompt parity tests (CPU venv and verl venv).

Each case is ``(name, records, template)``: real texts from the shared data (Prometheus
MT-Bench with rubric and reference, HelpSteer2 with five dimensions), in every record shape the
schema accepts: a single user turn, a system turn plus several turns, the list form of
``output``, long texts cut by the template's limits.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from judgeforge.data.schema import PointwiseRecord
from judgeforge.prompt import TRAINING_PROMPT_OPTIONS, PromptTemplate

__all__ = ["parity_cases", "trainer_messages", "prompt_overrides", "MT_BENCH", "HELPSTEER"]

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
MT_BENCH = SHARED / "prometheus-absolute" / "mt_bench_eval.json"
HELPSTEER = SHARED / "helpsteer2-rows" / "test-rm.jsonl"


def _conversation(base: PointwiseRecord, other: PointwiseRecord) -> PointwiseRecord:
    """``base`` with a system turn and an earlier exchange (``other``'s query and answer)."""
    data = base.to_dict()
    data["input"] = [{"role": "system", "content": "You are a careful assistant."},
                     {"role": "user", "content": other.query},
                     {"role": "assistant", "content": other.response},
                     *data["input"]]
    data["id"] = f"{base.id or 'rec'}-conversation"
    return PointwiseRecord.model_validate(data)


def _list_output(rec: PointwiseRecord) -> PointwiseRecord:
    """The same record read from the seed's list form of ``output``."""
    data: dict[str, Any] = rec.to_dict()
    data["output"] = [data["output"]]
    data["id"] = f"{rec.id or 'rec'}-list"
    return PointwiseRecord.model_validate(data)


def parity_cases() -> list[tuple[str, list[PointwiseRecord], PromptTemplate]]:
    """The cases (records are validated, ids unique within a case)."""
    from judgeforge.data.converters.helpsteer2 import convert_helpsteer2
    from judgeforge.data.converters.prometheus import convert_prometheus

    mt = convert_prometheus(MT_BENCH)
    hs = convert_helpsteer2(HELPSTEER)
    mt_recs, hs_recs = mt.records, hs.records
    quality = {"quality": mt.info.dimensions["quality"]}
    single = mt_recs[:3]
    longest = sorted(mt_recs, key=lambda r: len(r.response) + len(r.query))[-3:]
    return [
        ("single turn, rubric and reference", single, PromptTemplate(quality)),
        ("system + multi-turn", [_conversation(mt_recs[i], mt_recs[i + 10]) for i in range(3)]
         + [_conversation(mt_recs[5], hs_recs[1])],
         PromptTemplate(quality, system_prompt="You grade answers.")),
        ("list-form output", [_list_output(r) for r in mt_recs[20:23]], PromptTemplate(quality)),
        ("long texts with limits", [_conversation(longest[0], longest[1]), *longest],
         PromptTemplate(quality, max_query_chars=200, max_response_chars=300,
                        use_reference=False, thinking=True)),
        ("reference cut", single[:2], PromptTemplate(quality, max_reference_chars=120)),
        ("several dimensions", hs_recs, PromptTemplate(dict(hs.info.dimensions))),
    ]


def prompt_overrides(template: PromptTemplate) -> list[str]:
    """The training-config overrides (``prompt.*``) that train with ``template``'s settings."""
    settings = template.settings()
    return [f"prompt.{k}={json.dumps(settings[k])}" for k in TRAINING_PROMPT_OPTIONS]


def trainer_messages(records: list[PointwiseRecord],
                     template: PromptTemplate) -> list[list[dict[str, str]]]:
    """The CPU trainer's rows' messages (one dimension), or the shared row builder's (several:
    the CPU backend trains one dimension, verl's dataset class several)."""
    from judgeforge.train.config import TrainConfig
    from judgeforge.train.rows import build_rows

    if template.multi:
        return [r.prompt for r in build_rows(records, template)]
    from judgeforge.train.cpu.data import make_rows

    (dim, scale), = template.dimensions.items()
    cfg = TrainConfig.for_cpu().with_overrides(prompt_overrides(template))
    return [row["prompt"] for row in make_rows(records, cfg, dim, scale)]
