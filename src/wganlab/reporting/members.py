"""The report's section on an ensemble run (--ensemble N): one sample grid per member and the
spread of the members' curves.

The training log holds each member's values as NAME.mK (training/members.py); the sample
grids are samples/members/epoch-NNN-mK.png (training/outputs.py).
"""

from __future__ import annotations

import base64
import io
import re
from pathlib import Path

from ..metrics.health import number
from . import plots

plt = plots.plt
CURVES = (("wasserstein", "critic's distance estimate E[D(x)] - E[D(G(z))]"),
          ("g_loss", "generator loss"))
GRID = re.compile(r"^epoch-(\d{3,})-m(\d+)\.png$")


def member_values(rows: list[dict], name: str, members: int) -> list[list[tuple]]:
    """Each member's (step, value) pairs of one logged name ("wasserstein": d_real - d_fake)."""
    keys = ("d_real", "d_fake") if name == "wasserstein" else (name,)

    def value(r, k):
        if name == "wasserstein":
            return number(r[f"d_real.m{k}"]) - number(r[f"d_fake.m{k}"])
        return number(r[f"{name}.m{k}"])

    return [[(r["step"], value(r, k)) for r in rows if all(f"{key}.m{k}" in r for key in keys)]
            for k in range(members)]


def spread_png(rows: list[dict], members: int) -> bytes | None:
    """Every member's curves, thin, with their mean; None when the log holds none."""
    series = {name: member_values(rows, name, members) for name, _ in CURVES}
    if not any(any(s) for s in series.values()):
        return None
    fig, axes = plt.subplots(1, len(CURVES), figsize=(11, 4))
    for ax, (name, label) in zip(axes, CURVES):
        for k, pairs in enumerate(series[name]):
            if pairs:
                ax.plot(*zip(*pairs), lw=0.8, alpha=0.6, label=f"member {k}")
        ax.set_title(label, size=10)
        ax.set_xlabel("generator step")
    if members <= 8:
        axes[0].legend(fontsize=8)
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    return buf.getvalue()


def newest_grids(run_dir: Path) -> list[tuple[int, bytes]]:
    """(member, PNG bytes) of the newest epoch's member grids."""
    folder = Path(run_dir) / "samples" / "members"
    found = [(int(m[1]), int(m[2]), p) for p in folder.glob("epoch-*-m*.png")
             if (m := GRID.match(p.name))] if folder.is_dir() else []
    if not found:
        return []
    last = max(epoch for epoch, _, _ in found)
    return sorted((k, p.read_bytes()) for epoch, k, p in found if epoch == last)


def members_section(run_dir: Path, cfg: dict, rows: list[dict]) -> str:
    """The HTML section for an ensemble run; empty for a single model."""
    members = int(cfg.get("train", {}).get("ensemble", 1) or 1)
    if members <= 1:
        return ""
    cells = "".join(f'<figure><img src="data:image/png;base64,{base64.b64encode(png).decode()}"'
                    f' alt="member {k}" width="160"><figcaption>member {k}</figcaption></figure>'
                    for k, png in newest_grids(run_dir))
    spread = spread_png(rows, members)
    plot = (f'<img src="data:image/png;base64,{base64.b64encode(spread).decode()}" '
            'alt="members\' curves">') if spread else '<p class="muted">No member curves.</p>'
    return (f'<section id="members"><h2>Members ({members})</h2><h3>Samples, newest epoch '
            f'(fixed z)</h3><div class="members">{cells}</div><h3>Spread of the curves</h3>'
            f"{plot}</section>")
