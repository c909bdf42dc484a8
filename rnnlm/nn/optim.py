"""Update rules over parameter dicts: SGD (with momentum), Adagrad, RMSProp, Adam, and clipping.

Every optimizer takes `params` and `grads`, two dicts with the same keys and shapes
(CS231n's symmetry), and updates the parameter arrays in place, so one optimizer
serves every model. A gradient may also be a `SparseGradient` (the embedding or `U`
gradient touches only the words in the batch); SGD and Adagrad apply it to those
slices only, which is exact for them; Adam adds it into its moving averages on those slices
and still decays and updates every entry (its averages change everywhere on every step);
RMSProp expands it first.

    SGD:      v = mu v - lr g;            theta += v          (mu = 0: theta -= lr g)
    Adagrad:  G += g^2;                   theta -= lr g / (sqrt(G) + eps)
    RMSProp:  G = rho G + (1 - rho) g^2;  theta -= lr g / (sqrt(G) + eps)
    Adam:     m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;
              theta -= lr m_hat / (sqrt(v_hat) + eps),  m_hat = m / (1 - b1^t), v_hat = v / (1 - b2^t)
"""

from typing import NamedTuple

import numpy as np

from rnnlm.config import OPTIMIZERS as OPTIMIZER_NAMES
from rnnlm.errors import ConfigError


class SparseGradient(NamedTuple):
    """A gradient that is zero except on some slices along one axis.

    indices: (K,) unique int, the slices that are non-zero (e.g. the word ids seen).
    values: the parameter's shape with axis `axis` of length K: values for those slices.
    axis: 1 for the tutorial's U (H, C), whose columns are words; 0 for an embedding (C, E).
    """

    indices: np.ndarray
    values: np.ndarray
    axis: int

    def to_dense(self, shape, dtype=None):
        dense = np.zeros(shape, dtype=dtype or self.values.dtype)
        index = [slice(None)] * len(shape)
        index[self.axis] = self.indices
        dense[tuple(index)] = self.values
        return dense

    def squared_norm(self):
        return float(np.sum(np.square(self.values, dtype=np.float64)))

    def scaled(self, factor):
        return SparseGradient(self.indices, self.values * factor, self.axis)


def _slices(grad, ndim):
    index = [slice(None)] * ndim
    index[grad.axis] = grad.indices
    return tuple(index)


def global_norm(grads):
    """sqrt(sum of every squared gradient entry), over dense and sparse gradients alike."""
    total = 0.0
    for g in grads.values():
        total += g.squared_norm() if isinstance(g, SparseGradient) else float(np.sum(np.square(g, dtype=np.float64)))
    return float(np.sqrt(total))


def clip_global_norm(grads, max_norm):
    """Scale all gradients by max_norm / norm when their global norm exceeds max_norm.

    Returns (clipped grads dict, the norm before clipping). Scaling every gradient by
    the same factor keeps the update's direction, unlike clipping each entry.
    """
    norm = global_norm(grads)
    if max_norm is None or norm <= max_norm or norm == 0.0:
        return grads, norm
    return scale_gradients(grads, max_norm / norm), norm


def scale_gradients(grads, factor):
    """Every gradient (dense or sparse) times `factor`, as a new dict."""
    return {k: (g.scaled(factor) if isinstance(g, SparseGradient) else g * factor) for k, g in grads.items()}


class Optimizer:
    """Base class: holds the learning rate and per-parameter state arrays.

    The state is a dict of dicts of arrays (plus a step counter), so a checkpoint can
    store it without pickling and training resumes exactly.
    """

    name = "optimizer"

    def __init__(self, learning_rate):
        if not learning_rate > 0:
            raise ConfigError(f"learning rate must be positive, got {learning_rate!r}")
        self.learning_rate = float(learning_rate)
        self.state = {}
        self.steps = 0
        self._scratches = {}  # per-parameter work arrays (`_scratch`): not state, never saved

    def step(self, params, grads):
        """Apply one update to every parameter in `params` (in place)."""
        self.steps += 1
        for name, param in params.items():
            self._update(name, param, grads[name])

    def _buffer(self, name, key, param):
        slot = self.state.setdefault(name, {})
        if key not in slot:
            slot[key] = np.zeros_like(param)
        return slot[key]

    def _scratch(self, name, param):
        """A work array shaped like `param`, kept between steps (not optimizer state: never saved)."""
        scratch = self._scratches.get(name)
        if scratch is None or scratch.shape != param.shape or scratch.dtype != param.dtype:
            scratch = self._scratches[name] = np.empty_like(param)
        return scratch

    def state_dict(self):
        """Flat {"name/key": array} plus "steps" and "learning_rate", for model files."""
        flat = {f"{name}/{key}": arr for name, slot in self.state.items() for key, arr in slot.items()}
        flat["steps"] = np.array(self.steps)
        flat["learning_rate"] = np.array(self.learning_rate)
        return flat

    def load_state_dict(self, flat):
        self.state = {}
        for full, arr in flat.items():
            if full in ("steps", "learning_rate"):
                continue
            name, key = full.rsplit("/", 1)
            self.state.setdefault(name, {})[key] = np.array(arr)
        self.steps = int(flat.get("steps", 0))
        self.learning_rate = float(flat.get("learning_rate", self.learning_rate))


