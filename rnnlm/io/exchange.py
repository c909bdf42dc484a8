"""Handing a model to PyTorch and back: one safetensors file that rebuilds the model by itself.

A `.safetensors` file (the `safetensors` library's format: an 8-byte header length, a JSON
header, raw little-endian tensors; nothing is ever unpickled) holding:

    tensors       under PyTorch's own state-dict names, so `module.load_state_dict` takes them as
                  they are (float16, float32 or float64)
    __metadata__  strings: "format" ("rnnlm-safetensors"), "format_version" ("1"), "rnnlm_version",
                  "model_kind", "level", and as JSON "model_config", "data_config", "train_config",
                  "vocabulary" (the tokens, position = index), "vocabulary_counts" and
                  "torch_module" (the module to build: see `torch_spec`)

The torch module is `nn.Embedding(C, E)` -> `nn.RNN/GRU/LSTM(E, H, num_layers=L, batch_first=True)`
-> `nn.Linear(H, C)`, with state-dict names "embedding.weight", "rnn.weight_ih_l{k}", ...,
"out.weight", "out.bias" (`torch_module` builds it when torch is installed). A model with tied weights
(`--tie-weights`) is exported as word_language_model ties them, `out.weight = embedding.weight`:
the file holds both names with equal tensors (what torch's state_dict gives), the spec says
"tied": true, and import requires them equal and keeps the one matrix.

- `LanguageModel` rnn/gru/lstm: the names and layouts are `LanguageModel.torch_state_dict`'s, the
  one place that decides them and which models have a torch form (it refuses Jordan, peephole and
  coupled LSTMs, ...). Import inverts that method without repeating it (see `_layout`). A
  LanguageModel in the tutorial's shape (what `rnnlm train --stream` writes) stays one: the kind is
  `kinds.kind_of`'s, never guessed from the config's shape.
- Class-softmax models of either kind are refused: torch's nn.Linear + cross-entropy is the full softmax.
- The tutorial's `FastRNN` / `RNNNumpy` (s_t = tanh(U[:, x_t] + W s_{t-1}), o_t = softmax(V s_t)):

      embedding.weight  = U^T  (C, H)      rnn.weight_ih_l0 = I  (H, H)  (frozen: requires_grad False)
      rnn.weight_hh_l0  = W    (H, H)      out.weight       = V  (C, H)
      nn.RNN(H, H, bias=False), nn.Linear(H, C, bias=False)

  since tanh(U^T[x_t] I^T + s_{t-1} W^T) is the row form of the tutorial's step. Import folds a
  weight_ih that was trained anyway back into U = weight_ih @ embedding.weight^T, which is exact.

No torch is needed to write or read these files; only `torch_module` imports it.
"""

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rnnlm.io.checkpoint import Checkpoint, level_fault
from rnnlm.io.kinds import kinds_for, build_model, kind_of, model_kind
from rnnlm.io.archive import exception_line, short_text
from rnnlm.io.safe_files import atomic_write
from rnnlm.nn.numerics import first_parameter_fault, parameter_fault, parameter_message
from rnnlm.config import DataConfig, ModelConfig, TrainConfig
from rnnlm.errors import ConfigError, ModelFileError, RnnlmError
from rnnlm.data.vocab import Vocabulary

FORMAT_NAME = "rnnlm-safetensors"
FORMAT_VERSION = 1
TORCH_RNN = {"rnn": "RNN", "gru": "GRU", "lstm": "LSTM"}
FLOAT_DTYPES = (np.float16, np.float32, np.float64)
TUTORIAL_KINDS = ("fast-rnn",)  # the U/V/W models: FastRNN, and RNNNumpy which has the same parameters
EXPORT_KINDS = ("fast-rnn", "language-model")  # what a file records; RNNNumpy is written as "fast-rnn"
SUPPORTED = ("full-softmax FastRNN / RNNNumpy models and full-softmax LanguageModels with an rnn, gru or "
             "lstm cell (stream models included)")


def _safetensors_numpy():
    try:
        import safetensors.numpy
        from safetensors import SafetensorError, safe_open
    except ImportError:
        raise ConfigError("the safetensors package is not installed; install it with "
                          "'pip install safetensors' (rnnlm lists it as a dependency)") from None
    return safetensors.numpy, safe_open, SafetensorError


# --------------------------------------------------------------------- the torch module's shape

