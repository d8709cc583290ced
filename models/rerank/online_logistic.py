"""A standardised online logistic regression over a fixed-width feature vector.

The arithmetic of river's ``StandardScaler() | LogisticRegression(optim.Adam(lr),
l2=l2)``, example by example: Welford's running mean and variance per feature,
features scaled by them (0 where the variance is 0), log loss, Adam on the
weights with the L2 term in their gradient, plain gradient steps of
``intercept_lr`` on the intercept. It takes a sequence of floats in a fixed order
where river takes a dict per example: the purchase head learns once per event,
and river's dispatch through dicts was two thirds of its cost.
``tests/test_propensity.py`` checks it against river's pipeline, step by step.

>>> m = ScaledLogistic(2, lr=0.05)
>>> for _ in range(300):
...     m.learn_one([1.0, 0.0], True); m.learn_one([0.0, 1.0], False)
>>> m.predict_one([1.0, 0.0]) > 0.9 > 0.1 > m.predict_one([0.0, 1.0])
True
"""

from __future__ import annotations

import math
from collections.abc import Sequence


class ScaledLogistic:
    def __init__(
        self,
        width: int,
        lr: float = 0.001,
        l2: float = 1e-4,
        intercept_lr: float = 0.01,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        eps: float = 1e-8,
    ) -> None:
        self.lr, self.l2, self.intercept_lr = lr, l2, intercept_lr
        self.beta_1, self.beta_2, self.eps = beta_1, beta_2, eps
        self.seen = 0  # examples the scaler learned (every feature, every time)
        self.means = [0.0] * width
        self.vars = [0.0] * width
        self.weights = [0.0] * width
        self.intercept = 0.0
        self.steps = 0  # Adam's
        self._m = [0.0] * width
        self._v = [0.0] * width

    def scale(self, x: Sequence[float]) -> list[float]:
        return [
            (xi - mean) / var**0.5 if var else 0.0
            for xi, mean, var in zip(x, self.means, self.vars, strict=True)
        ]

    def predict_one(self, x: Sequence[float]) -> float:
        """P(y is True)."""
        # scale() and the dot product in one pass: this runs for every published list.
        dot = 0.0
        for xi, mean, var, wi in zip(x, self.means, self.vars, self.weights, strict=True):
            dot += wi * ((xi - mean) / var**0.5 if var else 0.0)
        return _sigmoid(dot + self.intercept)

    def learn_one(self, x: Sequence[float], y: bool, w: float = 1.0) -> None:
        # Welford's update, the scaling by it and the dot product in one pass.
        self.seen += 1
        n, means, vars_, weights = self.seen, self.means, self.vars, self.weights
        z: list[float] = []
        dot = 0.0
        for i, xi in enumerate(x):
            old = means[i]
            means[i] = new = old + (xi - old) / n
            vars_[i] = var = vars_[i] + ((xi - old) * (xi - new) - vars_[i]) / n
            zi = (xi - new) / var**0.5 if var else 0.0
            z.append(zi)
            dot += weights[i] * zi
        g = _log_loss_gradient(y, dot + self.intercept) * w
        self.intercept -= self.intercept_lr * g
        self._adam(z, g)

    def _adam(self, z: Sequence[float], g: float) -> None:
        b1, b2, t = self.beta_1, self.beta_2, self.steps + 1
        lr = self.lr * (1 - b2**t) ** 0.5 / (1 - b1**t)
        weights, m, v, l2, eps = self.weights, self._m, self._v, self.l2, self.eps
        for i, zi in enumerate(z):
            gi = zi * g + l2 * weights[i]
            m[i] = b1 * m[i] + (1 - b1) * gi
            v[i] = b2 * v[i] + (1 - b2) * gi * gi
            weights[i] -= lr * m[i] / (v[i] ** 0.5 + eps)
        self.steps = t


def _sigmoid(x: float) -> float:
    if x < -30:
        return 0.0
    if x > 30:
        return 1.0
    return 1 / (1 + math.exp(-x))


def _log_loss_gradient(y: bool, logit: float) -> float:
    """d(log loss)/d(logit), as river's ``optim.losses.Log`` computes it."""
    sign = 1 if y else -1
    z = logit * sign
    if z > 18.0:
        return math.exp(-z) * -sign
    if z < -18.0:
        return float(-sign)
    return -sign / (math.exp(z) + 1.0)
