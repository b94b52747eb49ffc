"""A small convolutional network for the ten-digit MNIST assignment (benchmark solution).

Two convolution layers and a linear head, one epoch of Adam on the CPU (or the job's GPU):
a few seconds on one core, about 94% accuracy. It is what a student's first neural net for
``mnist-ten-digits`` looks like, used by ``benchmarks/grader.py`` to time a PyTorch submission.
"""

import numpy as np
import topdown_task as tt
import torch
from torch import nn

torch.manual_seed(0)
device = torch.device(tt.device())

x_train, y_train = tt.load("train")
x_test = tt.load("test_inputs")
x_train_t = torch.from_numpy(x_train).float().div_(255).unsqueeze(1)
y_train_t = torch.from_numpy(y_train.astype(np.int64))
x_test_t = torch.from_numpy(x_test).float().div_(255).unsqueeze(1)

model = nn.Sequential(
    nn.Conv2d(1, 8, kernel_size=3, padding=1),
    nn.ReLU(),
    nn.MaxPool2d(2),  # 14 x 14
    nn.Conv2d(8, 16, kernel_size=3, padding=1),
    nn.ReLU(),
    nn.MaxPool2d(2),  # 7 x 7
    nn.Flatten(),
    nn.Linear(16 * 7 * 7, 10),
).to(device)
optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
loss_function = nn.CrossEntropyLoss()

EPOCHS, BATCH = 1, 64
for epoch in range(1, EPOCHS + 1):
    model.train()
    order = torch.randperm(len(x_train_t))
    total = 0.0
    for start in range(0, len(order), BATCH):
        index = order[start : start + BATCH]
        xb, yb = x_train_t[index].to(device), y_train_t[index].to(device)
        optimiser.zero_grad()
        loss = loss_function(model(xb), yb)
        loss.backward()
        optimiser.step()
        total += loss.item() * len(index)
    tt.log(epoch=epoch, loss=total / len(order))

model.eval()
with torch.no_grad():
    batches = [x_test_t[i : i + 500].to(device) for i in range(0, len(x_test_t), 500)]
    predictions = torch.cat([model(batch).argmax(dim=1).cpu() for batch in batches])
tt.save_predictions(predictions.numpy())
print("predicted", len(predictions), "test images")