def _config_of(model):
    """The model's `ModelConfig` (every model has one, `RNNNumpy` included); anything else cannot be exported."""
    config = getattr(model, "config", None)
    if not isinstance(config, ModelConfig):
        raise ConfigError(f"{type(model).__name__} has no PyTorch form, so it cannot be exported to safetensors")
    return config


def export_kind(model):
    """The model_kind a safetensors file records for `model`: `kinds.kind_of`'s, except that RNNNumpy
    (same parameters as FastRNN) is written as "fast-rnn"; a LanguageModel stays one in the tutorial's shape."""
    kind = kind_of(model)
    return "fast-rnn" if kind == "reference-rnn" else kind


def torch_spec(config, kind=None):
    """The torch module that holds a `kind` model (default: `config`'s natural kind), as a JSON-able dict.

    {"embedding": [C, E], "rnn": {"type": "RNN"|"GRU"|"LSTM", "input_size": E, "hidden_size": H,
    "num_layers": L, "bias": bool}, "out": {"in_features": H, "out_features": C, "bias": bool},
    "frozen": [names torch must not train]}. ConfigError for a model torch has no module for.
    """
    kind = kind or model_kind(config)
    if kind not in EXPORT_KINDS:
        raise ConfigError(f"a {kind!r} model cannot be exported to safetensors; export supports {SUPPORTED}")
    if config.softmax == "class":
        raise ConfigError("a class-based softmax has no PyTorch counterpart (nn.Linear + cross-entropy is the "
                          f"full softmax), so this model cannot be exported; export supports {SUPPORTED}")
    C, H, L = config.vocab_size, config.hidden_size, config.num_layers
    if kind in TUTORIAL_KINDS:
        return {"embedding": [C, H], "rnn": {"type": "RNN", "input_size": H, "hidden_size": H, "num_layers": 1,
                                             "bias": False},
                "out": {"in_features": H, "out_features": C, "bias": False}, "frozen": ["rnn.weight_ih_l0"]}
    E = config.embed_size or H
    if config.cell not in TORCH_RNN:
        raise ConfigError(f"a {config.cell} model has no PyTorch counterpart, so it cannot be exported")
    spec = {"embedding": [C, E], "rnn": {"type": TORCH_RNN[config.cell], "input_size": E, "hidden_size": H,
                                         "num_layers": L, "bias": True},
            "out": {"in_features": H, "out_features": C, "bias": True}, "frozen": []}
    if config.tie_weights:  # word_language_model's tie: decoder.weight = encoder.weight (both names in the file)
        spec["tied"] = True
    return spec


def _expected_shapes(spec):
    """{torch name: shape} of the module `spec` describes (nn.RNN/GRU/LSTM's documented layouts)."""
    rnn = spec["rnn"]
    gates = {"RNN": 1, "GRU": 3, "LSTM": 4}[rnn["type"]]
    H = rnn["hidden_size"]
    shapes = {"embedding.weight": tuple(spec["embedding"])}
    for k in range(rnn["num_layers"]):
        shapes[f"rnn.weight_ih_l{k}"] = (gates * H, rnn["input_size"] if k == 0 else H)
        shapes[f"rnn.weight_hh_l{k}"] = (gates * H, H)
        if rnn["bias"]:
            shapes[f"rnn.bias_ih_l{k}"] = shapes[f"rnn.bias_hh_l{k}"] = (gates * H,)
    out = spec["out"]
    shapes["out.weight"] = (out["out_features"], out["in_features"])
    if out["bias"]:
        shapes["out.bias"] = (out["out_features"],)
    return shapes


# --------------------------------------------------------------------- rnnlm <-> torch names

def _layout(model):
    """{torch name: int array of positions in the concatenation of `model.params` (in key order)}.

    `torch_state_dict` is applied to parameters whose entries are their own positions, so the
    names, transposes and refusals all stay in that one method and import simply inverts them.
    """
    positions, start = {}, 0
    for name, value in model.params.items():
        positions[name] = np.arange(start, start + value.size, dtype=np.float64).reshape(value.shape)
        start += value.size
    return {name: v.astype(np.int64) for name, v in model.torch_state_dict(positions).items()}, start


