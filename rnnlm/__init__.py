"""rnnlm: a from-scratch NumPy recurrent-neural-network language model, written to be taught from.

The public names, by what they are for:

- data: `load_corpus`, `find_corpus`, `Vocabulary`, the special tokens
- models: `RNNNumpy` (the tutorial's reference), `FastRNN` (the same model, batched),
  `LanguageModel` (embedding -> stacked RNN/GRU/LSTM/Jordan cells -> softmax)
- training: `train`, `train_with_sgd`, `TrainConfig`; checking: `check_gradients`
"""

from rnnlm.config import (SENTENCE_END, SENTENCE_START, UNKNOWN_TOKEN, DataConfig, ModelConfig,
                     TrainConfig)
from rnnlm.data.corpus import find_corpus, load_corpus
from rnnlm.errors import ConfigError, DataError, InputError, ModelFileError, RnnlmError
from rnnlm.models.fast import FastRNN
from rnnlm.nn.gradcheck import GradCheckReport, check_gradients
from rnnlm.models.language_model import LanguageModel
from rnnlm.models.reference import RNNNumpy
from rnnlm.models.tree_lstm import TreeLSTM, TreeLSTMConfig
from rnnlm.training.loop import TrainingState, train
from rnnlm.training.tutorial import train_with_sgd
from rnnlm.data.vocab import Vocabulary

from rnnlm.version import __version__
