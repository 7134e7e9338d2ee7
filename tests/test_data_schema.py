"""The pointwise record model, scales and dataset info."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from judgeforge.data.schema import DEFAULT_SCALE, DatasetInfo, PointwiseRecord, Scale
from tests.fixtures_data import make_row


def _locs(exc: ValidationError) -> list[tuple]:
    return [tuple(e["loc"]) for e in exc.errors()]


def test_dict_form_and_seed_list_form_load_the_same() -> None:
    row = make_row(helpfulness=4)
    listed = dict(row, output=[row["output"]])
    a, b = PointwiseRecord.model_validate(row), PointwiseRecord.model_validate(listed)
    assert a == b
    assert a.query == "What is 2+2?" and a.response == "4" and a.label == {"helpfulness": 4}


def test_list_form_with_two_outputs_is_an_error_at_output() -> None:
    row = make_row()
    row["output"] = [row["output"], row["output"]]
    with pytest.raises(ValidationError) as info:
        PointwiseRecord.model_validate(row)
    assert _locs(info.value) == [("output",)]
    assert "exactly one item" in str(info.value)


def test_labels_must_be_integers_but_integral_floats_are_accepted() -> None:
    assert PointwiseRecord.model_validate(make_row(helpfulness=3.0)).label == {"helpfulness": 3}
    for bad in (3.5, True, "3", None):
        with pytest.raises(ValidationError) as info:
            PointwiseRecord.model_validate(make_row(helpfulness=bad))
        assert _locs(info.value) == [("output", "label", "helpfulness")]


def test_empty_label_is_an_error() -> None:
    row = make_row()
    row["output"]["label"] = {}
    with pytest.raises(ValidationError) as info:
        PointwiseRecord.model_validate(row)
    assert _locs(info.value) == [("output", "label")]


def test_input_needs_a_user_turn_and_the_error_points_at_input() -> None:
    row = make_row()
    row["input"] = [{"role": "system", "content": "be nice"}]
    with pytest.raises(ValidationError) as info:
        PointwiseRecord.model_validate(row)
    assert _locs(info.value) == [("input",)]
    assert "no user turn (roles: system)" in str(info.value)


def test_query_is_the_last_user_turn_of_a_conversation() -> None:
    row = make_row()
    row["input"] = [{"role": "system", "content": "s"}, {"role": "user", "content": "first"},
                    {"role": "assistant", "content": "a"}, {"role": "user", "content": "second"}]
    assert PointwiseRecord.model_validate(row).query == "second"


def test_unknown_top_level_fields_and_missing_fields_are_named() -> None:
    row = make_row()
    del row["data_source"]
    row["outptu"] = 1
    with pytest.raises(ValidationError) as info:
        PointwiseRecord.model_validate(row)
    assert sorted(_locs(info.value)) == [("data_source",), ("outptu",)]


def test_integer_ids_become_text_and_to_dict_leaves_out_none() -> None:
    rec = PointwiseRecord.model_validate(dict(make_row(), id=7))
    assert rec.id == "7"
    assert rec.to_dict() == dict(make_row(), id="7")
    assert "extra_info" not in PointwiseRecord.model_validate(make_row()).to_dict()


@pytest.mark.parametrize("text,lo,hi", [("0-4", 0, 4), ("1-5", 1, 5), (" 1 - 10 ", 1, 10),
                                        ("-2-2", -2, 2), ("1..5", 1, 5)])
def test_scale_parse(text: str, lo: int, hi: int) -> None:
    scale = Scale.parse(text)
    assert (scale.min, scale.max) == (lo, hi) and str(scale) == f"{lo}-{hi}"


@pytest.mark.parametrize("text", ["4", "a-b", "", "5-1", "3-3"])
def test_scale_parse_rejects_bad_text(text: str) -> None:
    with pytest.raises(ValueError):
        Scale.parse(text)


def test_scale_membership_and_span() -> None:
    scale = Scale(min=1, max=5)
    assert 1 in scale and 5 in scale and 0 not in scale and 6 not in scale and 3.0 not in scale
    assert scale.span == 4
    assert DEFAULT_SCALE == Scale(min=0, max=4)


def test_dataset_info_describes_scales_and_accepts_text_scales() -> None:
    info = DatasetInfo(name="x", dimensions={"quality": "1-5", "helpfulness": Scale()})
    assert info.scale("quality") == Scale(min=1, max=5)
    assert info.scale("unknown") == DEFAULT_SCALE
    assert info.dimension_names == ["quality", "helpfulness"]
    assert DatasetInfo.model_validate_json(info.model_dump_json()) == info
