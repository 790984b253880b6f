"""Meta-Weight-Net (Shu et al. 2019): a small MLP maps a sample's loss to its weight, meta-trained online."""
from __future__ import annotations

import torch
from torch import nn
from torch.func import functional_call, grad

from cdb.core.errors import check
from cdb.losses.meta import MetaWeighting, batch_stats_only, trainable, unwrap, val_loss_after_step


class MetaWeightNet(MetaWeighting):
    """MW-Net: V(l; phi) = sigmoid(W2 relu(W1 l + b1) + b2), a 1-`hidden`-1 MLP.

    Every step (Shu et al. 2019, Algorithm 1): (1) virtual step theta' = theta -
    lr * grad sum_i V(l_i; phi) l_i, (2) one optimizer step on phi for the
    validation loss at theta', (3) the model trains on sum_i V(l_i; phi') l_i.
    Defaults follow Shu et al.'s class-imbalance code: weights normalised to sum
    1 over the batch, phi trained by SGD lr 1e-5, momentum 0.9, Nesterov,
    weight decay 5e-4. Their label-noise code (meta_optimizer=adam, meta_lr=1e-3,
    meta_weight_decay=1e-4, normalize=false: mean_i V l_i) is offered as options.
    """

    def __init__(self, num_classes: int, class_counts: torch.Tensor | None = None, hidden: int = 100,
                 meta_lr: float = 1e-5, meta_optimizer: str = "sgd", meta_momentum: float = 0.9,
                 meta_nesterov: bool = True, meta_weight_decay: float = 5e-4, normalize: bool = True,
                 meta_per_class: int | None = None):
        super().__init__(num_classes, class_counts, meta_per_class)
        check(int(hidden) == hidden and hidden >= 1, "loss.hidden", hidden, "an integer >= 1")
        check(meta_lr > 0, "loss.meta_lr", meta_lr, "a number > 0")
        check(meta_optimizer in ("sgd", "adam"), "loss.meta_optimizer", meta_optimizer, "sgd or adam")
        check(isinstance(normalize, bool), "loss.normalize", normalize, "true or false")
        self.normalize = normalize
        self.required_reduction = "sum" if normalize else "mean"
        self.net = nn.Sequential(nn.Linear(1, int(hidden)), nn.ReLU(), nn.Linear(int(hidden), 1), nn.Sigmoid())
        if meta_optimizer == "sgd":
            self.optimizer = torch.optim.SGD(self.net.parameters(), lr=meta_lr, momentum=meta_momentum,
                                             nesterov=bool(meta_nesterov) and meta_momentum > 0,
                                             weight_decay=meta_weight_decay)
        else:
            self.optimizer = torch.optim.Adam(self.net.parameters(), lr=meta_lr, weight_decay=meta_weight_decay)

    def weigh(self, phi: dict[str, torch.Tensor], losses: torch.Tensor) -> torch.Tensor:
        """V(l_i; phi) per sample, normalised to sum 1 when `normalize` (Shu et al.'s imbalance code)."""
        v = functional_call(self.net, phi, (losses[:, None],)).squeeze(1)
        return v / v.sum().clamp_min(torch.finfo(v.dtype).tiny) if self.normalize else v

    def meta_weights(self, ctx, x_val: torch.Tensor, y_val: torch.Tensor) -> torch.Tensor:
        module, base = unwrap(ctx.model), ctx.criterion.base
        x, y = ctx.inputs, ctx.targets
        self._to_device(x.device)
        params = trainable(module)
        reduce = torch.sum if self.normalize else torch.mean
        with batch_stats_only(module):
            with torch.no_grad():
                losses = base(module(x), y)   # the MLP's input: the current losses, a constant (Shu: cost.data)

            def val_loss(phi):
                def train_objective(p):
                    return reduce(self.weigh(phi, losses) * base(functional_call(module, p, (x,)), y))
                return val_loss_after_step(module, base, params, train_objective, ctx.lr, x_val, y_val)

            phi = {k: p.detach() for k, p in self.net.named_parameters()}
            g = grad(val_loss)(phi)
        for name, p in self.net.named_parameters():
            p.grad = g[name]
        self.optimizer.step()
        with torch.no_grad():
            return self.weigh(dict(self.net.named_parameters()), losses)

    def _to_device(self, device: torch.device) -> None:
        """Move the MLP and its optimizer state (e.g. after a CPU-side resume) to the model's device."""
        if next(self.net.parameters()).device == device:
            return
        self.net.to(device)
        for state in self.optimizer.state.values():
            for k, v in state.items():
                if torch.is_tensor(v) and v.dim() > 0:
                    state[k] = v.to(device)

    def state_dict(self) -> dict:
        return {**super().state_dict(), "net": self.net.state_dict(), "optimizer": self.optimizer.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.net.load_state_dict(state["net"])
        self.optimizer.load_state_dict(state["optimizer"])