def torch_tensors(model):
    """`model`'s parameters under torch's names and layouts (copies), or ConfigError when it has no torch form."""
    config = _config_of(model)
    kind = export_kind(model)
    if kind in TUTORIAL_KINDS:
        torch_spec(config, kind)  # refuses the class softmax, which torch has no module for
        p = model.params
        return {"embedding.weight": p["U"].T.copy(), "rnn.weight_ih_l0": np.eye(config.hidden_size, dtype=p["W"].dtype),
                "rnn.weight_hh_l0": p["W"].copy(), "out.weight": p["V"].copy()}
    if not hasattr(model, "torch_state_dict"):
        raise ConfigError(f"{type(model).__name__} has no PyTorch form, so it cannot be exported to safetensors")
    try:
        tensors = model.torch_state_dict()  # the one place that refuses the cells torch has no module for
    except ConfigError as exc:
        raise ConfigError(f"{exc}; export supports {SUPPORTED}") from None
    torch_spec(config, kind)
    return tensors


def _fill_params(model, tensors, kind):
    """Copy torch-named `tensors` (already checked against the spec) into `model.params`."""
    p = model.params
    if kind in TUTORIAL_KINDS:
        # fold a trained input map back into U: tanh(E[x] A^T + ...) = tanh((A E^T)[:, x] + ...)
        p["U"][...] = tensors["rnn.weight_ih_l0"].astype(np.float64) @ tensors["embedding.weight"].astype(np.float64).T
        p["W"][...] = tensors["rnn.weight_hh_l0"]
        p["V"][...] = tensors["out.weight"]
        return
    if model.config.tie_weights and not np.array_equal(tensors["out.weight"], tensors["embedding.weight"]):
        raise ModelFileError("this model ties its output matrix to the embedding, but the file's out.weight "
                             "differs from its embedding.weight")
    layout, total = _layout(model)
    flat = np.full(total, np.nan)
    for name, where in layout.items():
        flat[where] = tensors[name]
    if np.isnan(flat).any():  # a parameter torch_state_dict does not export: no way back
        raise ConfigError("this model has parameters PyTorch's module does not hold, so it cannot be imported")
    start = 0
    for value in p.values():
        value[...] = flat[start:start + value.size].reshape(value.shape)
        start += value.size


# --------------------------------------------------------------------- the file

@dataclass(frozen=True)
class TorchExport:
    """What an rnnlm safetensors file holds: tensors under torch's names, and what rebuilds the model.

    tensors: {torch name: array}; spec: `torch_spec`'s dict; kind: "fast-rnn" or "language-model".
    """

    tensors: dict
    model_config: ModelConfig
    kind: str
    vocabulary: Vocabulary
    level: str
    data_config: DataConfig
    train_config: TrainConfig | None
    spec: dict

    def with_tensors(self, tensors):
        """The same export holding other tensors (e.g. trained further in PyTorch); checked when written."""
        return TorchExport(tensors=dict(tensors), model_config=self.model_config, kind=self.kind,
                           vocabulary=self.vocabulary, level=self.level, data_config=self.data_config,
                           train_config=self.train_config, spec=self.spec)

    def metadata(self):
        """The file's `__metadata__`: every value a string, as safetensors requires."""
        from rnnlm.version import __version__
        return {
            "format": FORMAT_NAME, "format_version": str(FORMAT_VERSION), "rnnlm_version": __version__,
            "model_kind": self.kind, "level": self.level,
            "model_config": json.dumps(self.model_config.to_dict()),
            "data_config": json.dumps(self.data_config.to_dict()),
            "train_config": json.dumps(None if self.train_config is None else self.train_config.to_dict()),
            "vocabulary": json.dumps(list(self.vocabulary.index_to_word), ensure_ascii=False),
            "vocabulary_counts": json.dumps(list(self.vocabulary.counts)),
            "torch_module": json.dumps(self.spec),
        }


def export_model(model, vocabulary, level="word", data_config=None, train_config=None, dtype=None):
    """A `TorchExport` of `model` (its tensors cast to `dtype`, default: as they are); ConfigError if no torch form."""
    config = _config_of(model)
    if config.vocab_size != len(vocabulary):
        raise ModelFileError(f"model has {config.vocab_size} outputs but the vocabulary {len(vocabulary)} words")
    tensors = torch_tensors(model)
    if dtype is not None:
        tensors = {k: v.astype(dtype) for k, v in tensors.items()}
    kind = export_kind(model)
    return TorchExport(tensors=tensors, model_config=config, kind=kind, vocabulary=vocabulary,
                       level=level, data_config=data_config or DataConfig(vocabulary_size=len(vocabulary), level=level),
                       train_config=train_config, spec=torch_spec(config, kind))


