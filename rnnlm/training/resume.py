"""The rules of resuming a run: what may change, which file it continues from, which corpus it needs.

Public API
----------
require_training_state(path, state, metadata): ModelFileError unless the file can be resumed.
resume_source(out, last, load) -> the loaded file of `out` and `last` that got further.
resumed_configs(path, model_config, data_config, train_config, *, level, vocabulary_size, state_data,
                given_model, given_data, given_train, max_records=None, no_clip=False)
    -> (data_config, model_config, train_config) for the resumed run.
refuse_resume_changes(path, train_config, data_config, state_data, given, max_records=None)
    ConfigError when an option in FIXED_ON_RESUME was given with another value than the run's.
corpus_fingerprint(arrays) -> hex SHA-256 of the encoded training text.
refuse_other_corpus(path, corpus, state_data, fingerprint): ConfigError when the text differs.
resumed_state(state, learning_rate=None, data=None) -> the TrainingState to continue from.

Everything here takes plain values and configs (the command line translates its options into
`given_*` dicts of the fields the user actually gave) and raises `RnnlmError` subclasses with
messages that name the options as `rnnlm train` spells them.
"""

import hashlib
from dataclasses import replace
from pathlib import Path

import numpy as np

from rnnlm.config import TrainConfig
from rnnlm.errors import ConfigError, ModelFileError

# options that decide which text is trained on, how it is split or laid out, or how the optimizer's
# stored state is read: changing one on resume would silently train a different run
# (field name -> the command-line option, for the message)
FIXED_ON_RESUME = {"optimizer": "--optimizer", "seed": "--seed", "valid_fraction": "--valid-fraction",
                   "max_records": "--max-records", "stream": "--stream", "seq_length": "--seq-length",
                   "max_sentence_length": "--max-sentence-length"}


def require_training_state(path, state, metadata):
    """ModelFileError unless the file at `path` holds a training state to resume from (not untrained, not exported)."""
    if state is None or not metadata.get("resumable", True):
        raise ModelFileError(f"{path} holds no training state to resume from "
                             "(an untrained or exported model); train a new one instead")


def _progress(checkpoint):
    """How far a loaded file got: (epochs finished, batches of the next); an untrained file comes first."""
    state = checkpoint.state
    return (state.epoch, state.batch) if state is not None else (-1, 0)


def resume_source(out, last, load):
    """The file a plain resume continues from: whichever of `out` and `last` (its .last file) got further.

    load(path) -> a loaded model file with `.state` (a TrainingState or None). Without a `last`
    file, `out` itself (load reports a missing one). On a tie the .last file wins: it is the one
    written after every epoch, `out` only after the best ones.
    """
    out, last = Path(out), Path(last)
    if not last.exists():
        return load(out)
    candidates = [load(last)] + ([load(out)] if out.exists() else [])
    return max(candidates, key=_progress)


def resumed_configs(path, model_config, data_config, train_config, *, level, vocabulary_size, state_data,
                    given_model, given_data, given_train, max_records=None, no_clip=False):
    """Configs for a resumed run: the file's, with the training options the user gave on top.

    model_config, data_config, train_config (None in old files: the defaults), level and
    vocabulary_size are what the file at `path` stores; state_data its training state's `data`.
    given_model, given_data, given_train: {field: value} of the options actually given.
    max_records: the corpus cut given now; no_clip: train without clipping from now on.
    The model's shape and vocabulary never change; `refuse_resume_changes` guards the rest.
    """
    stored = {**model_config.to_dict(), "level": level, "vocabulary_size": vocabulary_size}
    for name, value in {**given_model, **given_data}.items():
        if name in stored and name != "format" and stored[name] != value:
            raise ConfigError(f"{path} was trained with {name} {stored[name]!r}, not {value!r}; "
                              "a resumed model keeps its shape and vocabulary (drop the option, or train a new model)")
    base = train_config or TrainConfig()
    refuse_resume_changes(path, base, data_config, state_data, {**given_data, **given_train}, max_records)
    train_config = replace(base, **given_train)
    if no_clip:
        train_config = replace(train_config, clip=None)
    data_config = replace(data_config, **{k: v for k, v in given_data.items() if k == "format"})
    return data_config, model_config, train_config


def refuse_resume_changes(path, train_config, data_config, state_data, given, max_records=None):
    """ConfigError naming the first option in FIXED_ON_RESUME given with another value than the run started with.

    train_config, data_config: the run's; state_data: its state's `data` (what was held out,
    which records were read); given: {field: value} of the options given now; max_records:
    the --max-records given now (None: the whole corpus, which must then be what was used).
    """
    stored = {"optimizer": train_config.optimizer, "seed": train_config.seed, "seq_length": train_config.seq_length,
              "valid_fraction": state_data.get("valid_fraction", train_config.valid_fraction),
              "max_records": state_data.get("max_records"), "stream": data_config.stream,
              "max_sentence_length": data_config.max_sentence_length}
    now = {name: given.get(name) for name in FIXED_ON_RESUME}
    now["stream"] = True if given.get("stream") else None
    now["max_records"] = max_records
    fixed = dict(FIXED_ON_RESUME)
    if data_config.stream:  # the number of parallel streams decides how the text is laid out
        fixed["batch_size"] = "--batch-size"
        stored["batch_size"], now["batch_size"] = train_config.batch_size, given.get("batch_size")
    for name, option in fixed.items():
        if name == "max_records" and "max_records" not in state_data:
            continue  # a file from before the corpus was recorded
        if (now[name] is not None or name == "max_records") and now[name] != stored[name]:
            shown = "none" if stored[name] is None else stored[name]
            raise ConfigError(f"{option} cannot change on --resume: {path} was trained with {option} "
                              f"{shown} (it decides the data or the optimizer); drop {option}, or train a new model")


def corpus_fingerprint(arrays):
    """SHA-256 of the encoded training text (its token ids, in order): the corpus as the model saw it."""
    digest = hashlib.sha256()
    for a in arrays:
        digest.update(np.asarray(a, dtype=np.int64).tobytes())
        digest.update(b"|")
    return digest.hexdigest()


def refuse_other_corpus(path, corpus, state_data, fingerprint):
    """ConfigError when `corpus` (its `corpus_fingerprint`) is not the text the file at `path` was trained on.

    Files from before fingerprints were recorded are let through."""
    stored = state_data.get("fingerprint")
    if stored is not None and stored != fingerprint:
        raise ConfigError(f"{corpus} is not the corpus {path} was trained on (its text "
                          f"differs); --resume continues on the same corpus, or train a new model")


def resumed_state(state, learning_rate=None, data=None):
    """The TrainingState a resumed run continues from.

    learning_rate: a rate given now is used from here on and the schedule starts afresh
    (its memory of past losses was about another rate); None keeps the stored rate and memory.
    data: what this run records about its corpus, merged over the stored `data`.
    """
    if learning_rate is not None:
        state = state.restarted(learning_rate)
    return replace(state, data={**state.data, **(data or {})})
