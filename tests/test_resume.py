"""The resume policy as a library: what may change, which file is continued, which corpus it needs (no argparse)."""

from types import SimpleNamespace

import numpy as np
import pytest

from rnnlm.config import DataConfig, ModelConfig, TrainConfig
from rnnlm.errors import ConfigError, ModelFileError, RnnlmError
from rnnlm.training import resume
from rnnlm.training.loop import TrainingState

MODEL = ModelConfig(vocab_size=60, hidden_size=8)
DATA = DataConfig(vocabulary_size=60)
TRAIN = TrainConfig(optimizer="sgd", seed=1, batch_size=8)
STATE_DATA = {"fingerprint": "abc", "max_records": None, "valid_fraction": 0.1}


def configs(given_model=(), given_data=(), given_train=(), max_records=None, no_clip=False,
            data_config=DATA, train_config=TRAIN, state_data=STATE_DATA):
    return resume.resumed_configs("m.npz", MODEL, data_config, train_config, level="word", vocabulary_size=60,
                                  state_data=state_data, given_model=dict(given_model), given_data=dict(given_data),
                                  given_train=dict(given_train), max_records=max_records, no_clip=no_clip)


def test_nothing_given_keeps_the_files_configs():
    assert configs() == (DATA, MODEL, TRAIN)


def test_training_options_given_are_laid_over_the_stored_ones():
    data, model, train = configs(given_train={"epochs": 9, "learning_rate": 0.5}, given_data={"format": "text"})
    assert (train.epochs, train.learning_rate, train.optimizer) == (9, 0.5, "sgd")
    assert data.format == "text" and model == MODEL


def test_no_clip_clears_the_clip_even_over_a_given_one():
    assert configs(given_train={"clip": 2.0}, no_clip=True)[2].clip is None


def test_an_old_file_without_a_train_config_resumes_from_the_defaults():
    assert configs(train_config=None, state_data={})[2] == TrainConfig()


@pytest.mark.parametrize("given", [{"given_model": {"hidden_size": 30}}, {"given_data": {"vocabulary_size": 99}},
                                   {"given_data": {"level": "char"}}])
def test_the_shape_and_vocabulary_never_change(given):
    with pytest.raises(ConfigError, match="keeps its shape and vocabulary"):
        configs(**given)


def test_giving_the_stored_value_is_no_change():
    configs(given_model={"hidden_size": 8}, given_train={"optimizer": "sgd", "seed": 1})


@pytest.mark.parametrize("given, option", [({"optimizer": "adam"}, "--optimizer"), ({"seed": 2}, "--seed"),
                                           ({"valid_fraction": 0.3}, "--valid-fraction"),
                                           ({"stream": True}, "--stream"), ({"seq_length": 7}, "--seq-length"),
                                           ({"max_sentence_length": 5}, "--max-sentence-length")])
def test_options_that_decide_the_data_or_the_optimizer_are_fixed(given, option):
    with pytest.raises(ConfigError, match=f"^{option} cannot change on --resume: m.npz was trained with {option} "):
        resume.refuse_resume_changes("m.npz", TRAIN, DATA, STATE_DATA, given)


def test_max_records_must_match_even_when_left_out():
    with pytest.raises(ConfigError, match="--max-records cannot change"):
        resume.refuse_resume_changes("m.npz", TRAIN, DATA, STATE_DATA, {}, max_records=5)
    cut = {**STATE_DATA, "max_records": 5}
    with pytest.raises(ConfigError, match="trained with --max-records 5"):
        resume.refuse_resume_changes("m.npz", TRAIN, DATA, cut, {})
    resume.refuse_resume_changes("m.npz", TRAIN, DATA, cut, {}, max_records=5)
    resume.refuse_resume_changes("m.npz", TRAIN, DATA, {}, {}, max_records=5)  # a file from before it was recorded


