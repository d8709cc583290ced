"""The adjuster: a river model that learns, online, which candidates users engage with.

``learn_one(x, y, w)`` / ``predict_one(x)`` in river's style; ``x`` is a feature
dict from :mod:`stream_app.adjust.features`, ``y`` whether the user engaged,
``w`` how strongly (purchase > add to cart > click > view).

>>> a = Adjuster()
>>> for _ in range(200):
...     a.learn_one({"signal": 1.0}, True)
...     a.learn_one({"signal": 0.0}, False)
>>> a.predict_one({"signal": 1.0}) > 0.9 > 0.1 > a.predict_one({"signal": 0.0})
True
>>> a.examples
400
"""

from __future__ import annotations

import numpy as np
from river import compose, linear_model, optim, preprocessing


def default_model(lr: float = 0.01) -> compose.Pipeline:
    """Scaled features into a logistic regression (Adam). Measured on the Taobao slice
    against SGD(0.05), SGD(0.2) and degree-2 feature crosses: see the README."""
    return compose.Pipeline(
        preprocessing.StandardScaler(),
        linear_model.LogisticRegression(optimizer=optim.Adam(lr), l2=1e-4),
    )


class Adjuster:
    name = "river-logreg"

    def __init__(self, model: compose.Pipeline | None = None) -> None:
        self.model = model if model is not None else default_model()
        self.examples = 0

    def learn_one(self, x: dict[str, float], y: bool, w: float = 1.0) -> None:
        self.model.learn_one(x, y, w=w)
        self.examples += 1

    def predict_one(self, x: dict[str, float]) -> float:
        """P(engagement) for one candidate."""
        return float(self.model.predict_proba_one(x).get(True, 0.0))

    def predict_many(self, xs: list[dict[str, float]]) -> list[float]:
        """``predict_one`` for many candidates at once (all with the same keys).

        The same arithmetic on the model's current state, vectorised with numpy:
        scale ``(x - mean) / std`` (0 where the variance is 0, as river does), dot
        with the weights, add the intercept, sigmoid. One list's candidates cost
        one matrix product instead of one pipeline call each.
        """
        if not xs:
            return []
        scaler = self.model["StandardScaler"]
        lr = self.model["LogisticRegression"]
        keys = list(xs[0])
        x = np.array([[row[k] for k in keys] for row in xs])
        mean = np.array([scaler.means.get(k, 0.0) for k in keys])
        std = np.sqrt(np.array([scaler.vars.get(k, 0.0) for k in keys]))
        z = np.divide(x - mean, std, out=np.zeros_like(x), where=std > 0)
        w = np.array([lr._weights.get(k, 0.0) for k in keys])
        logits = np.clip(z @ w + lr.intercept, -500, 500)
        return (1.0 / (1.0 + np.exp(-logits))).tolist()

    def reset(self) -> None:
        self.model = default_model()
        self.examples = 0
