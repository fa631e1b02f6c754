"""The console: a tqdm bar with live losses (and time spent and left with --minutes), and
lines printed above it."""

from __future__ import annotations

from tqdm import tqdm

from .runtime import Clock


def _mmss(seconds: float) -> str:
    seconds = max(0, int(seconds))
    return f"{seconds // 60}:{seconds % 60:02d}"


class Progress:
    """Steps against the planned total; with only --minutes, training time against the
    budget."""

    def __init__(self, total_steps: int | None, step: int, clock: Clock, enabled: bool):
        self.clock, self.losses = clock, ""
        self.by_time = total_steps is None and clock.minutes is not None
        if self.by_time:
            self.bar = tqdm(total=round(clock.minutes * 60), unit="s", disable=not enabled,
                            dynamic_ncols=True, bar_format="{l_bar}{bar}| {postfix}")
        else:
            self.bar = tqdm(total=total_steps, initial=step, unit="step",
                            disable=not enabled, dynamic_ncols=True)
        self.step = step

    def advance(self, step: int) -> None:
        """Move the bar after a step: by one step, or by time to the seconds spent."""
        self.step = step
        if self.by_time:
            self.bar.update(max(0, min(int(self.clock.this_process()), self.bar.total)
                                - self.bar.n))
            self._postfix()
        else:
            self.bar.update(1)

    def on_rows(self, rows: list[dict]) -> None:
        """Show the newest row's losses beside the bar (and AC-GAN's classifier loss on the
        real images, "cls")."""
        if rows:
            row = rows[-1]
            self.losses = f"G {row['g_loss']:.3g} D {row['d_loss']:.3g}"
            if row.get("c_class_loss") is not None:
                self.losses += f" cls {row['c_class_loss']:.3g}"
            self._postfix(refresh=True)

    def _postfix(self, refresh: bool = False) -> None:
        parts = [self.losses] if self.losses else []
        if self.clock.minutes is not None:
            spent, budget = int(self.clock.this_process()), round(self.clock.minutes * 60)
            parts.insert(0, f"{_mmss(spent)} of {_mmss(budget)}, {_mmss(budget - spent)} left")
        if self.by_time:
            parts.insert(0, f"step {self.step}")
        self.bar.set_postfix_str(" | ".join(parts), refresh=refresh)

    def say(self, line: str) -> None:
        """Print a line above the bar."""
        self.bar.write(line)

    def close(self) -> None:
        """Close the bar."""
        self.bar.close()