class SGD(Optimizer):
    """theta -= lr g, or with momentum mu: v = mu v - lr g, theta += v."""

    name = "sgd"

    def __init__(self, learning_rate, momentum=0.0):
        super().__init__(learning_rate)
        if not 0 <= momentum < 1:
            raise ConfigError(f"momentum must be in [0, 1), got {momentum!r}")
        self.momentum = float(momentum)

    def _update(self, name, param, grad):
        lr = np.asarray(self.learning_rate, dtype=param.dtype)
        if isinstance(grad, SparseGradient):
            if self.momentum == 0.0:
                # indices are unique, so fancy-index assignment loses nothing
                index = _slices(grad, param.ndim)
                param[index] -= lr * grad.values
                return
            grad = grad.to_dense(param.shape, param.dtype)
        if self.momentum == 0.0:
            param -= lr * grad
        else:
            v = self._buffer(name, "velocity", param)
            v *= self.momentum
            v -= lr * grad
            param += v


class Adagrad(Optimizer):
    """G += g^2; theta -= lr g / (sqrt(G) + eps). Exact on sparse gradients."""

    name = "adagrad"

    def __init__(self, learning_rate, eps=1e-8):
        super().__init__(learning_rate)
        self.eps = eps

    def _update(self, name, param, grad):
        cache = self._buffer(name, "sum_squares", param)
        if isinstance(grad, SparseGradient):
            index = _slices(grad, param.ndim)
            cache[index] += grad.values ** 2
            param[index] -= self.learning_rate * grad.values / (np.sqrt(cache[index]) + self.eps)
            return
        cache += grad ** 2
        param -= self.learning_rate * grad / (np.sqrt(cache) + self.eps)


class RMSProp(Optimizer):
    """G = rho G + (1 - rho) g^2; theta -= lr g / (sqrt(G) + eps)."""

    name = "rmsprop"

    def __init__(self, learning_rate, decay=0.9, eps=1e-8):
        super().__init__(learning_rate)
        self.decay, self.eps = decay, eps

    def _update(self, name, param, grad):
        if isinstance(grad, SparseGradient):
            grad = grad.to_dense(param.shape, param.dtype)
        cache = self._buffer(name, "mean_square", param)
        cache *= self.decay
        cache += (1 - self.decay) * grad ** 2
        param -= self.learning_rate * grad / (np.sqrt(cache) + self.eps)


class Adam(Optimizer):
    """Adam with bias correction (Kingma & Ba, 2015): see the module docstring."""

    name = "adam"

    def __init__(self, learning_rate, beta1=0.9, beta2=0.999, eps=1e-8):
        super().__init__(learning_rate)
        self.beta1, self.beta2, self.eps = beta1, beta2, eps

    def _update(self, name, param, grad):
        """The module docstring's rule, in place, through one scratch array (no temporaries of the parameter's
        size: at C = 8000 an update was mostly allocating them). The bias corrections are scalars moved out:
        m_hat / (sqrt(v_hat) + eps) = (sqrt(c2) / c1) m / (sqrt(v) + eps sqrt(c2)), c1 = 1 - b1^t, c2 = 1 - b2^t.
        The passes run block by block (`_row_blocks`), so each block stays in cache through all of them.
        A sparse gradient adds into m and v on its slices only (the decay still applies everywhere)."""
        m, v = self._buffer(name, "m", param), self._buffer(name, "v", param)
        scratch = self._scratch(name, param)
        b1, b2 = self.beta1, self.beta2
        c1, c2 = 1 - b1 ** self.steps, 1 - b2 ** self.steps
        sparse = isinstance(grad, SparseGradient)
        if sparse:
            m *= b1
            v *= b2
            index = _slices(grad, param.ndim)
            m[index] += (1 - b1) * grad.values
            v[index] += (1 - b2) * np.square(grad.values)
        eps, step = self.eps * np.sqrt(c2), self.learning_rate * np.sqrt(c2) / c1
        for rows in _row_blocks(param):
            p, mb, vb, s = param[rows], m[rows], v[rows], scratch[rows]
            if not sparse:
                g = grad[rows]
                mb *= b1
                np.multiply(g, 1 - b1, out=s)
                mb += s
                vb *= b2
                np.multiply(g, g, out=s)
                s *= 1 - b2
                vb += s
            np.sqrt(vb, out=s)
            s += eps
            np.divide(mb, s, out=s)
            s *= step
            p -= s


def _row_blocks(array, size=1 << 16):
    """Index blocks along axis 0 that cover `array`, about `size` entries each (views, in any layout):
    an elementwise update done block by block keeps each block in cache through all its passes (Adam's
    nine: 6.1 -> 4.3 ms for 1.75 M float32 entries on one core). A 0-d array is one block."""
    if array.ndim == 0:
        yield Ellipsis
        return
    rows = max(1, size // max(1, array[0].size))
    for start in range(0, len(array), rows):
        yield slice(start, start + rows)


_RULES = {cls.name: cls for cls in (SGD, Adagrad, RMSProp, Adam)}
# The names are `rnnlm.config.OPTIMIZERS`, the one list (TrainConfig's check and the CLI's choices read it
# too); a name there without a class here fails at import, and tests/test_one_place.py checks the converse.
OPTIMIZERS = {name: _RULES[name] for name in OPTIMIZER_NAMES}


def make_optimizer(name, learning_rate, momentum=0.0):
    """The optimizer called `name`, one of `rnnlm.config.OPTIMIZERS` ("sgd", "adagrad", "rmsprop", "adam")."""
    if not isinstance(name, str) or name not in OPTIMIZERS:
        raise ConfigError(f"optimizer must be one of {', '.join(OPTIMIZER_NAMES)}, got {name!r}")
    if name == "sgd":
        return SGD(learning_rate, momentum=momentum)
    return OPTIMIZERS[name](learning_rate)
