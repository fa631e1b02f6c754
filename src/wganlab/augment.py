"""Differentiable augmentation (DiffAugment, Zhao et al. 2020; ADA's p, Karras et al. 2020):
pure functions of images in [-1, 1] and uniform random draws in [0, 1).

    y = augment(x, u, p, policies)   # x (b, C, H, W); u (b, draws_needed(policies))

Every transform is a differentiable function of x (gathers, masks, sums), so the generator's
gradient flows through it. Each transform acts on an image with probability p, decided by one
draw per image and transform (`u < p`); an image it skips is passed through by
`torch.where`, so p = 0 returns x bit for bit. The random numbers come in as arguments: the
training step draws them from the augmentation's own stream (training/augmenting.py), the tests
hand-write them. The order is DiffAugment's: colour, then translation, then cutout.

Draws per image, in order: colour (brightness: apply, shift; saturation: apply, factor;
contrast: apply, factor), translation (apply, dy, dx), cutout (apply, centre y, centre x).
"""

from __future__ import annotations

import torch

POLICIES = ("colour", "translation", "cutout")  # in the order they are applied
DRAWS = {"colour": 6, "translation": 3, "cutout": 3}
TRANSLATION = 0.125  # largest shift, as a share of the side (DiffAugment's 1/8)
CUTOUT = 0.5  # side of the cut square, as a share of the image's side (DiffAugment's)


def parse_policies(text: str) -> tuple[str, ...]:
    """"translation,cutout" -> the policies in application order; "none" or "" -> ().
    ValueError names an unknown policy or a repeated one."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    if names == ["none"]:
        return ()
    names = ["colour" if n == "color" else n for n in names]
    unknown = [n for n in names if n not in POLICIES]
    if unknown:
        raise ValueError(f"unknown policy {unknown[0]!r}; choose from {', '.join(POLICIES)} "
                         "(comma-separated) or none")
    if len(set(names)) != len(names):
        raise ValueError(f"a policy is named twice in {text!r}")
    return tuple(p for p in POLICIES if p in names)


def draws_needed(policies: tuple[str, ...]) -> int:
    """Uniform draws per image that `augment` reads for these policies."""
    return sum(DRAWS[p] for p in policies)


def _where(apply: torch.Tensor, y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return torch.where(apply.view(-1, 1, 1, 1), y, x)


def brightness(x: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """x + shift per image (shift (b,), DiffAugment's range [-0.5, 0.5))."""
    return x + shift.view(-1, 1, 1, 1)


def saturation(x: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """Each pixel's colour moved away from its grey (channel mean) by `factor` (b,)."""
    mean = x.mean(dim=1, keepdim=True)
    return (x - mean) * factor.view(-1, 1, 1, 1) + mean


def contrast(x: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """Each image moved away from its mean (over every pixel and channel) by `factor` (b,)."""
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * factor.view(-1, 1, 1, 1) + mean


def translate(x: torch.Tensor, dy: torch.Tensor, dx: torch.Tensor) -> torch.Tensor:
    """Shift each image by whole pixels (dy, dx: (b,) integer-valued), filling with 0:
    out[i, j] = x[i - dy, j - dx] where that lies inside the image."""
    b, _, h, w = x.shape
    rows = torch.arange(h, device=x.device).view(1, h) - dy.long().view(b, 1)  # (b, H)
    cols = torch.arange(w, device=x.device).view(1, w) - dx.long().view(b, 1)  # (b, W)
    inside = ((rows >= 0) & (rows < h)).view(b, 1, h, 1) & ((cols >= 0) & (cols < w)).view(
        b, 1, 1, w)
    rows = rows.clamp(0, h - 1).view(b, 1, h, 1).expand(-1, x.shape[1], -1, w)
    out = x.gather(2, rows)
    cols = cols.clamp(0, w - 1).view(b, 1, 1, w).expand(-1, x.shape[1], h, -1)
    out = out.gather(3, cols)
    return out * inside.to(x.dtype)


def cutout(x: torch.Tensor, cy: torch.Tensor, cx: torch.Tensor, size: tuple[int, int]
           ) -> torch.Tensor:
    """Zero a size[0] x size[1] rectangle per image whose top-left corner is
    (cy - size[0] // 2, cx - size[1] // 2) (cy, cx: (b,) integer-valued; clipped at edges)."""
    b, _, h, w = x.shape
    top = cy.long().view(b, 1) - size[0] // 2
    left = cx.long().view(b, 1) - size[1] // 2
    rows = torch.arange(h, device=x.device).view(1, h) - top
    cols = torch.arange(w, device=x.device).view(1, w) - left
    in_rows = (rows >= 0) & (rows < size[0])
    in_cols = (cols >= 0) & (cols < size[1])
    cut = in_rows.view(b, 1, h, 1) & in_cols.view(b, 1, 1, w)
    return x * (~cut).to(x.dtype)


def augment(x: torch.Tensor, u: torch.Tensor, p, policies: tuple[str, ...]) -> torch.Tensor:
    """The policies applied to x (b, C, H, W) with the draws u (b, draws_needed(policies));
    each transform acts on an image where its apply-draw is below p (a float or 0-dim tensor)."""
    b, channels, h, w = x.shape
    u = u.to(x.dtype)
    i = 0
    for policy in policies:
        d = u[:, i:i + DRAWS[policy]]
        i += DRAWS[policy]
        if policy == "colour":
            x = _where(d[:, 0] < p, brightness(x, d[:, 1] - 0.5), x)
            if channels > 1:  # a grey image has no saturation: its draws go unused
                x = _where(d[:, 2] < p, saturation(x, d[:, 3] * 2.0), x)
            x = _where(d[:, 4] < p, contrast(x, d[:, 5] + 0.5), x)
        elif policy == "translation":
            sy, sx = int(h * TRANSLATION + 0.5), int(w * TRANSLATION + 0.5)
            # Integer shifts uniform in [-s, s].
            dy = torch.floor(d[:, 1] * (2 * sy + 1)) - sy
            dx = torch.floor(d[:, 2] * (2 * sx + 1)) - sx
            x = _where(d[:, 0] < p, translate(x, dy, dx), x)
        else:
            size = (int(h * CUTOUT + 0.5), int(w * CUTOUT + 0.5))
            cy, cx = torch.floor(d[:, 1] * h), torch.floor(d[:, 2] * w)
            x = _where(d[:, 0] < p, cutout(x, cy, cx, size), x)
    return x


def xflip(x: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """Mirror left-right the images whose draw u (b,) is below 0.5 (data-set augmentation)."""
    return _where(u < 0.5, x.flip(-1), x)