def _check_tensors(tensors, spec, where):
    """ModelFileError unless `tensors` has exactly the spec's names, shapes, a float dtype and finite values."""
    expected = _expected_shapes(spec)
    missing = [k for k in expected if k not in tensors]
    extra = [k for k in tensors if k not in expected]
    if missing or extra:
        what = f"lacks {', '.join(missing)}" if missing else f"has unexpected tensors {', '.join(extra)}"
        raise ModelFileError(f"{where} {what}; it does not match the {spec['rnn']['type']} module its metadata describes")
    for name, shape in expected.items():
        value = tensors[name]
        if tuple(value.shape) != shape:
            raise ModelFileError(f"{where}: tensor {name} has shape {tuple(value.shape)}, expected {shape}")
        if value.dtype not in FLOAT_DTYPES:
            raise ModelFileError(f"{where}: tensor {name} has dtype {value.dtype}; rnnlm reads float16, float32 "
                                 "or float64 (convert bfloat16 with tensor.float() before saving)")
        fault = parameter_fault(value)
        if fault is not None:
            raise ModelFileError(f"{where}: {parameter_message(name, fault, 'tensor')}")


def write_safetensors(path, export):
    """Write a `TorchExport` to `path` atomically (a failed write leaves any old file as it was)."""
    numpy_api, _, _ = _safetensors_numpy()
    _check_tensors(export.tensors, export.spec, "the tensors to write")
    data = numpy_api.save({k: np.ascontiguousarray(v) for k, v in export.tensors.items()}, metadata=export.metadata())
    with atomic_write(path) as handle:
        handle.write(data)


def save_safetensors(path, model, vocabulary, level="word", data_config=None, train_config=None, dtype=None):
    """Export `model` with its vocabulary and configuration to a safetensors file at `path`."""
    export = export_model(model, vocabulary, level=level, data_config=data_config, train_config=train_config,
                          dtype=dtype)
    write_safetensors(path, export)
    return export


def _json(meta, key, path):
    try:
        return json.loads(meta[key])
    except KeyError:
        raise ModelFileError(f"{path} has rnnlm metadata without {key!r}; it is damaged") from None
    except json.JSONDecodeError:
        raise ModelFileError(f"{path}: metadata {key!r} is not valid JSON; the file is damaged") from None
    except RecursionError:
        raise ModelFileError(f"{path}: metadata {key!r} is JSON nested too deeply; the file is damaged or crafted") \
            from None
    except ValueError:  # an integer of more than 4300 digits: Python refuses to convert it
        raise ModelFileError(f"{path}: metadata {key!r} holds a number thousands of digits long; the file is "
                             "damaged or crafted") from None


