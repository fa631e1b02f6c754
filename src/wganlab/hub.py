"""Share a trained generator the way models are shared today: one folder that
`load_generator` reads back, locally or from the Hugging Face Hub (the hub extra).

    export_folder(run, out)      model.safetensors + config.json + README.md (a model card)
    push_to_hub(folder, repo)    upload that folder; load it with load_generator("hf://repo")
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from .base.files import atomic_write, write_json
from .config import Config
from .errors import CheckpointError, ConfigError
from .generate import EXPORT_WEIGHTS, HUB_PREFIX, load_generator, save_export
from .runfiles import read_eval, read_run_info
from .version import __version__

CONFIG_FILE = "config.json"
CARD_FILE = "README.md"


def export_folder(source: str | Path, out: str | Path, checkpoint_path=None,
                  weights: str = "ema", member: int | None = None) -> Path:
    """Write an export folder for a run's generator (newest valid checkpoint by default).

    The card quotes RUN/eval.json (from `wganlab evaluate`) when the run has one. Of an
    ensemble run, `member` picks the model (its single-run config goes with it).
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise CheckpointError(f"--out {out}: exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not (out / EXPORT_WEIGHTS).is_file():
        # Its README.md and config.json would be replaced: a user's own files, perhaps.
        raise CheckpointError(f"--out {out}: a folder that holds other files and no earlier "
                              f"export ({EXPORT_WEIGHTS}); give a new or empty folder")
    generator = load_generator(source, weights=weights, checkpoint=checkpoint_path,
                               member=member)
    cfg, info = generator.config, generator.provenance
    weights = save_export(generator, out / EXPORT_WEIGHTS)
    write_json(out / CONFIG_FILE, cfg.to_dict())
    run_dir = _run_dir(Path(source), info)
    card = model_card(cfg, info, _sha256(weights), _own_eval(run_dir),
                      _read(read_run_info, run_dir, "run.json"))
    atomic_write(out / CARD_FILE, lambda f: f.write(card.encode()))
    return out


def model_card(cfg: Config, info: dict, weights_sha256: str, evaluation: dict | None,
               run: dict | None) -> str:
    """The README.md of an export folder: what the model is, its measured FID, provenance."""
    run = run or {}
    c, h, w = cfg.model.image_shape
    lines = ["---", "library_name: wganlab", "tags:", "- gan", "- image-generation",
             f"- {cfg.preset}", "---", "",
             f"# A wganlab generator: `{cfg.preset}` on {cfg.run.dataset}", "",
             f"Generates {c}x{h}x{w} images in [-1, 1] from a {cfg.train.z_dist} latent "
             f"vector of size {cfg.model.z_dim} ({cfg.train.loss} loss, {cfg.train.penalty} "
             "penalty).", "",
             "```python", "import wganlab", "",
             'generator = wganlab.load_generator("PATH/TO/THIS/FOLDER")  # or "hf://USER/REPO"',
             "images = wganlab.sample(generator, 64, seed=0)  # uint8 (64, C, H, W)",
             *_class_usage(cfg), "```", "", *_class_lines(cfg),
             "## Measured quality", "", *_quality_lines(evaluation, info), "",
             "## Provenance", "", "| | |", "|---|---|",
             f"| generator step | {info.get('step')} |",
             f"| checkpoint | `{Path(str(info.get('checkpoint'))).name}` |",
             f"| data set | {cfg.run.dataset} ({run.get('data_source', 'source unknown')}) |",
             f"| trained with | wganlab {run.get('version', 'unknown')} |",
             f"| exported with | wganlab {__version__} |",
             f"| `{EXPORT_WEIGHTS}` SHA-256 | `{weights_sha256}` |",
             "", f"`{CONFIG_FILE}` holds the full training configuration.", ""]
    return "\n".join(lines)


def _class_usage(cfg: Config) -> list[str]:
    names = cfg.model.class_names
    if cfg.model.conditional == "none" or not names:
        return []
    return [f'images = wganlab.sample(generator, 64, labels="{names[-1]}")  # one class']


def _class_lines(cfg: Config) -> list[str]:
    """The card's classes section: what `labels` may name (conditional models only)."""
    names = cfg.model.conditional != "none" and cfg.model.class_names
    if not names:
        return []
    kind = {"projection": "a projection critic", "acgan": "an AC-GAN classifier"}
    return ["## Classes", "",
            f"Class-conditional ({kind[cfg.model.conditional]}; conditional BatchNorm in the "
            f"generator): `labels` takes an index or a name, one for all images or one per "
            "image.", "", "| index | class |", "|---|---|",
            *[f"| {k} | {name} |" for k, name in enumerate(names)], ""]


def _quality_lines(evaluation: dict | None, info: dict) -> list[str]:
    if not evaluation or "fid" not in evaluation:
        return ["Not measured: run `wganlab evaluate RUN` before exporting to quote FID here."]
    e = evaluation
    lines = [f"FID **{_num(e['fid'])}** on {e.get('n_fake')} samples against {e.get('reference')} "
             f"({e.get('n_real')} images), evaluator `{e.get('evaluator')}` (SHA-256 "
             f"`{str(e.get('evaluator_sha256'))[:12]}`), seed {e.get('seed')}."]
    if "fid_low" in e:
        lines.append(f"Bootstrap 95% interval: {_num(e['fid_low'])}-{_num(e.get('fid_high'))}.")
    if "modes_covered" in e:
        lines.append(f"Classes covered: {e['modes_covered']}; precision "
                     f"{_num(e.get('precision'), 3)}, recall {_num(e.get('recall'), 3)}.")
    if e.get("class_accuracy") is not None:
        lines.append(f"Class accuracy (the evaluator's classifier calls an image the class it "
                     f"was asked for): {_num(e['class_accuracy'], 3)} overall, "
                     f"{_num(e.get('class_accuracy_min'), 3)} for the worst class.")
    if e.get("step") != info.get("step"):
        lines.append(f"Measured at step {e.get('step')}; this export is step {info.get('step')}.")
    lines.append("wganlab's own evaluator networks give FIDs comparable between wganlab models, "
                 "not with published Inception FIDs.")
    return lines


def _num(value, digits: int = 2) -> str:
    """A measured number as text; NaN (written as a string) and missing ones as they are."""
    return f"{value:.{digits}f}" if isinstance(value, (int, float)) else str(value)


def push_to_hub(folder: str | Path, repo_id: str, private: bool = False,
                token: str | None = None) -> str:
    """Upload an export folder to the Hugging Face Hub; returns the hf:// address to load."""
    folder = Path(folder)
    if not (folder / EXPORT_WEIGHTS).is_file():
        raise CheckpointError(f"{folder}: not an export folder (no {EXPORT_WEIGHTS})")
    try:
        from huggingface_hub import HfApi
    except ImportError:
        raise ConfigError("--push-to-hub: needs the hub extra (pip install -e '.[hub]')") from None
    api = HfApi(token=token)
    try:
        api.create_repo(repo_id, repo_type="model", private=private, exist_ok=True)
        api.upload_folder(repo_id=repo_id, folder_path=str(folder), repo_type="model",
                          commit_message=f"wganlab {__version__} export")
    except Exception as e:  # noqa: BLE001 - network and auth errors come in many types
        raise OSError(f"--push-to-hub {repo_id}: {type(e).__name__}: {e}") from e
    return HUB_PREFIX + repo_id


def _run_dir(source: Path, info: dict) -> Path | None:
    """The run directory behind a load: the source itself, or a checkpoint's run."""
    if source.is_dir() and (source / CONFIG_FILE).is_file() and (source / "checkpoints").is_dir():
        return source
    checkpoint = Path(str(info.get("checkpoint")))
    if checkpoint.suffix == ".pt":
        return checkpoint.parent.parent
    return None


def _read(reader, folder: Path | None, name: str) -> dict | None:
    try:
        return reader(folder / name) if folder and (folder / name).exists() else None
    except ValueError:  # an unreadable file: the card says "not measured" rather than guess
        return None


def _own_eval(run_dir: Path | None) -> dict | None:
    """The run's eval.json, if it measured this run: an evaluation of another run's
    checkpoint is not quoted on this run's card."""
    evaluation = _read(read_eval, run_dir, "eval.json")
    if evaluation is None or "checkpoint" not in evaluation:
        return evaluation
    measured = Path(evaluation["checkpoint"])
    if measured.suffix == ".pt" and measured.parent.parent.resolve() != run_dir.resolve():
        return None
    return evaluation


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
