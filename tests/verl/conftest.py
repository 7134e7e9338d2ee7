"""Fixtures for the verl backend tests (run with ``.venv-verl/bin/python -m pytest tests/verl``).

Everything here uses real verl 0.9.1 on CPU: Hydra composition, the dataset class, the reward
manager, FSDP checkpoints over gloo and the model merger. Collected from an environment without
verl, every test module here is skipped (each starts with ``pytest.importorskip("verl")``; this
conftest itself imports nothing verl-specific, so a run from the main environment stays clean).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from judgeforge.data.io import write_records

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared" / "data"
MT_BENCH = SHARED / "prometheus-absolute" / "mt_bench_eval.json"
HELPSTEER = SHARED / "helpsteer2-rows" / "test-rm.jsonl"


@pytest.fixture(scope="session")
def model_dir() -> Path:
    """The prepared SmolLM2-135M-Instruct folder (prepared once if missing)."""
    from judgeforge.errors import ConfigError
    from judgeforge.models.default_model import default_model_path, prepare_default_model

    try:
        return default_model_path()
    except ConfigError:
        return prepare_default_model()


@pytest.fixture(scope="session")
def tokenizer(model_dir: Path) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(model_dir))


@pytest.fixture(scope="session")
def mt_bench_parquet(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """All 320 real MT-Bench rows of the Prometheus benchmark (1-5) as a Parquet file."""
    from judgeforge.data.converters.prometheus import convert_prometheus

    res = convert_prometheus(MT_BENCH)
    return write_records(tmp_path_factory.mktemp("data") / "mt_bench.parquet", res.records,
                         res.info)


@pytest.fixture(scope="session")
def helpsteer_parquet(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The 8 real HelpSteer2 rows (five 0-4 dimensions) as a Parquet file."""
    from judgeforge.data.converters.helpsteer2 import convert_helpsteer2

    res = convert_helpsteer2(HELPSTEER)
    return write_records(tmp_path_factory.mktemp("data") / "helpsteer2.parquet", res.records,
                         res.info)


@pytest.fixture(scope="session")
def compose() -> Callable[[list[str]], Any]:
    """Compose verl's ``ppo_trainer`` config with overrides, as ``main_ppo`` does."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    import verl

    config_dir = str(Path(verl.__file__).parent / "trainer" / "config")

    def run(overrides: list[str]) -> Any:
        with initialize_config_dir(config_dir=config_dir, version_base=None):
            return hydra_compose(config_name="ppo_trainer", overrides=overrides)

    return run