def test_the_batch_size_is_fixed_only_for_streams():
    resume.refuse_resume_changes("m.npz", TRAIN, DATA, STATE_DATA, {"batch_size": 4})
    with pytest.raises(ConfigError, match="--batch-size cannot change"):
        resume.refuse_resume_changes("m.npz", TRAIN, DataConfig(stream=True), STATE_DATA, {"batch_size": 4})


def test_the_held_out_fraction_is_read_from_the_state_first():
    resume.refuse_resume_changes("m.npz", TRAIN, DATA, {"valid_fraction": 0.0}, {"valid_fraction": 0.0})
    with pytest.raises(ConfigError, match="--valid-fraction 0.0"):
        resume.refuse_resume_changes("m.npz", TRAIN, DATA, {"valid_fraction": 0.0}, {"valid_fraction": 0.1})


def test_refusals_are_rnnlm_errors():
    assert issubclass(ConfigError, RnnlmError) and issubclass(ModelFileError, RnnlmError)


def loaded(epoch, batch=0, name=""):
    return SimpleNamespace(name=name, state=TrainingState(epoch=epoch, batch=batch))


def test_the_source_is_whichever_file_got_further(tmp_path):
    out, last = tmp_path / "m.npz", tmp_path / "m.last.npz"
    files = {}
    load = lambda path: files[path]  # noqa: E731
    files[out] = loaded(2, name="out")
    assert resume.resume_source(out, last, load).name == "out"  # no .last file
    files[last] = loaded(3, name="last")
    last.touch()
    assert resume.resume_source(out, last, load).name == "last"  # --out does not exist
    out.touch()
    files[out] = loaded(3, 4, name="out")
    assert resume.resume_source(out, last, load).name == "out"  # a time limit stopped --out mid-epoch 4
    files[out] = loaded(3, name="out")
    assert resume.resume_source(out, last, load).name == "last"  # a tie: the .last file


def test_an_untrained_or_exported_file_cannot_be_resumed():
    with pytest.raises(ModelFileError, match="no training state to resume from"):
        resume.require_training_state("m.npz", None, {})
    with pytest.raises(ModelFileError):
        resume.require_training_state("m.npz", TrainingState(), {"resumable": False})
    resume.require_training_state("m.npz", TrainingState(), {})


def test_the_fingerprint_is_of_the_token_ids_in_order():
    a, b = [np.array([1, 2]), np.array([3])], [np.array([1]), np.array([2, 3])]
    assert resume.corpus_fingerprint(a) == resume.corpus_fingerprint([x.astype(np.int32) for x in a])
    assert resume.corpus_fingerprint(a) != resume.corpus_fingerprint(b)  # where sentences end counts
    assert len(resume.corpus_fingerprint(a)) == 64


def test_another_corpus_is_refused_and_an_unrecorded_one_let_through():
    with pytest.raises(ConfigError, match="^other.txt is not the corpus m.npz was trained on"):
        resume.refuse_other_corpus("m.npz", "other.txt", {"fingerprint": "abc"}, "def")
    resume.refuse_other_corpus("m.npz", "same.txt", {"fingerprint": "abc"}, "abc")
    resume.refuse_other_corpus("m.npz", "old.txt", {}, "def")


def test_a_new_learning_rate_restarts_the_rule_and_the_corpus_record_is_merged():
    state = TrainingState(epoch=2, learning_rate=0.1, previous_loss=3.0, schedule={"k": 1}, data={"a": 1, "b": 2})
    kept = resume.resumed_state(state, data={"b": 3})
    assert (kept.learning_rate, kept.previous_loss, kept.schedule, kept.data) == (0.1, 3.0, {"k": 1}, {"a": 1, "b": 3})
    fresh = resume.resumed_state(state, learning_rate=0.5)
    assert (fresh.learning_rate, fresh.previous_loss, fresh.schedule, fresh.epoch) == (0.5, None, None, 2)
    assert state.learning_rate == 0.1  # the stored state is left alone
