"""CDB-CE in a plain PyTorch loop: a small classifier on imbalanced data, the weights updated after every validation.

Run: python examples/train_with_cdb_loss.py  (needs torch and cdb-loss; a few seconds on a CPU)
"""
import torch
from torch import nn

from cdb import CDBLoss

torch.manual_seed(0)
centres = torch.tensor([[2.0, 0.0], [-1.0, 1.7], [-1.0, -1.7]])


def make(per_class):  # three Gaussian blobs, class c with per_class[c] points
    y = torch.cat([torch.full((n,), c) for c, n in enumerate(per_class)])
    return centres[y] + 1.2 * torch.randn(len(y), 2), y


x_train, y_train = make([1000, 100, 10])   # imbalanced: 100 : 10 : 1
x_val, y_val = make([100, 100, 100])       # balanced validation, as the paper's
model = nn.Sequential(nn.Linear(2, 32), nn.ReLU(), nn.Linear(32, 3))
criterion = CDBLoss(num_classes=3)         # tau="dynamic", normalize="mean", as loss=cdb
optimizer = torch.optim.SGD(model.parameters(), lr=0.05)

for epoch in range(10):
    model.train()
    for batch in torch.randperm(len(y_train)).split(64):
        loss = criterion(model(x_train[batch]), y_train[batch])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        logits = model(x_val)
    criterion.update_from_predictions(logits, y_val)  # per-class accuracy -> tau and weights
    acc = (logits.argmax(1) == y_val).float().mean().item()
    print(f"epoch {epoch}: val accuracy {acc:.3f}, tau {float(criterion.tau):.3f}, "
          f"weights {[round(w, 3) for w in criterion.weights.tolist()]}")
