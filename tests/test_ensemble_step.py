"""An ensemble's step on a NaN, and the one-line errors of bad ensemble flags.

--on-nan skip skips the update of the members that met the NaN, and only theirs: the others
step exactly as their single runs (members looped, so bit for bit), on the host check (eager)
and the device check (CUDA graph) alike. --on-nan stop names the member.
"""

import pytest
import torch

from tiny import train_argv
from wganlab.config import apply_overrides, get_preset
from wganlab.ensemble import build_ensemble, member_state
from wganlab.errors import NonFiniteError
from wganlab.models import build_models
from wganlab.training.members import make_check
from wganlab.training.optim import make_optimizer
from wganlab.training.steps import Batch, DeviceCheck, HostCheck, Step

SEEDS, B, SHAPE = (3, 8), 4, (1, 8, 8)


def config(on_nan: str, members: int):
    """The fast preset, tiny, with `members` members."""
    return apply_overrides(get_preset("fast"), {
        "model": {"g_filters": 8, "c_filters": 4, "z_dim": 8, "image_shape": SHAPE},
        "train": {"ensemble": members, "batch_size": B}, "run": {"on_nan": on_nan}})


def step_of(cfg, generator, critic, kind):
    g_opt = make_optimizer(cfg, generator.parameters(), cfg.train.g_lr)
    c_opt = make_optimizer(cfg, critic.parameters(), cfg.train.c_lr)
    return Step(cfg, generator, critic, g_opt, c_opt, make_check(cfg, kind))


def batch(members: int, nan_member: int | None = None) -> Batch:
    """One step's batch for the fast preset (one critic update), member-major."""
    g = torch.Generator().manual_seed(0)
    reals = torch.rand(1, 2 * B, *SHAPE, generator=g) * 2 - 1
    if nan_member is not None:
        reals[0, nan_member * B:(nan_member + 1) * B] = float("nan")
    z, alphas = torch.randn(2, 2 * B, 8, generator=g), torch.rand(1, 2 * B, generator=g)
    if members == 1:  # member 0's share
        return Batch(reals[:, :B], z[:, :B], alphas[:, :B])
    return Batch(reals, z, alphas)


@pytest.mark.parametrize("kind", [HostCheck, DeviceCheck])
def test_nan_in_one_member_skips_that_members_update_only(kind):
    cfg = config("skip", 2)
    generator, critic = build_ensemble(cfg.model, SHAPE, list(SEEDS), torch.device("cpu"),
                                       stacked=False)
    before = {k: v.clone() for k, v in critic.state_dict().items()}
    step = step_of(cfg, generator, critic, kind)
    terms, ok = step(batch(2, nan_member=1))
    assert not bool(ok.all())
    # Member 1's critic update was skipped: its weights and Adam moments are as before.
    after = member_state(critic.state_dict(), 1, 2)
    assert all(torch.equal(after[n], member_state(before, 1, 2)[n]) for n in after)
    assert all(not state["exp_avg"][1].any() for state in step.c_opt.state.values())
    # Member 0 stepped as its single run does.
    torch.manual_seed(SEEDS[0])
    one_g, one_c = build_models(cfg.model, SHAPE)
    single = apply_overrides(cfg, {"train": {"ensemble": 1}})
    step_of(single, one_g, one_c, kind)(batch(1))
    for mine, theirs in ((generator, one_g), (critic, one_c)):
        ours = member_state(mine.state_dict(), 0, 2)
        assert all(torch.equal(ours[n], v) for n, v in theirs.state_dict().items())


def test_nan_with_on_nan_stop_names_the_member():
    cfg = config("stop", 2)
    generator, critic = build_ensemble(cfg.model, SHAPE, list(SEEDS), torch.device("cpu"),
                                       stacked=False)
    with pytest.raises(NonFiniteError, match="of member 1$"):
        step_of(cfg, generator, critic, HostCheck)(batch(2, nan_member=1))


def one_line_error(cli, capsys, argv, flag: str) -> str:
    """The CLI exits 2 with one line on stderr that names `flag`; the line."""
    assert cli(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and flag in err, err
    return err


@pytest.fixture
def cli():
    from wganlab.cli import main
    return main


@pytest.mark.parametrize("members", ["0", "-2"])
def test_ensemble_of_no_members_is_refused(members, cli, capsys, tmp_path):
    one_line_error(cli, capsys, train_argv("fast", tmp_path, 1, "--ensemble", members),
                   "--ensemble")


def test_seeds_of_the_wrong_length_are_refused(cli, capsys, tmp_path):
    one_line_error(cli, capsys, train_argv("fast", tmp_path, 1, "--ensemble", "2", "--seeds",
                                           "1", "2", "3"), "--seeds")


def test_more_members_than_memory_holds_are_refused_up_front(cli, capsys, tmp_path):
    argv = train_argv("wgan-gp", tmp_path / "run", 1, "--ensemble", "4096", "--image-shape",
                      "1,28,28", "--batch-size", "128", "--g-filters", "128")
    assert "GiB (estimated)" in one_line_error(cli, capsys, argv, "--ensemble")
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_resume_with_another_number_of_members_is_refused(cli, capsys, tmp_path):
    out = tmp_path / "run"
    assert cli(train_argv("fast", out, 1, "--ensemble", "2")) == 0
    capsys.readouterr()
    one_line_error(cli, capsys, train_argv("fast", out, 2, "--ensemble", "3", "--resume"),
                   "--ensemble")


def test_the_graph_registers_every_members_streams(monkeypatch):
    """On a GPU each member's noise stream and each member's dropout stream must be registered
    with the CUDA graph, or replays would repeat one step's draws. Driven on the CPU with the
    real run device objects (cuda:0 data, cuda run) and a graph stand-in that records what
    it is given."""
    import contextlib

    from wganlab.config import apply_overrides, get_preset
    from wganlab.training import fast
    from wganlab.training.state import TrainState

    cfg = apply_overrides(get_preset("seed"), {  # seed: a dropout critic
        "model": dict(g_filters=8, c_filters=4, image_shape=(1, 8, 8), n_blocks=1),
        "train": dict(batch_size=4, ensemble=2, seeds=(3, 8))})
    state = TrainState.build(cfg, torch.device("cpu"))
    images = torch.zeros(64, 1, 8, 8, dtype=torch.uint8)
    static = fast.StaticStep(cfg, state.generator, state.critic, state.g_opt, state.c_opt,
                             images, state.noise, torch.device("cpu"))
    registered = []

    class Graph:
        def register_generator_state(self, generator):
            registered.append(generator)

    monkeypatch.setattr(torch.cuda, "CUDAGraph", Graph, raising=False)
    monkeypatch.setattr(torch.cuda, "Stream", lambda device: None)
    monkeypatch.setattr(torch.cuda, "current_stream", lambda device: None)
    monkeypatch.setattr(torch.cuda, "set_stream", lambda stream: None)
    monkeypatch.setattr(torch.cuda, "graph", lambda g: contextlib.nullcontext())
    step = fast.GraphStep(static, fallback=None)
    static.load(torch.arange(64).repeat(2, 1), 0)  # each member's epoch order
    step._capture()  # here the "capture" runs the step once, on the CPU
    streams = state.noise + list(state.critic.generators)
    assert len(state.noise) == 2 and len(state.critic.generators) == 2
    assert [id(g) for g in registered] == [id(g) for g in streams]