def read_safetensors(path):
    """Read an rnnlm safetensors file into a `TorchExport`, or ModelFileError saying what is wrong."""
    _, safe_open, SafetensorError = _safetensors_numpy()
    path = Path(path)
    if not path.exists():
        raise ModelFileError(f"file not found: {path}")
    if path.is_dir():
        raise ModelFileError(f"{path} is a directory, not a safetensors file")
    try:
        with safe_open(str(path), framework="numpy") as handle:
            meta = handle.metadata() or {}
            if meta.get("format") != FORMAT_NAME:
                raise ModelFileError(f"{path} is a safetensors file without rnnlm's metadata (vocabulary, "
                                     "configuration), so it cannot rebuild a model; export one with "
                                     "'rnnlm export MODEL.npz --format safetensors'")
            tensors = {name: handle.get_tensor(name) for name in handle.keys()}
    except SafetensorError as exc:
        raise ModelFileError(f"{path} is not a readable safetensors file, or it is truncated or damaged "
                             f"({' '.join(str(exc).split())})") from None
    except (TypeError, ValueError) as exc:  # e.g. a dtype NumPy has no type for (bfloat16)
        raise ModelFileError(f"{path} holds a tensor rnnlm cannot read ({exc}); save float32 tensors") from None
    except OSError as exc:
        raise ModelFileError(f"cannot read {path}: {exc.strerror or exc}") from None
    if meta.get("format_version") != str(FORMAT_VERSION):
        raise ModelFileError(f"{path} has rnnlm safetensors format version {meta.get('format_version')!r}, "
                             f"but this rnnlm reads version {FORMAT_VERSION}")
    parsed = {key: _json(meta, key, path) for key in ("model_config", "data_config", "train_config", "vocabulary",
                                                      "vocabulary_counts", "torch_module")}
    try:
        config = ModelConfig.from_dict(parsed["model_config"])
        data_config = DataConfig.from_dict(parsed["data_config"])
        train_config = None if parsed["train_config"] is None else TrainConfig.from_dict(parsed["train_config"])
        vocabulary = Vocabulary.from_arrays({"index_to_word": np.array(parsed["vocabulary"], dtype=str),
                                             "counts": np.array(parsed["vocabulary_counts"], dtype=np.int64)})
        level, kind = meta["level"], meta["model_kind"]
    except (RnnlmError, KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ModelFileError(f"{path} has incomplete or inconsistent rnnlm metadata ({exception_line(exc)})") from None
    if kind not in EXPORT_KINDS or kind not in kinds_for(config):
        raise ModelFileError(f"{path}: model kind {short_text(kind)} does not match its configuration (a "
                             f"{model_kind(config)!r} model; rnnlm safetensors files hold {', '.join(EXPORT_KINDS)})")
    fault = level_fault(level, data_config, vocabulary)
    if fault:
        raise ModelFileError(f"{path}: {fault}")
    try:
        spec = torch_spec(config, kind)
    except ConfigError as exc:
        raise ModelFileError(f"{path}: {exc}") from None
    if len(vocabulary) != config.vocab_size:
        raise ModelFileError(f"{path}: vocabulary has {len(vocabulary)} words but the model {config.vocab_size}")
    if spec != parsed["torch_module"]:
        raise ModelFileError(f"{path}: its torch_module metadata does not match its model configuration")
    _check_tensors(tensors, spec, str(path))
    return TorchExport(tensors=tensors, model_config=config, kind=kind, vocabulary=vocabulary, level=level,
                       data_config=data_config, train_config=train_config, spec=spec)


def load_safetensors(path, dtype=np.float32):
    """Rebuild the rnnlm model an rnnlm safetensors file describes: a `Checkpoint` with no training state."""
    export = read_safetensors(path)
    model = build_model(export.model_config, seed=0, dtype=dtype, kind=export.kind)
    _fill_params(model, export.tensors, export.kind)
    bad = first_parameter_fault(model.params)  # U is folded from two tensors: check the result too
    if bad is not None:
        raise ModelFileError(f"{path}: the imported {parameter_message(*bad)}; the tensors are not a usable model")
    return Checkpoint(path=Path(path), model=model, vocabulary=export.vocabulary, level=export.level,
                      kind=export.kind, data_config=export.data_config, train_config=export.train_config,
                      state=None, metadata=export.metadata())


# --------------------------------------------------------------------- the torch side (needs torch)

def torch_module(export):
    """A torch `nn.Module` holding `export`'s tensors (float32 compute for float16 files).

    forward(x: (N, T) long) -> logits (N, T, C); padding at the end of a row never changes the
    logits before it, so a padded batch needs only its padded targets ignored in the loss.
    Parameters named in spec["frozen"] (the tutorial's identity input map) get requires_grad False.
    """
    try:
        import torch
    except ImportError:
        raise ConfigError("PyTorch is not installed; see docs/scaling.md for the CPU build") from None

    class RnnlmTorch(torch.nn.Module):
        def __init__(self, spec):
            super().__init__()
            r, o = spec["rnn"], spec["out"]
            self.embedding = torch.nn.Embedding(*spec["embedding"])
            self.rnn = getattr(torch.nn, r["type"])(r["input_size"], r["hidden_size"], num_layers=r["num_layers"],
                                                    bias=r["bias"], batch_first=True)
            self.out = torch.nn.Linear(o["in_features"], o["out_features"], bias=o["bias"])
            if spec.get("tied"):
                self.out.weight = self.embedding.weight

        def forward(self, x):
            hidden, _ = self.rnn(self.embedding(x))
            return self.out(hidden)

    dtype = torch.float64 if export.tensors["embedding.weight"].dtype == np.float64 else torch.float32
    module = RnnlmTorch(export.spec).to(dtype)
    module.load_state_dict({k: torch.from_numpy(np.ascontiguousarray(v)).to(dtype) for k, v in export.tensors.items()})
    for name, parameter in module.named_parameters():
        if name in export.spec["frozen"]:
            parameter.requires_grad_(False)
    return module


def module_tensors(module):
    """A torch module's state dict as float32/float64 NumPy arrays (CPU copies), ready for `with_tensors`."""
    return {name: value.detach().cpu().numpy().copy() for name, value in module.state_dict().items()}
