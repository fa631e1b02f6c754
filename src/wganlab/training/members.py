"""What an ensemble (--ensemble N) changes around the step: per-member checks and logs.

steps.Step works on an ensemble's stacked networks as on one network; the values it logs
are then (N,) vectors, one per member. `MemberCheck` finishes each optimizer update per
member, and `expand` turns the vectors into the loop's 0-dim values: the mean over members
under the usual name, and each member's under NAME.mK.

--on-nan skip with an ensemble skips the update of the members whose values or gradients
are not finite, and only theirs: their weights and optimizer moments stay as they were, the
other members step as their single runs would. The optimizer's step counter is shared by
all members (one per stacked tensor): it stays only when every member skipped, so a member
that skipped counts that step in Adam's bias correction where its single run would not.
"""

from __future__ import annotations

import torch

from ..errors import NonFiniteError
from .steps import HostCheck, step_unless


def member_grad_norms(params: list, members: int) -> torch.Tensor:
    """Each member's total gradient 2-norm, (N,), from stacked (N, ...) parameters."""
    grads = [p.grad.flatten(1) for p in params if p.grad is not None]
    if not grads:
        return torch.zeros(members)
    return torch.linalg.vector_norm(
        torch.stack([torch.linalg.vector_norm(g.float(), dim=1) for g in grads]), dim=0)


def member_finite(terms: dict, members: int) -> torch.Tensor:
    """(N,) bool: every per-member value of member k is finite (scalars mix the members and
    are not asked)."""
    rows = [torch.isfinite(v.float()) for v in terms.values() if v.dim() == 1]
    if not rows:
        return torch.ones(members, dtype=torch.bool)
    return torch.stack(rows).all(0)


class MemberCheck:
    """steps.HostCheck / DeviceCheck, per member of an ensemble (see the module's text)."""

    def __init__(self, inner, members: int):
        self.inner, self.members, self.skip = inner, members, inner.skip
        self.on_host = isinstance(inner, HostCheck)

    def grad_norm(self, params: list) -> torch.Tensor:
        """Each member's gradient norm, (N,)."""
        return member_grad_norms(params, self.members)

    def __call__(self, optimizer, params: list, terms: dict, prefix: str) -> torch.Tensor:
        """Adds `{prefix}_grad_norm` (N,) to terms and steps the finite members; (N,) bool."""
        terms[f"{prefix}_grad_norm"] = self.grad_norm(params)
        finite = member_finite(terms, self.members)
        self.step_if(optimizer, params, finite, terms)
        return finite

    def step_if(self, optimizer, params: list, finite: torch.Tensor, terms: dict) -> None:
        """Step the members where `finite` (N,); the others skip (--on-nan skip) or stop."""
        if not self.on_host:
            step_unless(optimizer, params, ~finite if self.skip else None)
        elif bool(finite.all()):
            optimizer.step()
        elif not self.skip:
            bad = [str(k) for k in range(self.members) if not finite[k]]
            names = [k for k, v in terms.items() if not torch.isfinite(v).all()]
            raise NonFiniteError(f"non-finite value in {', '.join(names)} of member "
                                 f"{', '.join(bad)}")
        elif not bool(finite.any()):
            optimizer.zero_grad(set_to_none=True)
        else:
            step_unless(optimizer, params, ~finite)


def make_check(cfg, kind):
    """The check that finishes each update (steps.HostCheck or DeviceCheck, given as `kind`),
    per member for an ensemble."""
    check = kind(cfg.run.on_nan)
    return MemberCheck(check, cfg.train.ensemble) if cfg.train.ensemble > 1 else check


def expand(terms: dict) -> dict:
    """0-dim values to log: each (N,) vector as its mean and as NAME.mK for member k."""
    out = {}
    for name, value in terms.items():
        if value.dim() == 1:
            out[name] = value.mean()
            out.update({f"{name}.m{k}": v for k, v in enumerate(value.unbind())})
        else:
            out[name] = value
    return out
