"""Share a trained generator the way models are shared today: one folder that
`load_generator` reads back, locally or from the Hugging Face Hub (the hub extra).

    export_folder(run, out)      model.safetensors + config.json + README.md (a model card)
    push_to_hub(folder, repo)    upload that folder; load it with load_generator("hf://repo")
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from .base.files import atomic_write, write_json
from .config import Config
from .errors import CheckpointError, ConfigError
from .generate import EXPORT_WEIGHTS, HUB_PREFIX, load_generator, save_export
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
    card = model_card(cfg, info, _sha256(weights), _read_json(run_dir, "eval.json"),
                      _read_json(run_dir, "run.json"))
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
             "images = wganlab.sample(generator, 64, seed=0)  # uint8 (64, C, H, W)", "```", "",
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


def _quality_lines(evaluation: dict | None, info: dict) -> list[str]:
    if not evaluation or "fid" not in evaluation:
        return ["Not measured: run `wganlab evaluate RUN` before exporting to quote FID here."]
    e = evaluation
    lines = [f"FID **{e['fid']:.2f}** on {e.get('n_fake')} samples against {e.get('reference')} "
             f"({e.get('n_real')} images), evaluator `{e.get('evaluator')}` (SHA-256 "
             f"`{str(e.get('evaluator_sha256'))[:12]}`), seed {e.get('seed')}."]
    if "fid_low" in e:
        lines.append(f"Bootstrap 95% interval: {e['fid_low']:.2f}-{e['fid_high']:.2f}.")
    if "modes_covered" in e:
        lines.append(f"Classes covered: {e['modes_covered']}; precision {e.get('precision'):.3f}"
                     f", recall {e.get('recall'):.3f}.")
    if e.get("step") != info.get("step"):
        lines.append(f"Measured at step {e.get('step')}; this export is step {info.get('step')}.")
    lines.append("wganlab's own evaluator networks give FIDs comparable between wganlab models, "
                 "not with published Inception FIDs.")
    return lines


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


def _read_json(folder: Path | None, name: str) -> dict | None:
    try:
        return json.loads((folder / name).read_text()) if folder else None
    except (OSError, ValueError):
        return None  # no evaluation yet, or an unreadable one: the card says "not measured"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
