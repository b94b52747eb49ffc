"""A reference solution: a small convolutional network in PyTorch (about 97% accuracy).

Runs on the GPU when the job has one (topdown_task.device() says "cuda"), else on the CPU.
"""

import numpy as np
import topdown_task as tt
import torch
from torch import nn

torch.manual_seed(0)
device = torch.device(tt.device())

x_train, y_train = tt.load("train")
x_test = tt.load("test_inputs")


def as_tensor(images: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(images.astype(np.float32) / 255).unsqueeze(1).to(device)


inputs, targets = as_tensor(x_train), torch.from_numpy(y_train).long().to(device)
model = nn.Sequential(
    nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
    nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
    nn.Flatten(), nn.Linear(32 * 7 * 7, 64), nn.ReLU(), nn.Linear(64, 10),
).to(device)  # fmt: skip
optimiser = torch.optim.Adam(model.parameters(), lr=2e-3)
loss_function = nn.CrossEntropyLoss()
epochs = 6 if device.type == "cuda" else 2

for epoch in range(epochs):
    order = torch.randperm(len(inputs), device=device)
    total = 0.0
    for start in range(0, len(order), 64):
        batch = order[start : start + 64]
        loss = loss_function(model(inputs[batch]), targets[batch])
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        total += loss.item() * len(batch)
    tt.log(epoch=epoch + 1, loss=total / len(inputs))

model.eval()
with torch.no_grad():
    scores = torch.cat([model(as_tensor(x_test[i : i + 500])) for i in range(0, len(x_test), 500)])
tt.save_predictions(scores.argmax(dim=1))
print(f"trained {epochs} epochs on {device}")
