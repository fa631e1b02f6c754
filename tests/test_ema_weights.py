"""`generate`, `export` and `evaluate` take the EMA weights by default, the raw ones on request,
and fall back to the raw ones (saying so) for checkpoints that have no EMA."""

import pytest
import torch

from wganlab.base import checkpoint
from wganlab.config import apply_overrides, get_preset
from wganlab.generate import export, load_generator, sample
from wganlab.metrics import evaluate as evaluate_module
from wganlab.models import build_models
from wganlab.training.ema import GeneratorEMA


@pytest.fixture
def saved(tmp_path):
    """A run directory whose checkpoint holds raw weights and, apart from them, an EMA."""
    cfg = apply_overrides(get_preset("wgan-gp"), {
        "model": dict(z_dim=8, g_filters=8, c_filters=4, image_shape=(1, 8, 8)),
        "run": dict(dataset="synthetic")})
    torch.manual_seed(0)
    generator, _ = build_models(cfg.model, (1, 8, 8))
    ema = GeneratorEMA(generator, decay=0.5)
    with torch.no_grad():
        for p in generator.parameters():
            p.add_(0.2 * torch.randn_like(p))
    ema.update()  # now averaged = 0.1 * initial + 0.9 * raw: unequal to both
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.json").write_text(cfg.to_json())
    state = {"generator": generator.state_dict(), "ema": ema.state_dict(), "step": 3,
             "config": cfg.to_dict()}
    checkpoint.save(state, checkpoint.checkpoint_path(run, 3))
    return run, generator, ema.module, state


def same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_generate_takes_the_ema_weights_by_default(saved):
    run, raw, averaged, _ = saved
    assert not same_weights(raw, averaged)
    g = load_generator(run)
    assert g.provenance["weights"] == "ema" and same_weights(g, averaged)
    g = load_generator(run, weights="raw")
    assert g.provenance["weights"] == "raw" and same_weights(g, raw)


def test_a_checkpoint_without_ema_falls_back_to_the_raw_weights(saved, tmp_path):
    run, raw, _, state = saved
    # A checkpoint from before EMA existed: no "ema" entry, no ema_decay in its config.
    old_config = dict(state["config"], train={
        k: v for k, v in state["config"]["train"].items() if k != "ema_decay"})
    old = tmp_path / "old.pt"
    checkpoint.save(dict(generator=state["generator"], step=3, config=old_config), old)
    g = load_generator(old)
    info = g.provenance
    assert info["weights"] == "raw" and "before EMA" in info["note"]
    assert same_weights(g, raw)
    # A run trained without EMA (ema_decay 0): the raw weights, without a note.
    plain = tmp_path / "plain.pt"
    checkpoint.save(dict(generator=state["generator"], step=3, config=state["config"]), plain)
    g = load_generator(plain)
    info = g.provenance
    assert info["weights"] == "raw" and "note" not in info and same_weights(g, raw)


def test_export_writes_the_chosen_weights(saved, tmp_path):
    run, raw, averaged, _ = saved
    for weights, want in (("ema", averaged), ("raw", raw)):
        path = export(run, tmp_path / f"{weights}.safetensors", weights=weights)
        g = load_generator(path)
        assert g.provenance["weights"] == weights and same_weights(g, want)


def test_evaluate_samples_the_ema_generator(saved, monkeypatch):
    run, raw, averaged, _ = saved
    seen = []

    def fake_metrics(fake, *args, **kwargs):
        seen.append(fake)
        return {"fid": 0.0}

    monkeypatch.setattr(evaluate_module, "evaluate_images", fake_metrics)
    for weights, want in (("ema", averaged), ("raw", raw)):
        record = evaluate_module.evaluate_run(run, n=16, seed=2, weights=weights)
        assert record["weights"] == weights
        assert torch.equal(seen[-1], sample(want.eval(), 16, seed=2, z_dist="normal"))
    assert not torch.equal(seen[0], seen[1])
