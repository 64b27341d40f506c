"""Model and data of the sample task: logistic regression on synthetic
two-class data, in plain Python (no NumPy), so it runs on any python3.

Every client holds its own partition of the data; the server keeps a test
set. Weights travel as lists of floats.
"""

import math
import random

FEATURES = 4
# The true separating plane the data is drawn around.
TRUE_WEIGHTS = [1.5, -2.0, 0.7, 1.1]
TRUE_BIAS = -0.3


def make_data(seed, n):
    """n labelled points, reproducible from seed."""
    rng = random.Random(seed)
    data = []
    for _ in range(n):
        x = [rng.gauss(0, 1) for _ in range(FEATURES)]
        z = sum(w * xi for w, xi in zip(TRUE_WEIGHTS, x)) + TRUE_BIAS + rng.gauss(0, 0.5)
        data.append((x, 1 if z > 0 else 0))
    return data


def partition(client_id, n=400):
    """The training data of one client: its own seed, its own points."""
    seed = sum(ord(c) for c in client_id) * 7919
    return make_data(seed, n)


def test_set():
    return make_data(12345, 1000)


def initial_weights():
    return [0.0] * (FEATURES + 1)  # the last one is the bias


def _predict(w, x):
    z = sum(wi * xi for wi, xi in zip(w, x)) + w[-1]
    z = max(-30.0, min(30.0, z))
    return 1.0 / (1.0 + math.exp(-z))


def train(w, data, epochs=2, lr=0.1):
    """Stochastic gradient descent on the log loss; returns new weights."""
    w = list(w)
    rng = random.Random(len(data))
    for _ in range(epochs):
        order = list(range(len(data)))
        rng.shuffle(order)
        for i in order:
            x, y = data[i]
            g = _predict(w, x) - y
            for j in range(FEATURES):
                w[j] -= lr * g * x[j]
            w[-1] -= lr * g
    return w


def evaluate(w, data):
    """(accuracy, mean log loss) of w on data."""
    correct, loss = 0, 0.0
    for x, y in data:
        p = _predict(w, x)
        correct += (p >= 0.5) == (y == 1)
        p = min(max(p, 1e-9), 1 - 1e-9)
        loss -= y * math.log(p) + (1 - y) * math.log(1 - p)
    return correct / len(data), loss / len(data)


def average(updates):
    """Federated averaging: the weights of each client, weighted by how
    many points it trained on."""
    total = sum(n for _, n in updates)
    return [sum(w[j] * n for w, n in updates) / total for j in range(FEATURES + 1)]
