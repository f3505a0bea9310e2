"""Adam with less Python per step: the same state, the same fused kernel, the same numbers.

``torch.optim.Adam(fused=True).step`` spends about 0.35 ms per call on this CPU in Python
(grouping tensors by device, checking options, profiler records) around a kernel that takes about
0.7 ms for the MLP VAE: 5% of a training step (BENCHMARKS.md, "Speed"). :class:`LeanAdam` calls
the kernel directly when nothing needs that machinery: one parameter group on one device and dtype,
every gradient present and dense, no amsgrad, maximize, capturable or differentiable, and state
already created (step hooks run either way). Otherwise, and on its first step, it is ``torch.optim.Adam``. Its state
dict is Adam's, so checkpoints move between the two; tests/test_speed_paths.py checks that both
give bit-identical parameters.
"""
from __future__ import annotations

import torch

# torch wraps an optimizer class's step in its hook runner (step pre/post hooks, profiler record) the
# first time one is built; LeanAdam.step gets that wrapper itself, so its fallback calls Adam's
# step unwrapped, or the hooks would run twice.
_ADAM_STEP = getattr(torch.optim.Adam.step, "__wrapped__", torch.optim.Adam.step)


class LeanAdam(torch.optim.Adam):
    """``torch.optim.Adam(params, lr=lr, fused=True)`` with a shorter path to the fused kernel."""

    def __init__(self, params, lr: float = 1e-3):
        super().__init__(params, lr=lr, fused=True)

    def _plain_step_applies(self) -> bool:
        if len(self.param_groups) != 1:
            return False
        group = self.param_groups[0]
        if group["amsgrad"] or group["maximize"] or group["capturable"] or group["differentiable"] \
                or group["weight_decay"] or not group["fused"] or isinstance(group["lr"], torch.Tensor):
            return False
        params = group["params"]
        first = params[0]
        return all(p.grad is not None and not p.grad.is_sparse and p in self.state and p.device == first.device
                   and p.dtype == first.dtype for p in params)

    @torch.no_grad()
    def step(self, closure=None):
        if closure is not None or not self._plain_step_applies():
            return _ADAM_STEP(self, closure)
        group = self.param_groups[0]
        params = group["params"]
        states = [self.state[p] for p in params]
        steps = [s["step"] for s in states]
        beta1, beta2 = group["betas"]
        torch._foreach_add_(steps, 1)
        torch._fused_adam_(params, [p.grad for p in params], [s["exp_avg"] for s in states],
                           [s["exp_avg_sq"] for s in states], [], steps, amsgrad=False, lr=group["lr"],
                           beta1=beta1, beta2=beta2, weight_decay=0.0, eps=group["eps"], maximize=False,
                           grad_scale=None, found_inf=None)
        return None
