"""Baseline: a linear model (softmax regression) trained with mini-batch SGD, numpy only."""

import numpy as np
import topdown_task as tt

rng = np.random.default_rng(0)
x_train, y_train = tt.load("train")
x_test = tt.load("test_inputs")
x_train = x_train.reshape(len(x_train), -1).astype(np.float32) / 255
x_test = x_test.reshape(len(x_test), -1).astype(np.float32) / 255

weights = np.zeros((x_train.shape[1], 10), dtype=np.float32)
bias = np.zeros(10, dtype=np.float32)
learning_rate, batch_size = 0.5, 128


def softmax(z):
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


for epoch in range(10):
    order = rng.permutation(len(x_train))
    losses = []
    for start in range(0, len(order), batch_size):
        batch = order[start : start + batch_size]
        xb, yb = x_train[batch], y_train[batch]
        probabilities = softmax(xb @ weights + bias)
        losses.append(-np.log(probabilities[np.arange(len(yb)), yb] + 1e-9).mean())
        probabilities[np.arange(len(yb)), yb] -= 1  # gradient of cross-entropy wrt the logits
        weights -= learning_rate * xb.T @ probabilities / len(yb)
        bias -= learning_rate * probabilities.mean(axis=0)
    accuracy = (np.argmax(x_train @ weights + bias, axis=1) == y_train).mean()
    tt.log(epoch=epoch + 1, loss=float(np.mean(losses)), train_accuracy=float(accuracy))

tt.save_predictions(x_test @ weights + bias)
