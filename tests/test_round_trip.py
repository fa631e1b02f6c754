"""Trained -> saved -> loaded -> the same images, for every preset.

The generator is built in one place (models.build_generator). A second builder that dropped
an option (the seed preset's Keras padding once) would load weights of the right shapes into
a different network: only the images on the same z can show it, so that is what is compared,
bit for bit on the CPU, for the run directory, the checkpoint file and a safetensors export.
"""

from __future__ import annotations

import copy
import dataclasses
import json

import numpy as np
import pytest
import torch
from PIL import Image

import wganlab
from wganlab import generate, models
from wganlab.base.images import to_uint8
from wganlab.config import PRESETS, Config, apply_overrides, get_preset
from wganlab.training import loop, outputs


@pytest.fixture
def trained(monkeypatch, tmp_path):
    """Train a tiny run of a preset: its run directory, the generator as training left it, its
    fixed z, and the generator that samples by default (the EMA copy where the preset keeps one)."""
    seen = {}
    save = outputs.SampleGrids.save

    def keep(self, state, epoch):
        seen["generator"] = copy.deepcopy(state.generator).eval()
        seen["sampler"] = copy.deepcopy(state.sampler).eval()  # the EMA copy where there is one
        seen["z"] = state.fixed_z.clone()
        return save(self, state, epoch)

    monkeypatch.setattr(outputs.SampleGrids, "save", keep)

    def run(preset: str, **model):
        cfg = apply_overrides(get_preset(preset), {
            "model": {"g_filters": 16, "c_filters": 8, **model},
            "train": {"batch_size": 8, "steps": 2, "epochs": None, "minutes": None},
            "run": {"dataset": "synthetic", "out": str(tmp_path / f"{preset}{len(model)}"),
                    "progress": False,
                    "keep_last": 1}})
        result = loop.train(cfg)
        return result.run_dir, seen["generator"], seen["z"], seen["sampler"]

    return run


@pytest.mark.slow
@pytest.mark.parametrize("preset", list(PRESETS))
def test_the_trained_generator_comes_back_bit_for_bit(preset, trained, tmp_path, one_thread):
    run, generator, z, sampler = trained(preset)
    # A conditional preset's generator takes labels too; its grid starts with class 0.
    labels = (torch.arange(len(z)) % 10,) if get_preset(preset).model.conditional != "none" \
        else ()
    with torch.no_grad():
        want = generator(z, *labels)
        loaded = wganlab.load_generator(run, weights="raw")
        assert loaded.config.model == generator_config(run)
        assert torch.equal(loaded(z, *labels), want), "run directory"
        checkpoint = loaded.provenance["checkpoint"]
        assert torch.equal(wganlab.load_generator(checkpoint, weights="raw")(z, *labels), want)
        # What samples by default: the EMA generator of a preset that keeps one, else the raw.
        has_ema = get_preset(preset).train.ema_decay > 0
        assert torch.equal(sampler(z, *labels), want) != has_ema
        want = sampler(z, *labels)
        assert torch.equal(wganlab.load_generator(run)(z, *labels), want), "default weights"
        exported = wganlab.export(run, tmp_path / f"{preset}.safetensors")
        assert torch.equal(wganlab.load_generator(exported)(z, *labels), want), "export"
    # The grid the run wrote is the same network too.
    grid = np.asarray(Image.open(sorted((run / "samples").glob("epoch-*.png"))[-1]))
    first = to_uint8(want[:1])[0].permute(1, 2, 0).numpy()
    h, w = first.shape[:2]
    tile = grid[2:2 + h, 2:2 + w].reshape(first.shape)
    assert np.array_equal(tile, first)


@pytest.mark.parametrize("preset,kind", [("fast", "projection"), ("seed", "acgan")])
def test_a_conditional_generator_comes_back_bit_for_bit(preset, kind, trained, tmp_path,
                                                        one_thread):
    run, generator, z, sampler = trained(preset, conditional=kind)
    labels = torch.arange(len(z)) % 10
    with torch.no_grad():
        want = generator(z, labels)
        loaded = wganlab.load_generator(run, weights="raw")
        assert loaded.config.model == generator_config(run)
        assert loaded.config.model.class_names[7] == "bar 126 deg"
        assert torch.equal(loaded(z, labels), want), "run directory"
        checkpoint = loaded.provenance["checkpoint"]
        assert torch.equal(wganlab.load_generator(checkpoint, weights="raw")(z, labels), want)
        assert not torch.equal(loaded(z, (labels + 1) % 10), want)  # the labels matter
        # The export and the grid hold the default weights: the EMA copy for fast.
        exported = wganlab.export(run, tmp_path / f"{preset}-{kind}.safetensors")
        assert torch.equal(wganlab.load_generator(exported)(z, labels), sampler(z, labels))
    # The grid: row k, column j is G(z_j, k); its first tile is G(z_0, class 0).
    grid = np.asarray(Image.open(sorted((run / "samples").glob("epoch-*.png"))[-1]))
    with torch.no_grad():
        first = to_uint8(sampler(z[:1], labels[:1]))[0].permute(1, 2, 0).numpy()
    h, w = first.shape[:2]
    assert grid.shape[0] == 2 + 10 * (h + 2)  # one row per class
    assert np.array_equal(grid[2:2 + h, 2:2 + w].reshape(first.shape), first)


def generator_config(run):
    return Config.from_dict(json.loads((run / "config.json").read_text())).model


def test_a_second_builder_would_be_caught(trained, monkeypatch, one_thread):
    """The check bites: a loader whose generator forgets the Keras padding (the old bug)
    gives other images for a seed run."""
    run, generator, z, _ = trained("seed")
    build = models.build_generator

    def forgetful(cfg, shape, init=True):
        return build(dataclasses.replace(cfg, padding="torch"), shape, init)

    monkeypatch.setattr(generate, "build_generator", forgetful)
    with torch.no_grad():
        assert not torch.equal(generate.load_generator(run, weights="raw")(z), generator(z))
