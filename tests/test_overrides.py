"""Command-line overrides of spec fields."""

from __future__ import annotations

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from slam_core.overrides import OverrideError, apply_overrides, parse_override

keys = st.from_regex(r"[a-z_][a-z0-9_]{0,8}", fullmatch=True)
scalars = st.one_of(
    st.integers(-(10**6), 10**6), st.booleans(), st.text("abcxyz ", min_size=1, max_size=8).map(str.strip).filter(bool)
)


@given(path=st.lists(keys, min_size=1, max_size=4), value=scalars)
def test_round_trip_of_a_dumped_value(path, value):
    text = ".".join(path) + "=" + yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...").strip()
    parsed_path, parsed_value = parse_override(text)
    assert parsed_path == path
    assert parsed_value == value


@given(path=st.lists(keys, min_size=1, max_size=4), value=scalars)
def test_apply_sets_exactly_that_field_and_leaves_the_input_alone(path, value):
    document = {"train": {"lr": 1.0}, "name": "x"}
    result = apply_overrides(document, [".".join(path) + "=" + yaml.safe_dump(value).splitlines()[0]])
    node = result
    for key in path:
        node = node[key]
    assert node == value
    assert document == {"train": {"lr": 1.0}, "name": "x"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("train.lr=3e-4", 3e-4),
        ("train.lr=1.5E+2", 150.0),
        ("peft.target_modules=[q_proj, v_proj]", ["q_proj", "v_proj"]),
        ("train.max_steps=null", None),
        ("task.prompt=Say it.", "Say it."),
        ("name=", ""),
    ],
)
def test_values_are_read_as_yaml_with_scientific_floats(text, expected):
    assert parse_override(text)[1] == expected


@pytest.mark.parametrize("text", ["train.lr", "=3", "train..lr=1", "train.lr x=1", ".lr=1"])
def test_malformed_overrides_name_the_expected_form(text):
    with pytest.raises(OverrideError, match=r"section\.field=value"):
        parse_override(text)


def test_walking_into_a_value_is_refused():
    with pytest.raises(OverrideError, match=r"name is 'x', not a section"):
        apply_overrides({"name": "x"}, ["name.first=1"])
