"""Rewards: the exp-decay formula, and reward integrity (failures earn the minimum, always)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from judgeforge.data.schema import Scale
from judgeforge.errors import ConfigError
from judgeforge.rewards import (
    ExactMatchReward,
    ExpDecayReward,
    QuadraticReward,
    exp_decay_reward,
    get_reward_function,
)
from judgeforge.train.reward import REWARD_KEYS, compute_score

SCALES = [Scale(min=0, max=4), Scale(min=1, max=5), Scale(min=0, max=10)]
REWARD_FNS = [ExpDecayReward(), ExpDecayReward(k=5), QuadraticReward(), ExactMatchReward()]


def test_exp_decay_matches_the_formula() -> None:
    assert exp_decay_reward(3, 3) == 1.0
    assert exp_decay_reward(1, 3) == pytest.approx(math.exp(-2 * 2 / 4))
    assert exp_decay_reward(1, 5, Scale(min=1, max=5), k=3) == pytest.approx(math.exp(-3))


@pytest.mark.parametrize("scale", SCALES, ids=str)
@pytest.mark.parametrize("fn", REWARD_FNS, ids=repr)
def test_failure_earns_the_minimum_for_every_label(scale: Scale, fn) -> None:
    """Table-driven over every label: failure / out-of-range <= any valid prediction's reward."""
    for true in range(scale.min, scale.max + 1):
        valid = [fn(p, true, scale) for p in range(scale.min, scale.max + 1)]
        failure = fn(None, true, scale)
        below, above = fn(scale.min - 1, true, scale), fn(scale.max + 1, true, scale)
        assert failure == fn.min_reward == below == above
        assert failure <= min(valid)
        assert max(valid) == fn(true, true, scale)


@pytest.mark.parametrize("scale", SCALES, ids=str)
def test_compute_score_failures_earn_minimum_for_every_label(scale: Scale) -> None:
    extra = {"judgeforge": {"dimensions": {"quality": [scale.min, scale.max]}}}
    for true in range(scale.min, scale.max + 1):
        for bad in ("no tag", "<score>x</score>", f"<score>{scale.max + 1}</score>",
                    f"<score>{scale.min - 1}</score>", "<think><score>3</score></think>"):
            out = compute_score("src", bad, {"quality": true}, extra)
            assert out["score"] == 0.0 and out["parsed"] == 0.0 and out["accuracy"] == 0.0
            assert out["abs_error"] == max(true - scale.min, scale.max - true)


@given(st.integers(0, 4), st.integers(0, 4), st.floats(0.1, 10))
def test_exp_decay_is_monotone_in_error(pred: int, true: int, k: float) -> None:
    r = ExpDecayReward(k=k)(pred, true, Scale())
    assert math.exp(-k) - 1e-12 <= r <= 1.0
    closer = pred + (1 if pred < true else -1) if pred != true else pred
    assert ExpDecayReward(k=k)(closer, true, Scale()) >= r


def test_compute_score_keys_are_stable() -> None:
    outs = [compute_score("s", "<score>2</score>", 2), compute_score("s", "junk", 2),
            compute_score("s", "<score>1</score>", {"helpfulness": 3}),
            compute_score("s", "<a>1</a><b>2</b>", {"a": 1, "b": 3},
                          {"judgeforge": {"dimensions": {"a": [0, 4], "b": [0, 4]}}})]
    for out in outs:
        assert tuple(out) == REWARD_KEYS
        assert all(isinstance(v, float) for v in out.values())
    assert outs[3]["parsed"] == 1.0 and outs[3]["abs_error"] == 0.5


def test_compute_score_reads_ground_truth_forms() -> None:
    assert compute_score("s", "<score>3</score>", "3")["accuracy"] == 1.0
    assert compute_score("s", "<score>3</score>", '{"helpfulness": 3}')["accuracy"] == 1.0
    assert compute_score("s", "<score>3</score>", 3.0)["accuracy"] == 1.0


def test_compute_score_kwargs_override_reward() -> None:
    out = compute_score("s", "<score>1</score>", 3, None, reward="exact")
    assert out["score"] == 0.0
    out = compute_score("s", "<score>2</score>", 3, None, k=4.0)
    assert out["score"] == pytest.approx(math.exp(-1))


def half_credit(pred: int, true: int, scale: Scale) -> float:
    return 1.0 if pred == true else 0.5


def test_user_reward_functions() -> None:
    fn = get_reward_function(f"{__name__}:half_credit", min_reward=-1.0)
    assert fn(2, 2, Scale()) == 1.0 and fn(1, 2, Scale()) == 0.5
    assert fn(None, 2, Scale()) == -1.0 and fn(9, 2, Scale()) == -1.0
    with pytest.raises(ConfigError):
        get_reward_function("nope")
    with pytest.raises(ConfigError):
        get_reward_function("no_such_module_xyz:f")
