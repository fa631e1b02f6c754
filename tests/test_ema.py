"""The generator EMA: its update arithmetic against hand-computed values, buffers, state."""

import pytest
import torch
from torch import nn

from wganlab.generate import averaged_generator
from wganlab.training.ema import GeneratorEMA, ramped_decay


class Tiny(nn.Module):
    """One weight and one BatchNorm layer (whose running statistics are buffers)."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.zeros(2))
        self.bn = nn.BatchNorm1d(2)


def set_raw(module: Tiny, value: float) -> None:
    with torch.no_grad():
        module.w.fill_(value)
        module.bn.running_mean.fill_(10 * value)
        module.bn.num_batches_tracked.fill_(int(value))


def test_update_matches_hand_computed_values():
    # decay 0.2 caps the ramp (1+k)/(10+k) from k = 2 on:
    #   k=0: beta = 1/10 = 0.1        ema = 0.1 * 0   + 0.9 * 1 = 0.9
    #   k=1: beta = 2/11 (< 0.2)      ema = 2/11 * 0.9 + 9/11 * 2 = 1.8
    #   k=2: beta = min(0.2, 3/12)    ema = 0.2 * 1.8 + 0.8 * 3 = 2.76
    raw = Tiny()
    ema = GeneratorEMA(raw, decay=0.2)
    for value, want in ((1.0, 0.9), (2.0, 1.8), (3.0, 2.76)):
        set_raw(raw, value)
        ema.update()
        assert ema.module.w.tolist() == pytest.approx([want, want], abs=1e-6)
        # Buffers are copied from the raw network, not averaged.
        assert ema.module.bn.running_mean.tolist() == [10 * value] * 2
        assert int(ema.module.bn.num_batches_tracked) == int(value)
    assert ema.count == 3
    assert raw.w.tolist() == [3.0, 3.0]  # the raw weights are never touched


def test_ramp_reaches_the_decay():
    counts = torch.tensor([0, 1, 8, 90, 10_000])
    got = [float(ramped_decay(0.999, c)) for c in counts]
    assert got == pytest.approx([0.1, 2 / 11, 9 / 18, 91 / 100, 0.999])


def test_averaged_copy_starts_as_the_raw_network_and_is_independent():
    raw = Tiny()
    set_raw(raw, 5.0)
    ema = GeneratorEMA(raw, decay=0.9)
    assert ema.module.w.tolist() == [5.0, 5.0]
    assert not any(p.requires_grad for p in ema.module.parameters())
    set_raw(raw, 6.0)
    assert ema.module.w.tolist() == [5.0, 5.0]


def test_state_round_trip_continues_the_same_average():
    raw = Tiny()
    a = GeneratorEMA(raw, decay=0.5)
    set_raw(raw, 1.0)
    a.update()
    # A resumed run: a fresh network with the raw weights, its EMA loaded from a's state.
    resumed = Tiny()
    resumed.load_state_dict(raw.state_dict())
    b = GeneratorEMA(resumed, decay=0.5)
    assert b.module.w.tolist() == [1.0, 1.0]  # not yet the average (0.9)
    b.load_state_dict(a.state_dict())
    assert b.count == 1 and b.module.w.tolist() == pytest.approx([0.9, 0.9])
    set_raw(raw, 2.0)
    set_raw(resumed, 2.0)
    a.update()
    b.update()  # the loaded count gives the same ramp step (beta = 2/11)
    assert torch.equal(a.module.w, b.module.w)
    assert a.module.w.tolist() == pytest.approx([1.8, 1.8])


def test_averaged_generator_reads_a_checkpoint_entry():
    raw = Tiny()
    ema = GeneratorEMA(raw, decay=0.9)
    weights = averaged_generator({"ema": ema.state_dict()})
    assert set(weights) == set(raw.state_dict())
    assert averaged_generator({"generator": {}}) is None


def test_decay_out_of_range_is_refused():
    with pytest.raises(ValueError, match="decay"):
        GeneratorEMA(Tiny(), decay=1.0)
