"""Sharing a generator: `wganlab export RUN --out DIR` writes a folder that load_generator reads
back to the same images bit for bit, with a model card quoting the measured FID and where the
weights came from; the same folder through the Hugging Face Hub API (no network: the hub's
download and upload calls are replaced by local stand-ins)."""

import hashlib
import json

import pytest
import torch

import wganlab
from wganlab import hub
from wganlab.cli import main
from wganlab.errors import CheckpointError
from wganlab.generate import load_generator, sample


@pytest.fixture(scope="module")
def run(tiny_run):
    return tiny_run("wgan-gp", 3)


@pytest.fixture(scope="module")
def folder(run, tmp_path_factory):
    out = tmp_path_factory.mktemp("export") / "my-gan"
    assert main(["export", str(run), "--out", str(out)]) == 0
    return out


def test_the_folder_loads_back_to_identical_samples(run, folder):
    assert sorted(p.name for p in folder.iterdir()) == ["README.md", "config.json",
                                                        "model.safetensors"]
    g_run, g_dir = load_generator(run), load_generator(folder)
    cfg_run, info_run = g_run.config, g_run.provenance
    cfg_dir, info_dir = g_dir.config, g_dir.provenance
    assert cfg_dir.to_dict() == cfg_run.to_dict()
    assert json.loads((folder / "config.json").read_text()) == json.loads(cfg_run.to_json())
    assert info_dir["step"] == info_run["step"] == 3
    x = sample(g_run, 20, seed=11, uint8=False)
    y = sample(g_dir, 20, seed=11, uint8=False)
    assert torch.equal(x, y)  # the floats themselves, not only the 8-bit pictures
    public = wganlab.sample(wganlab.load_generator(folder), 20, seed=11)
    assert torch.equal(public, ((x + 1) * 127.5).round().to(torch.uint8))


def test_the_model_card_tells_provenance(run, folder):
    card = (folder / "README.md").read_text()
    digest = hashlib.sha256((folder / "model.safetensors").read_bytes()).hexdigest()
    assert f"`{digest}`" in card
    assert "| generator step | 3 |" in card and "`step-00000003.pt`" in card
    assert "synthetic" in card and f"wganlab {wganlab.__version__}" in card
    assert "library_name: wganlab" in card.split("---")[1]  # the Hub's front matter
    assert "Not measured" in card


def test_the_card_quotes_the_runs_measured_fid(run, tmp_path):
    evaluation = {"fid": 123.456, "n_fake": 500, "n_real": 256, "reference": "synthetic:test",
                  "evaluator": "wganlab-cnn-v1", "evaluator_sha256": "ab" * 32, "seed": 0,
                  "step": 3, "modes_covered": 7, "precision": 0.5, "recall": 0.25}
    (run / "eval.json").write_text(json.dumps(evaluation))
    try:
        out = hub.export_folder(run, tmp_path / "measured")
    finally:
        (run / "eval.json").unlink()
    card = (out / "README.md").read_text()
    assert "FID **123.46** on 500 samples against synthetic:test" in card
    assert "Classes covered: 7" in card and "Measured at step" not in card


def test_single_file_export_still_works(run, tmp_path):
    path = tmp_path / "g.safetensors"
    assert main(["export", str(run), "--out", str(path)]) == 0 and path.is_file()
    assert wganlab.load_generator(path).provenance["step"] == 3


def test_hf_address_loads_through_snapshot_download(folder, monkeypatch):
    huggingface_hub = pytest.importorskip("huggingface_hub")
    asked = {}

    def snapshot_download(repo_id, revision=None, allow_patterns=None):
        asked.update(repo_id=repo_id, revision=revision, patterns=allow_patterns)
        return str(folder)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)
    generator = wganlab.load_generator("hf://someone/my-gan@v1")
    assert asked == {"repo_id": "someone/my-gan", "revision": "v1",
                     "patterns": ["model.safetensors", "config.json", "README.md"]}
    assert generator.provenance["step"] == 3

    monkeypatch.setattr(huggingface_hub, "snapshot_download", lambda **k: str(folder.parent))
    with pytest.raises(CheckpointError, match="holds no model.safetensors"):
        wganlab.load_generator("hf://someone/empty")


def test_push_to_hub_uploads_the_folder(run, tmp_path, monkeypatch, capsys):
    huggingface_hub = pytest.importorskip("huggingface_hub")
    calls = []

    class FakeApi:
        def __init__(self, token=None):
            calls.append(("token", token))

        def create_repo(self, repo_id, **kwargs):
            calls.append(("create", repo_id, kwargs["private"], kwargs["exist_ok"]))

        def upload_folder(self, repo_id, folder_path, **kwargs):
            files = sorted(p.name for p in (tmp_path / "pushed").iterdir())
            calls.append(("upload", repo_id, folder_path, files))

    monkeypatch.setattr(huggingface_hub, "HfApi", FakeApi)
    out = tmp_path / "pushed"
    assert main(["export", str(run), "--out", str(out), "--push-to-hub", "me/gan",
                 "--private"]) == 0
    assert calls[1:] == [("create", "me/gan", True, True),
                         ("upload", "me/gan", str(out),
                          ["README.md", "config.json", "model.safetensors"])]
    assert "hf://me/gan" in capsys.readouterr().out
    assert main(["export", str(run), "--out", str(tmp_path / "x.safetensors"),
                 "--push-to-hub", "me/gan"]) == 2


def test_export_never_overwrites_a_folder_of_other_files(run, tmp_path, capsys):
    """`export RUN --out .` inside a project would replace its README.md and config.json."""
    project = tmp_path / "project"
    project.mkdir()
    (project / "README.md").write_text("my project")
    (project / "config.json").write_text("{}")
    assert main(["export", str(run), "--out", str(project)]) == 4
    assert "--out" in capsys.readouterr().err
    assert (project / "README.md").read_text() == "my project"
    assert sorted(p.name for p in project.iterdir()) == ["README.md", "config.json"]
    # A folder holding an earlier export is replaced, as is an empty one.
    again = tmp_path / "again"
    assert main(["export", str(run), "--out", str(again)]) == 0
    assert main(["export", str(run), "--out", str(again)]) == 0
    (tmp_path / "empty").mkdir()
    assert main(["export", str(run), "--out", str(tmp_path / "empty")]) == 0
