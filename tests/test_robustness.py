"""Nothing a user types destroys data, hangs, or prints a traceback (issue 11).

Each test here failed before its fix. CLI cases run `rnnlm.cli.main` in-process unless they need
a real process (closed pipes, signals, FIFOs); library cases call the public API directly.
"""

import json
import math
import os
import signal
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from rnnlm import checkpoint as ckpt
from rnnlm import cli
from rnnlm.config import DataConfig, ModelConfig, TrainConfig
from rnnlm.errors import ConfigError, DataError, ModelFileError

FIXTURES = Path(__file__).parent / "fixtures"
COMMENTS = FIXTURES / "comments.csv"
REPO = Path(__file__).resolve().parent.parent
TINY = ["--vocab-size", "60", "--hidden", "8", "--batch-size", "8", "--seed", "1", "--no-progress"]


def run(capsys, *argv):
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(code, err, message):
    assert code == 2, err
    assert err.count("\n") == 1 and err.startswith("rnnlm: error: ") and message in err, err


def python_m_rnnlm(*argv, **kwargs):
    env = {**os.environ, "PYTHONPATH": str(REPO), "MPLBACKEND": "Agg"}
    return subprocess.run([sys.executable, "-m", "rnnlm", *map(str, argv)], capture_output=True, text=True,
                          env=env, timeout=120, **kwargs)


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "tiny.npz"
    assert cli.main(["train", str(COMMENTS), "--out", str(path), "--epochs", "2", "--optimizer", "adam",
                     "--learning-rate", "0.02", *TINY]) == 0
    return path


def snapshot(folder):
    return {p: p.read_bytes() for p in Path(folder).rglob("*") if p.is_file()}


# --------------------------------------------------------------------- configs

@pytest.mark.parametrize("field, value", [("learning_rate", math.inf), ("learning_rate", math.nan),
                                          ("momentum", math.nan), ("clip", math.inf), ("clip", math.nan),
                                          ("valid_fraction", math.nan), ("learning_rate", "1"),
                                          ("epochs", 2.0), ("seed", True)])
def test_train_config_rejects_non_finite_and_wrong_types(field, value):
    with pytest.raises(ConfigError, match=field.split("_")[0]):
        TrainConfig(**{field: value})


def test_model_config_bools_must_be_bools_and_numpy_ints_are_accepted():
    with pytest.raises(ConfigError, match="peephole"):
        ModelConfig(cell="lstm", peephole="no")
    with pytest.raises(ConfigError, match="coupled"):
        ModelConfig(cell="lstm", coupled_gates=1)
    config = ModelConfig(vocab_size=np.int64(50), hidden_size=np.int32(7), num_layers=np.int64(2), cell="gru",
                         embed_size=np.int64(5), bptt_truncate=np.int64(3))
    assert config.hidden_size == 7 and type(config.hidden_size) is int and type(config.vocab_size) is int
    assert json.dumps(config.to_dict())  # plain ints: a model file can store it
    assert type(TrainConfig(epochs=np.int64(3), seed=np.int64(2)).epochs) is int
    assert type(DataConfig(vocabulary_size=np.int64(9)).vocabulary_size) is int


@pytest.mark.parametrize("field, value", [("hidden_size", 10 ** 20), ("embed_size", 10 ** 20), ("num_layers", 3_000_000),
                                          ("vocab_size", 10 ** 12)])
def test_model_config_bounds_every_size(field, value):
    with pytest.raises(ConfigError, match="at most"):
        ModelConfig(**{field: value})


@pytest.mark.parametrize("data", [[1, 2], "rnn", None, 5])
def test_config_from_dict_needs_a_dict(data):
    with pytest.raises(ConfigError, match="object"):
        ModelConfig.from_dict(data)
