"""The model and the data: y = X @ w + noise, X and noise drawn by each
client from a seed derived from its flmngr client id."""

import hashlib

import numpy as np

FEATURES = 4
TRUE_WEIGHTS = np.array([2.0, -1.0, 0.5, 3.0])


def initial_model():
    return [np.zeros(FEATURES)]


def local_data(client_id: str, n: int = 200):
    """A client's own data: a train and a test split."""
    seed = int.from_bytes(hashlib.sha256(client_id.encode()).digest()[:4], "big")
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, FEATURES))
    y = x @ TRUE_WEIGHTS + rng.normal(scale=0.1, size=n)
    cut = n * 4 // 5
    return (x[:cut], y[:cut]), (x[cut:], y[cut:])


def mse(w, x, y):
    return float(np.mean((x @ w - y) ** 2))


def train(w, x, y, steps: int, lr: float):
    for _ in range(steps):
        w = w - lr * 2 * x.T @ (x @ w - y) / len(y)
    return w
