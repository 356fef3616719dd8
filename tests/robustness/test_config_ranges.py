"""Every numeric field of the config schema declares its range (`between`), and every value
outside it — NaN, infinities, out-of-range numbers, wrong types — is refused with one line
before anything is built; values inside it load. Also: JSON nested too deep, and a schema
version written as a string."""

from __future__ import annotations

import dataclasses
import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from i2i.cli import _read_json
from i2i.config import RunConfig, load_config
from i2i.errors import ConfigError
from i2i.training.configure import configure


def numeric_fields(section, where=""):
    """(dotted key, dataclass field) of every int and float field, nested sections included."""
    for spec in dataclasses.fields(section):
        value = getattr(section, spec.name)
        if dataclasses.is_dataclass(value):
            yield from numeric_fields(value, f"{where}{spec.name}.")
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            yield f"{where}{spec.name}", spec


FIELDS = dict(numeric_fields(RunConfig()))


def nested(key: str, value) -> dict:
    raw: dict = {}
    target = raw
    *sections, name = key.split(".")
    for section in sections:
        target = target.setdefault(section, {})
    target[name] = value
    return raw


def test_every_numeric_field_declares_its_range():
    assert len(FIELDS) > 40
    assert [key for key, spec in FIELDS.items() if "range" not in spec.metadata] == []


@settings(max_examples=1500, deadline=None, derandomize=True, database=None)
@given(
    st.sampled_from(sorted(FIELDS)),
    st.one_of(
        st.integers(-(2**70), 2**70),
        st.floats(allow_nan=True, allow_infinity=True),
        st.sampled_from([0, 1, -1, 0.5, 1.0, 1e-9, 2**63, 2**64, True, "3", None]),
    ),
)
def test_out_of_range_values_are_refused_in_one_line_and_in_range_ones_load(key, value):
    low, high, open_low, open_high = FIELDS[key].metadata["range"]
    is_int = isinstance(FIELDS[key].default, int)
    inside = (
        isinstance(value, int if is_int else (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
        and (low < value if open_low else low <= value)
        and (value < high if open_high else value <= high)
    )
    raw = nested(key, value)
    if key in ("data.load_size", "data.crop_size") and inside:  # keep load >= crop and the crop a multiple of 4
        raw["data"] = {"crop_size": 128, "load_size": 128} | {key.split(".")[1]: (value // 4) * 4 or 4}
    try:
        config = RunConfig.from_dict(raw)
    except ConfigError as error:
        message = str(error)
        assert "\n" not in message and message
        if not inside:
            return
        # inside its own range, a value may still break a rule between fields: that rule names it
        assert key.split(".")[-1] in message or "crop" in message or "attn" in message, message
        return
    assert inside, f"{key}={value!r} loaded"
    assert RunConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config


def test_json_nested_too_deep_is_one_line(tmp_path):
    deep = "[" * 100_000 + "]" * 100_000
    config_file = tmp_path / "deep.json"
    config_file.write_text(deep)
    with pytest.raises(ConfigError, match="nested too deeply"):
        _read_json(config_file)
    run = tmp_path / "run"
    run.mkdir()
    (run / "train_config.json").write_text('{"G": ' + deep + "}")
    with pytest.raises(ConfigError, match="nested too deeply"):
        load_config(run)


def test_a_schema_version_written_as_text_is_not_called_newer():
    with pytest.raises(ConfigError, match="not a schema version") as error:
        RunConfig.from_dict({"schema": "3"})
    assert "newer" not in str(error.value)


def test_cut_nce_layers_beyond_the_network_are_refused():
    with pytest.raises(ConfigError, match="has layers 0..31"):
        configure({"model": "cut", "alg": {"cut": {"nce_layers": "0,4,40"}}})


def test_a_discriminator_deeper_than_the_crop_is_refused():
    with pytest.raises(ConfigError, match="minimum 96"):
        RunConfig.from_dict({"D": {"netD": "n_layers", "n_layers": 5}, "data": {"crop_size": 64, "load_size": 64}})
