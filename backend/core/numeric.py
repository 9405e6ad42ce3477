"""Small numeric helpers shared by the layers above."""
from __future__ import annotations

import numpy as np
from scipy.special import softmax as _scipy_softmax


def softmax(scores: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Weights summing to 1 over the last axis: exp(score / temperature), normalised."""
    return _scipy_softmax(np.asarray(scores, dtype=np.float64) / temperature, axis=-1)
