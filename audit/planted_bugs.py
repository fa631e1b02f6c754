"""Planted bugs: put one realistic bug at a time into a copy of the code and run the tests.

A bug the tests do not notice ("survived") is a hole in the tests. Each bug is a one-line
change of the kind the audit in issue 11 found surviving (how the critic's loss combines its
terms, the critic's mode in the penalty pass, which generator loss a recipe uses, the pixel
conversion under every FID, the metric math, the device logic). The copy lives in a temporary
folder; the working tree is never touched.

    python audit/planted_bugs.py [--only TEXT] [--all-tests]

Each bug runs the tests that cover its area (--all-tests: the whole suite, slow).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STEPS, LOSSES = "src/wganlab/training/steps.py", "src/wganlab/losses.py"
MODELS, GENERATE = "src/wganlab/models.py", "src/wganlab/generate.py"
PIXELS, DEVICE = "src/wganlab/base/images.py", "src/wganlab/base/device.py"
FID, MANIFOLD = "src/wganlab/metrics/frechet.py", "src/wganlab/metrics/manifold.py"
STEP_TESTS = ["tests/oracles", "tests/test_losses.py", "tests/test_tricks.py"]
ROUND_TRIP = ["tests/test_round_trip.py"]
PIXEL_TESTS = ["tests/oracles/test_pixels.py", "tests/test_data_load.py"]
METRIC_TESTS = ["tests/oracles/test_metric_oracles.py", "tests/test_metrics_math.py"]
DEVICE_TESTS = ["tests/test_fast_device.py", "tests/test_fast.py"]

# (name, file, original text, planted text, tests that should notice)
BUGS = [
    ("critic loss: penalty weight dropped", STEPS,
     "loss = loss + t.gp_weight * penalty", "loss = loss + penalty", STEP_TESTS),
    ("critic loss: penalty subtracted", STEPS,
     "loss = loss + t.gp_weight * penalty", "loss = loss - t.gp_weight * penalty", STEP_TESTS),
    ("critic loss: penalty detached", STEPS,
     "loss = loss + t.gp_weight * penalty", "loss = loss + t.gp_weight * penalty.detach()",
     STEP_TESTS),
    ("critic loss: Wasserstein sign flipped", LOSSES,
     "return d_fake.mean() - d_real.mean()", "return d_real.mean() - d_fake.mean()",
     STEP_TESTS),
    ("penalty: square missing", LOSSES,
     "return (norms - 1.0).pow(2).mean(), norms.detach()",
     "return (norms - 1.0).abs().mean(), norms.detach()", STEP_TESTS),
    ("penalty pass: always inference mode", STEPS,
     "with eval_mode(critic, t.gp_eval_mode):", "with eval_mode(critic, True):", STEP_TESTS),
    ("penalty pass: never inference mode", STEPS,
     "with eval_mode(critic, t.gp_eval_mode):", "with eval_mode(critic, False):", STEP_TESTS),
    ("penalty pass: mode not restored", MODELS,
     "        module.train(was_training)", "        pass", STEP_TESTS),
    ("Wasserstein recipe: non-saturating generator loss", LOSSES,
     '"wasserstein": (critic_wasserstein, generator_wasserstein)',
     '"wasserstein": (critic_wasserstein, generator_nonsaturating)', STEP_TESTS),
    ("shared step: critic updated before the generator's gradient", STEPS,
     "        c_loss.backward(inputs=c_params, retain_graph=True)\n",
     "        c_loss.backward(inputs=c_params, retain_graph=True)\n        self.c_opt.step()\n",
     STEP_TESTS),
    ("R1: square missing", LOSSES,
     "return 0.5 * norms.pow(2).mean(), norms.detach()",
     "return 0.5 * norms.mean(), norms.detach()", STEP_TESTS),
    ("R1: taken at the fakes", LOSSES,
     "norms = input_gradient_norms(critic, real)", "norms = input_gradient_norms(critic, fake)",
     STEP_TESTS),
    ("loading: the generator built without the Keras padding", GENERATE,
     "return build_generator(cfg.model, cfg.model.image_shape, init=False)",
     "return build_generator(type(cfg.model)(**{**vars(cfg.model), 'padding': 'torch'}), "
     "cfg.model.image_shape, init=False)", ROUND_TRIP),
    ("batch: the generator's z reused from the last critic update",
     "src/wganlab/training/batches.py", "            z.append(self._z())\n        return",
     "            z.append(z[-1])\n        return", STEP_TESTS),
    ("batch: one alpha for the whole batch", "src/wganlab/training/batches.py",
     "                    self.batch_size, generator=self.noise",
     "                    1, generator=self.noise", STEP_TESTS),
    ("hinge: margin dropped on fakes", LOSSES,
     "F.relu(1.0 + d_fake).mean()", "F.relu(d_fake).mean()", STEP_TESTS),
    ("feature matching: fake features detached", LOSSES,
     "(features_real.mean(0) - features_fake.mean(0)).pow(2).sum()",
     "(features_real.mean(0) - features_fake.mean(0).detach()).pow(2).sum()", STEP_TESTS),
    ("pixels: truncation instead of rounding", PIXELS,
     "* 127.5).round().to(torch.uint8)", "* 127.5).to(torch.uint8)", PIXEL_TESTS),
    ("pixels: scale 128", PIXELS,
     "+ 1) * 127.5).round()", "+ 1) * 128).clamp(0, 255).round()", PIXEL_TESTS),
    ("pixels: data scaled by 128", "src/wganlab/data/tensors.py",
     "images_uint8.to(torch.float32) / 127.5 - 1.0", "images_uint8.to(torch.float32) / 128 - 1.0",
     PIXEL_TESTS),
    ("FID: sqrt(S1) sqrt(S2) for sqrt(S1 S2)", FID,
     "covmean = linalg.sqrtm(sigma1 @ sigma2)\n",
     "covmean = linalg.sqrtm(sigma1) @ linalg.sqrtm(sigma2)\n", METRIC_TESTS),
    ("FID: biased covariance", FID,
     "np.cov(f, rowvar=False)", "np.cov(f, rowvar=False, bias=True)", METRIC_TESTS),
    ("KID: kernel diagonal kept", "src/wganlab/metrics/kid.py",
     "((k_xx.sum() - np.trace(k_xx)) + (k_yy.sum() - np.trace(k_yy))) / (m * (m - 1))",
     "(k_xx.sum() + k_yy.sum()) / (m * m)", METRIC_TESTS),
    ("precision: k-th neighbour off by one", MANIFOLD,
     "radii[rows] = np.partition(d, k, axis=1)[:, k]",
     "radii[rows] = np.partition(d, k - 1, axis=1)[:, k - 1]", METRIC_TESTS),
    ("coverage: counted over fakes", MANIFOLD,
     '"coverage": float(covered.mean())}', '"coverage": float(inside.any(axis=0).mean())}',
     METRIC_TESTS),
    ("device: compared with == (cuda vs cuda:0)", DEVICE,
     "    a, b = torch.device(a), torch.device(b)\n",
     "    return torch.device(a) == torch.device(b)\n", DEVICE_TESTS),
    ("device: an index-less cuda taken as cuda:0", DEVICE,
     "return torch.cuda.current_device() if device.type == \"cuda\" else 0", "return 0",
     DEVICE_TESTS),
    ("device: graph check compares devices with !=", "src/wganlab/training/fast.py",
     "not same_device(images.device, device)", "images.device != device", DEVICE_TESTS),
    ("device: auto never picks CUDA", DEVICE,
     "        if torch.cuda.is_available():\n            return torch.device(\"cuda\")\n",
     "", DEVICE_TESTS),
    ("graph step: optimizers not made capturable", "src/wganlab/training/runner.py",
     "capturable=not blockers", "capturable=False", DEVICE_TESTS),
]


def copy_tree(target: Path) -> None:
    for part in ("src", "tests", "pyproject.toml"):
        source = ROOT / part
        if source.is_dir():
            shutil.copytree(source, target / part, ignore=shutil.ignore_patterns(
                "__pycache__", "*.egg-info"))
        else:
            shutil.copy2(source, target / part)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="")
    parser.add_argument("--all-tests", action="store_true")
    args = parser.parse_args()
    survived = 0
    with tempfile.TemporaryDirectory(prefix="wganlab-bugs-") as tmp:
        tree = Path(tmp)
        copy_tree(tree)
        env = {**os.environ, "PYTHONPATH": str(tree / "src"), "OMP_NUM_THREADS": "1"}
        for name, path, old, new, tests in BUGS:
            if args.only not in name:
                continue
            file = tree / path
            original = file.read_text()
            if original.count(old) != 1:
                print(f"STALE    {name}: the original text is not in {path} once", flush=True)
                survived += 1
                continue
            file.write_text(original.replace(old, new))
            try:
                done = subprocess.run(
                    [sys.executable, "-m", "pytest", "-x", "-p", "no:cacheprovider",
                     *(["tests"] if args.all_tests else tests)],
                    cwd=tree, env=env, capture_output=True, text=True)
            finally:
                file.write_text(original)
            failed = [line.split("::", 1)[-1][:70] for line in done.stdout.splitlines()
                      if line.startswith("FAILED")]
            killed = done.returncode == 1 and failed
            survived += not killed
            print(f"{'killed  ' if killed else 'SURVIVED'} {name}: "
                  f"{failed[0] if failed else 'exit ' + str(done.returncode)}", flush=True)
    print(f"{len([b for b in BUGS if args.only in b[0]]) - survived} killed, {survived} survived")
    return 1 if survived else 0


if __name__ == "__main__":
    sys.exit(main())
