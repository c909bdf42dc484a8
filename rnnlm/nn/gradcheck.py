"""Finite-difference gradient checking for any model whose parameters live in a dict.

The numerical gradient of a scalar loss L with respect to one entry theta_i is the
central difference (L(theta_i + h) - L(theta_i - h)) / 2h, whose error is O(h^2).
An entry passes when the relative error |a - n| / (|a| + |n|) is at most the
threshold, or when |a - n| is within an absolute tolerance: that second branch is
what keeps entries where both gradients are ~0 from producing 0/0 = NaN, which
the classic tutorial's check silently counted as a pass.
"""

from dataclasses import dataclass, field

import numpy as np

from rnnlm.errors import ConfigError


def rel_error(analytic, numerical, floor=1e-12):
    """Elementwise |a - n| / max(|a| + |n|, floor): 0 when both are 0, never NaN."""
    a = np.asarray(analytic, dtype=np.float64)
    n = np.asarray(numerical, dtype=np.float64)
    return np.abs(a - n) / np.maximum(np.abs(a) + np.abs(n), floor)


def numerical_gradient(loss_fn, param, h=1e-5, indices=None):
    """Central-difference gradient of `loss_fn()` with respect to `param`, entry by entry.

    loss_fn: callable with no arguments that reads `param` (perturbed in place and
        always restored, even if `loss_fn` raises).
    param: float ndarray, any shape. indices: iterable of index tuples to check
        (default: every entry). Returns an array shaped like `param`; unchecked entries are NaN.
    """
    grad = np.full(param.shape, np.nan, dtype=np.float64)
    if indices is None:
        indices = np.ndindex(param.shape)
    for index in indices:
        original = param[index]
        try:
            param[index] = original + h
            plus = loss_fn()
            param[index] = original - h
            minus = loss_fn()
        finally:
            param[index] = original
        grad[index] = (plus - minus) / (2 * h)
    return grad


@dataclass(frozen=True)
class ParameterCheck:
    """The result for one parameter: its worst entry and how many entries failed."""

    name: str
    shape: tuple
    checked: int
    failed: int
    worst_index: tuple
    analytic: float
    numerical: float
    relative_error: float

    @property
    def passed(self):
        return self.failed == 0

    def __str__(self):
        verdict = "passed" if self.passed else f"FAILED ({self.failed} of {self.checked} entries)"
        return (f"{self.name} {self.shape}: {verdict}; worst entry {self.name}{list(self.worst_index)}: "
                f"analytic {self.analytic:.6e}, numerical {self.numerical:.6e}, "
                f"relative error {self.relative_error:.3e}")


@dataclass(frozen=True)
class GradCheckReport:
    """Per-parameter results. Truthy exactly when every checked entry passed."""

    checks: list = field(default_factory=list)
    h: float = 1e-5
    threshold: float = 1e-6
    note: str = ""

    def __bool__(self):
        return all(c.passed for c in self.checks)

    @property
    def failures(self):
        return [c for c in self.checks if not c.passed]

    def __str__(self):
        head = f"gradient check (h={self.h:g}, threshold={self.threshold:g})"
        if self.note:
            head += f": {self.note}"
        lines = [head] + [f"  {c}" for c in self.checks]
        lines.append("  all parameters passed" if self else f"  {len(self.failures)} parameter(s) FAILED")
        return "\n".join(lines)


def check_gradients(loss_fn, params, grads, h=1e-5, threshold=1e-6, atol=None,
                    max_entries=None, rng=None, note="", callback=None):
    """Compare analytic gradients with central differences for every parameter.

    loss_fn: callable with no arguments returning the scalar loss at the current `params`.
    params: dict name -> float64 ndarray (perturbed in place, restored).
    grads: dict with the same keys and shapes: the analytic gradients to check.
    atol: absolute tolerance for near-zero entries; default 10 h^2 + 1e-9, the size of
        the central difference's own truncation and round-off error.
    max_entries: check at most this many randomly chosen entries per parameter
        (default: all of them); `rng` chooses them.
    callback: called as callback(name, size) before each parameter is checked.
    Returns a GradCheckReport. Raises ConfigError for a parameter that is not float64:
    in float32 the central difference drowns in round-off (eps ~ 1e-7), so a correct
    gradient would fail.
    """
    for name, param in params.items():
        if np.asarray(param).dtype != np.float64:
            raise ConfigError(f"gradient checks need float64 parameters, but {name!r} is {np.asarray(param).dtype}; "
                              "build the model with dtype=np.float64 (float32 round-off swamps finite differences)")
    if atol is None:
        atol = 10 * h * h + 1e-9
    rng = np.random.default_rng(0) if rng is None else rng
    checks = []
    for name, param in params.items():
        analytic = np.asarray(grads[name], dtype=np.float64)
        if analytic.shape != param.shape:
            raise ValueError(f"gradient {name!r} has shape {analytic.shape}, parameter has {param.shape}")
        indices = list(np.ndindex(param.shape))
        if max_entries is not None and len(indices) > max_entries:
            chosen = rng.choice(len(indices), size=max_entries, replace=False)
            indices = [indices[i] for i in sorted(chosen)]
        if callback is not None:
            callback(name, len(indices))
        numerical = numerical_gradient(loss_fn, param, h=h, indices=indices)
        rows = tuple(np.array(indices).T)
        a, n = analytic[rows], numerical[rows]
        errors = rel_error(a, n)
        # written as 'not (ok)' so a NaN on either side counts as a failure, never a pass
        bad = ~((errors <= threshold) | (np.abs(a - n) <= atol))
        # report the worst failing entry, or the worst entry overall when all pass
        scores = np.where(bad, np.nan_to_num(errors, nan=np.inf) + 1.0, errors)
        worst = int(np.argmax(scores))
        checks.append(ParameterCheck(
            name=name, shape=tuple(param.shape), checked=len(indices), failed=int(bad.sum()),
            worst_index=tuple(int(i) for i in indices[worst]), analytic=float(a[worst]),
            numerical=float(n[worst]), relative_error=float(errors[worst])))
    return GradCheckReport(checks=checks, h=h, threshold=threshold, note=note)
