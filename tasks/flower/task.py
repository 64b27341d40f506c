"""Model and data of the Flower sample task: NumPy only, no downloads.

A multinomial logistic regression on a synthetic classification problem
(Gaussian blobs, one per class, generated from a fixed seed), so the task
runs wherever flwr and NumPy are installed. Each client gets its own
partition of the training set; all share the test set.
"""

import numpy as np

CLASSES = 4
FEATURES = 20


def load_data(partition, num_partitions, seed=7, samples=4000):
    """Returns (x_train, y_train, x_test, y_test) of one partition."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(0.0, 2.0, size=(CLASSES, FEATURES))

    def draw(n):
        y = rng.integers(0, CLASSES, size=n)
        x = centers[y] + rng.normal(0.0, 2.5, size=(n, FEATURES))
        return x.astype(np.float64), y

    x_train, y_train = draw(samples)
    x_test, y_test = draw(samples // 4)
    share = samples // max(num_partitions, 1)
    lo, hi = partition * share, (partition + 1) * share
    return x_train[lo:hi], y_train[lo:hi], x_test, y_test


class Net:
    """Multinomial logistic regression trained with mini-batch SGD."""

    def __init__(self):
        self.w = np.zeros((FEATURES, CLASSES))
        self.b = np.zeros(CLASSES)

    def get_weights(self):
        return [self.w.copy(), self.b.copy()]

    def set_weights(self, weights):
        self.w, self.b = np.array(weights[0]), np.array(weights[1])

    def _probabilities(self, x):
        z = x @ self.w + self.b
        z -= z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)

    def train(self, x, y, epochs=1, lr=0.05, batch=32, seed=0):
        rng = np.random.default_rng(seed)
        for _ in range(epochs):
            order = rng.permutation(len(x))
            for start in range(0, len(x), batch):
                idx = order[start:start + batch]
                p = self._probabilities(x[idx])
                p[np.arange(len(idx)), y[idx]] -= 1.0
                self.w -= lr * x[idx].T @ p / len(idx)
                self.b -= lr * p.mean(axis=0)
        return self.evaluate(x, y)

    def evaluate(self, x, y):
        p = self._probabilities(x)
        loss = float(-np.log(np.maximum(p[np.arange(len(y)), y], 1e-12)).mean())
        accuracy = float((p.argmax(axis=1) == y).mean())
        return loss, accuracy
