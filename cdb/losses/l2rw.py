"""Learning to reweight (Ren et al. 2018): example weights from one virtual step, recomputed every batch."""
from __future__ import annotations

import torch
from torch.func import functional_call, grad

from cdb.losses.meta import MetaWeighting, batch_stats_only, trainable, unwrap, val_loss_after_step


class LearningToReweight(MetaWeighting):
    """L2RW (Ren et al. 2018, Algorithm 1).

    With per-sample weights eps (all 0), take theta' = theta - lr * grad sum_i eps_i l_i,
    and g_i = d L_val(theta') / d eps_i. The weights are w_i = max(-g_i, 0),
    normalised to sum 1 (all zero stays zero); the training loss is sum_i w_i l_i.
    -g_i = lr * <grad L_val, grad l_i>: a sample counts in proportion to how
    much its gradient agrees with the validation gradient. lr cancels in the
    normalisation; the trainer's current lr is used.
    """

    def meta_weights(self, ctx, x_val: torch.Tensor, y_val: torch.Tensor) -> torch.Tensor:
        module, base = unwrap(ctx.model), ctx.criterion.base
        x, y = ctx.inputs, ctx.targets
        params = trainable(module)

        def val_loss(eps):
            def train_objective(p):
                return (eps * base(functional_call(module, p, (x,)), y)).sum()
            return val_loss_after_step(module, base, params, train_objective, ctx.lr, x_val, y_val)

        with batch_stats_only(module):
            g = grad(val_loss)(torch.zeros(len(y), device=x.device))
        w = (-g).clamp_min(0.0)
        total = w.sum()
        return w / total if total > 0 else w
