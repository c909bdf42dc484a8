"""The frozen config dataclasses: defaults from the tutorial, one-line errors for impossible values."""

import dataclasses

import pytest

from rnnlm.config import DataConfig, ModelConfig, TrainConfig
from rnnlm.errors import ConfigError


def test_tutorial_defaults():
    assert DataConfig().vocabulary_size == 8000
    model = ModelConfig()
    assert (model.bptt_truncate, model.cell) == (4, "rnn")


def test_defaults_are_the_bundled_models_recipe():
    """Issue 20: the all-defaults command trains like docs/bundled-model.md (Adam 0.01, batch 32,
    clip 5, hidden 128) and keeps only words seen twice, so it adapts to a small corpus."""
    train = TrainConfig()
    assert (train.optimizer, train.learning_rate, train.batch_size, train.clip) == ("adam", 0.01, 32, 5.0)
    assert ModelConfig().hidden_size == 128
    assert DataConfig().min_count == 2
    with pytest.raises(ConfigError, match="minimum count"):
        DataConfig(min_count=0)


def test_frozen_and_round_trips_through_a_dict():
    config = ModelConfig(vocab_size=50, hidden_size=7, cell="lstm", peephole=True)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.hidden_size = 3
    assert ModelConfig.from_dict(config.to_dict()) == config


@pytest.mark.parametrize("factory, kwargs, message", [
    (ModelConfig, dict(hidden_size=0), "hidden size"),
    (ModelConfig, dict(vocab_size=3), "at least 4"),
    (ModelConfig, dict(cell="transformer"), "cell must be one of"),
    (ModelConfig, dict(cell="gru", peephole=True), "LSTM options"),
    (DataConfig, dict(vocabulary_size=2), "at least 4"),
    (DataConfig, dict(format="xml"), "format must be one of"),
    (TrainConfig, dict(epochs=0), "epochs"),
    (TrainConfig, dict(batch_size=-1), "batch size"),
    (TrainConfig, dict(learning_rate=0), "learning rate"),
    (TrainConfig, dict(valid_fraction=1.0), "validation fraction"),
    (TrainConfig, dict(optimizer="lbfgs"), "optimizer must be one of"),
    (TrainConfig, dict(clip=-1.0), "clip"),
])
def test_impossible_values_fail_with_one_line(factory, kwargs, message):
    with pytest.raises(ConfigError, match=message) as info:
        factory(**kwargs)
    assert "\n" not in str(info.value)
