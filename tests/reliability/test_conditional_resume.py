"""A conditional run stopped and resumed equals the run that never stopped, bit for bit (the
labels come from the data order, which a resume restores, and draw nothing from the noise
stream); its EMA is a conditional generator too, and a resume cannot change the classes."""

import pytest
import torch

from wganlab.generate import averaged_generator, load_generator

from .runs import PER_EPOCH, loss_rows, stop_and_resume, train_argv

END = 2 * PER_EPOCH["wgan-gp"]


@pytest.mark.slow
@pytest.mark.parametrize("kind,extra", [("projection", ("--ema-decay", "0.9")),
                                        ("acgan", ())])
def test_a_conditional_resume_equals_the_straight_run(kind, extra, cli, tmp_path):
    flags = ("--conditional", kind, *extra)
    straight, want = stop_and_resume(cli, tmp_path, END, *flags)
    assert ("c_class_loss" in loss_rows(straight)[-1]) == (kind == "acgan")
    if extra:  # the EMA is the conditional generator that samples use
        ema = averaged_generator(want)
        assert any(k.endswith(".scale") for k in ema)
        generator = load_generator(straight)
        assert generator.provenance["weights"] == "ema"
        z = torch.randn(2, 8)
        with torch.no_grad():
            assert not torch.equal(generator(z, torch.tensor([0, 0])),
                                   generator(z, torch.tensor([0, 5])))


def test_a_resume_cannot_change_the_classes(cli, tmp_path):
    run = tmp_path / "run"
    assert cli(*train_argv("wgan-gp", run, 2, "--conditional", "projection"))[0] == 0
    code, _, err = cli(*train_argv("wgan-gp", run, 4, "--resume", "--conditional", "acgan"))
    assert code == 2 and "--conditional: the run being resumed has 'projection'" in err
    code, _, err = cli(*train_argv("wgan-gp", run, 4, "--resume", "--class-names",
                                   "a,b,c,d,e,f,g,h,i,j"))
    assert code == 2 and "--class-names: the run being resumed has" in err
