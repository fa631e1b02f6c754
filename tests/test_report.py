"""The run report: one self-contained HTML file, checked in Python and in headless Chromium."""

import base64
import io
import json
import re
import shutil
import subprocess

import pytest
from PIL import Image

from wganlab.cli import main
from wganlab.reporting.figures import thin
from wganlab.reporting.report import build_report, eval_table, write_report

IMG = re.compile(r'<img class="[^"]*" src="data:(image/(?:png|gif));base64,([^"]+)" alt="([^"]+)"')
BROWSERS = ("chromium", "chromium-browser", "google-chrome")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A real two-epoch run (16 steps per epoch on synthetic data), plus what evaluation and
    the health monitor would add: FID rows, a flag row and eval.json."""
    run = tmp_path_factory.mktemp("report") / "run"
    assert main(["train", "--preset", "dcgan", "--steps", "17", "--out", str(run),
                 "--dataset", "synthetic", "--batch-size", "64", "--g-filters", "16",
                 "--c-filters", "8", "--no-progress"]) == 0
    with open(run / "metrics.jsonl", "a") as f:
        for step, minutes, fid in ((6, 0.5, 320.0), (12, 1.0, 210.0), (17, 1.2, 180.5)):
            f.write(json.dumps({"step": step, "time": minutes * 60, "eval": True, "fid": fid,
                                "modes_covered": 9}) + "\n")
        f.write(json.dumps({"step": 13, "flag": "stalled", "hint": "losses <flat> & still"})
                + "\n")
    (run / "eval.json").write_text(json.dumps({"fid": 180.5, "kid_mean": 0.0123,
                                               "modes_covered": 9, "checkpoint": "step-14"}))
    return run


def images(page):
    return [(mime, base64.b64decode(data), alt) for mime, data, alt in IMG.findall(page)]


@pytest.mark.slow
def test_report_embeds_every_figure(run):
    page = build_report(run)
    found = images(page)
    assert [alt for _, _, alt in found] == ["Learning curve", "FID curve", "Samples by epoch",
                                            "Samples animation", "Health curves"]
    for mime, data, alt in found:
        picture = Image.open(io.BytesIO(data))
        assert picture.format == mime.split("/")[1].upper() and picture.width > 100, alt
    # Self-contained: no file or network references.
    assert "src=\"http" not in page and "file:" not in page and "<link" not in page


def test_report_animates_the_fixed_z_samples_across_epochs(run):
    gif = next(data for mime, data, _ in images(build_report(run)) if mime == "image/gif")
    animation = Image.open(io.BytesIO(gif))
    assert animation.n_frames == 2 and animation.info.get("loop") == 0
    first = animation.convert("L")
    animation.seek(1)
    assert first.tobytes() != animation.convert("L").tobytes()  # epoch 2's samples differ


def test_report_holds_config_flags_and_evaluation(run):
    page = build_report(run)
    assert '<section id="flags">' in page
    assert "stalled" in page and "losses &lt;flat&gt; &amp; still" in page  # escaped
    assert "<td>kid_mean</td>" in page and ">0.0123<" in page and ">step-14<" in page
    assert "<td>gp_weight</td>" in page and "<td>non-saturating</td>" in page
    assert "Lowest FID 180.5 at step 17: <code>wganlab generate " in page


def test_report_of_a_run_without_evaluation_says_so(tmp_path, run):
    bare = tmp_path / "bare"
    shutil.copytree(run, bare)
    (bare / "eval.json").unlink()
    lines = (bare / "metrics.jsonl").read_text().splitlines()
    (bare / "metrics.jsonl").write_text("\n".join(r for r in lines if "fid" not in r) + "\n")
    page = build_report(bare)
    assert "No eval.json in this run." in page and "No fid curve yet." in page
    assert "Lowest FID" not in page
    assert len(images(page)) == 4


def test_report_raises_flags_the_training_run_did_not_log(tmp_path):
    run = tmp_path / "old"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"preset": "seed", "model": {
        "image_shape": [1, 28, 28]}, "train": {}, "run": {}}))
    rows = [{"step": s, "g_loss": 1.0 * s, "d_loss": -2.0 * s, "wasserstein": 3.0 * s}
            for s in range(1, 60)]
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    page = build_report(run)
    assert "critic_runaway" in page and "found when the report was written" in page


def test_eval_table_accepts_the_usual_shapes():
    assert "<th>metric</th>" in eval_table({"fid": 1.5})
    nested = eval_table({"step-10": {"fid": 3.0}, "step-20": {"fid": 2.0}})
    assert "<th>fid</th>" in nested and "step-20" in nested
    assert "<th>seed</th>" in eval_table([{"seed": 1, "fid": 2.0}])
    assert "<pre>" in eval_table(3)


def test_thin_keeps_first_and_last():
    assert thin(list(range(100)), 5) == [0, 25, 50, 74, 99]
    assert thin([1, 2], 5) == [1, 2] and thin([1, 2, 3], 1) == [3]


def test_report_command(run, tmp_path, capsys):
    out = tmp_path / "r.html"
    assert main(["report", str(run), "--out", str(out)]) == 0
    assert out.read_text().startswith("<!DOCTYPE html>")
    assert main(["report", str(tmp_path / "nowhere")]) == 2
    assert "not a run directory" in capsys.readouterr().err


def test_training_writes_the_report(run):
    page = (run / "report.html").read_text()
    assert '<section id="flags">' in page and len(images(page)) == 4  # before FID rows existed


CHECK = """<script>
window.addEventListener("load", () => {
  const imgs = [...document.images];
  const out = document.createElement("pre");
  out.id = "render-check";
  out.textContent = JSON.stringify({
    images: imgs.length,
    broken: imgs.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.alt),
    flags: document.getElementById("flags") !== null,
    flagRows: document.querySelectorAll("#flags td.flag").length});
  document.body.appendChild(out);
});
</script>"""


def chromium(*args, profile):
    browser = next((b for b in BROWSERS if shutil.which(b)), None)
    if browser is None:
        pytest.skip("no chromium on PATH (Debian: apt-get install chromium); the report's "
                    "browser check needs a real browser")
    command = [browser, "--headless", "--no-sandbox", "--disable-gpu",
               "--disable-background-networking", "--disable-component-update",
               "--disable-sync", "--no-first-run", f"--user-data-dir={profile}", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=True)


def test_report_renders_in_a_real_browser(run, tmp_path):
    # The check script goes into a copy, so the report itself stays free of test code.
    report = write_report(run, tmp_path / "report.html")
    checked = tmp_path / "checked.html"
    checked.write_text(report.read_text().replace("</body>", CHECK + "</body>"))
    dom = chromium("--virtual-time-budget=5000", "--dump-dom", checked.as_uri(),
                   profile=tmp_path / "profile-dom").stdout
    result = json.loads(re.search(r'<pre id="render-check">(.*?)</pre>', dom).group(1))
    assert result == {"images": 5, "broken": [], "flags": True, "flagRows": 1}

    shot = tmp_path / "report.png"
    chromium("--hide-scrollbars", "--window-size=1100,3600", f"--screenshot={shot}",
             report.as_uri(), profile=tmp_path / "profile-shot")
    picture = Image.open(shot).convert("L")
    assert picture.size == (1100, 3600)
    low, high = picture.getextrema()
    assert high - low > 100  # not a blank page
    print(f"report screenshot: {shot}")


def test_colour_samples_animate_too(tmp_path):
    import torch

    from wganlab.base.images import grid_png
    from wganlab.reporting.figures import samples_gif

    (tmp_path / "samples").mkdir()
    for epoch in (1, 2, 10):
        grid = grid_png(torch.randint(0, 256, (16, 3, 8, 8), dtype=torch.uint8))
        (tmp_path / "samples" / f"epoch-{epoch:03d}.png").write_bytes(grid)
    animation = Image.open(io.BytesIO(samples_gif(tmp_path)))
    assert animation.n_frames == 3 and animation.size == (2 + 8 * 10, 2 + 2 * 10 + 14)


def test_the_report_written_by_training_is_the_report_drawn_afresh(tiny_run):
    """The end of training embeds the learning curve and samples figures it has just drawn
    instead of drawing them again: the same page as `wganlab report` draws from the files."""
    run = tiny_run("wgan-gp", 3)
    written = (run / "report.html").read_text()
    assert len(images(written)) >= 3
    assert written == build_report(run)
