"""rnnlm: a from-scratch NumPy recurrent-neural-network language model, written to be taught from."""

from .config import (SENTENCE_END, SENTENCE_START, UNKNOWN_TOKEN, DataConfig, ModelConfig,
                     TrainConfig)
from .errors import ConfigError, DataError, ModelFileError, RnnlmError
from .gradcheck import GradCheckReport, check_gradients
from .reference import RNNNumpy

__version__ = "0.1.0"
