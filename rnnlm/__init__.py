"""rnnlm: a from-scratch NumPy recurrent-neural-network language model, written to be taught from.

The public names, by what they are for:

- data: `load_corpus`, `find_corpus`, `Vocabulary`, the special tokens
- models: `RNNNumpy` (the tutorial's reference), `FastRNN` (the same model, batched),
  `LanguageModel` (embedding -> stacked RNN/GRU/LSTM/Jordan cells -> softmax)
- training: `train`, `train_with_sgd`, `TrainConfig`; checking: `check_gradients`
"""

from .config import (SENTENCE_END, SENTENCE_START, UNKNOWN_TOKEN, DataConfig, ModelConfig,
                     TrainConfig)
from .corpus import find_corpus, load_corpus
from .errors import ConfigError, DataError, InputError, ModelFileError, RnnlmError
from .fast import FastRNN
from .gradcheck import GradCheckReport, check_gradients
from .models import LanguageModel
from .reference import RNNNumpy
from .tree_lstm import TreeLSTM, TreeLSTMConfig
from .train import TrainingState, train, train_with_sgd
from .vocab import Vocabulary

__version__ = "0.1.0"
