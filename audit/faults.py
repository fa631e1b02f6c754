"""Fault pass: break training runs in every way we can think of, then check nothing was lost.

Each fault hits a real `python -m wganlab train --resume` process that continues a short run
(wgan-gp, tiny networks, synthetic data) from step 6 to step 24. After the fault the run is
resumed once more, without faults, and must then equal a run that never stopped: every
metrics row and the final training state bit for bit, every checkpoint loadable, no stray
temporary file, nothing set aside as damaged unless the fault damaged it.

The faults are injected from outside the program, so they do not depend on how it is written:
strace kills the process at the Nth write, rename or fsync system call (N drawn over the whole
run) or makes a system call fail; real signals; a real tmpfs that fills up or is mounted
read-only; a second writer; a rank of a torchrun job killed. Needs root (mount) and strace.

    python audit/faults.py [--out DIR] [--seed 0]

Prints one line per fault and a tally; writes DIR/faults.json.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from wganlab.base import checkpoint
from wganlab.generate import load_generator

START, END = 6, 24  # the run is copied at START steps; every fault run aims at END
TINY = ["--preset", "wgan-gp", "--dataset", "synthetic", "--batch-size", "16", "--g-filters",
        "8", "--c-filters", "4", "--image-shape", "1,8,8", "--z-dim", "8", "--no-progress",
        "--log-every", "1", "--checkpoint-every", "3", "--keep-last", "2"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def train(run: Path, steps: int = END, *extra: str, resume: bool = True) -> list[str]:
    return [sys.executable, "-m", "wganlab", "train", *TINY, "--out", str(run), "--steps",
            str(steps), *(["--resume"] if resume else []), *extra]


def strace(argv: list[str], calls: str, action: str) -> list[str]:
    """argv under strace, `action` (e.g. signal=KILL:when=7) on the given system calls."""
    return ["strace", "-f", "-qq", "-o", "/dev/null", "-e", f"trace={calls}",
            "-e", f"inject={calls}:{action}", *argv]


def default_sigint() -> None:
    """SIGINT, SIGTERM and SIGHUP as from a terminal, even if this pass was started in the
    background or under nohup (which ignore SIGINT or SIGHUP, and children inherit that)."""
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)


def run(argv: list[str], timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(argv, env=ENV, capture_output=True, text=True, timeout=timeout,
                          preexec_fn=default_sigint)


def spawn(argv: list[str]) -> subprocess.Popen:
    return subprocess.Popen(argv, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, preexec_fn=default_sigint)


def rows(run_dir: Path) -> list[dict]:
    """The per-step training rows, without wall time; a cut last line is skipped."""
    out = []
    path = run_dir / "metrics.jsonl"
    for line in path.read_text().splitlines() if path.exists() else []:
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if "g_loss" in row:
            out.append({k: v for k, v in row.items() if k != "time"})
    return out


def logged(run_dir: Path) -> int:
    path = run_dir / "metrics.jsonl"
    return path.read_text().count('"g_loss"') if path.exists() else 0


def wait_rows(run_dir: Path, proc: subprocess.Popen, at_least: int, limit: float = 300):
    deadline = time.monotonic() + limit
    while logged(run_dir) < at_least and proc.poll() is None:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{run_dir}: fewer than {at_least} rows after {limit} s")
        time.sleep(0.02)


def count_calls(argv: list[str], calls: str) -> int:
    """How many of these system calls a whole fault-free run makes (strace -c)."""
    out = run(["strace", "-f", "-c", "-qq", "-e", f"trace={calls}", "-o", "/dev/stdout",
               *argv])
    total = 0
    for line in out.stdout.splitlines():
        parts = line.split()
        if len(parts) >= 5 and parts[-1] in calls.split(",") and parts[3].isdigit():
            total += int(parts[3])
    return total


@dataclass
class Outcome:
    name: str
    rc: int | None
    problems: list[str] = field(default_factory=list)
    note: str = ""


class Pass:
    def __init__(self, out: Path, seed: int):
        self.out, self.rng = out, random.Random(seed)
        self.base, self.ref = out / "base", out / "reference"
        self.results: list[Outcome] = []

    # -- the two runs every fault is measured against --------------------------------------
    def prepare(self) -> None:
        for path, steps in ((self.base, START), (self.ref, END)):
            if not (path / "config.json").exists():
                done = run(train(path, steps, resume=False))
                assert done.returncode == 0, done.stderr
        self.want_rows = rows(self.ref)
        self.want_state = checkpoint.load(checkpoint.checkpoint_path(self.ref, END))

    def fresh(self, name: str, where: Path | None = None) -> Path:
        target = (where or self.out) / name
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(self.base, target)
        (target / ".lock").unlink(missing_ok=True)
        return target

    # -- what must hold after a fault, and after one more fault-free resume -----------------
    def check_after_fault(self, run_dir: Path, done, expect_codes, problems) -> None:
        err = done.stderr if done is not None else ""
        if done is not None and (done.returncode == 0 if expect_codes == "non-zero" else
                                 expect_codes and done.returncode not in expect_codes):
            problems.append(f"exit {done.returncode}, expected {expect_codes}: "
                            f"{err.strip().splitlines()[-1:] }")
        if "Traceback" in err:
            problems.append("traceback: " + err.strip().splitlines()[-1])
        for path in checkpoint.list_checkpoints(run_dir):
            try:
                checkpoint.load(path)
            except Exception as e:  # noqa: BLE001  any failure is the finding
                problems.append(f"unloadable {path.name}: {e}")
        got = rows(run_dir)
        steps = [r["step"] for r in got]
        if steps != list(range(1, len(steps) + 1)):
            problems.append(f"metrics rows not 1..n after the fault: {steps[:3]}..{steps[-3:]}")
        if len(got) < START:
            problems.append(f"rows lost: {len(got)} < {START} before the fault ended")

    def check_recovered(self, run_dir: Path, problems, damaged_ok: bool = False) -> None:
        done = run(train(run_dir))
        if done.returncode != 0:
            problems.append(f"recovery resume exit {done.returncode}: "
                            f"{done.stderr.strip().splitlines()[-1:]}")
            return
        got = rows(run_dir)
        if got != self.want_rows:
            first = next((i for i, (a, b) in enumerate(zip(got, self.want_rows)) if a != b),
                         min(len(got), len(self.want_rows)))
            problems.append(f"rows differ from the straight run from row {first + 1} "
                            f"({len(got)} vs {len(self.want_rows)} rows)")
        state = checkpoint.load(checkpoint.checkpoint_path(run_dir, END))
        if not same(state, self.want_state):
            problems.append("final state differs from the straight run")
        stray = [p.name for p in run_dir.rglob("*.tmp")]
        if stray:
            problems.append(f"temporary files left: {stray}")
        if (run_dir / "checkpoints" / "damaged").exists() and not damaged_ok:
            problems.append("a checkpoint was set aside as damaged")

    def record(self, name: str, rc, problems, note: str = "") -> None:
        outcome = Outcome(name, rc, problems, note)
        self.results.append(outcome)
        mark = "survived" if not problems else "LOST/DEFECT"
        print(f"{mark:11} {name:48} rc={rc} {note} {'; '.join(problems)}", flush=True)

    # -- faults ------------------------------------------------------------------------------
    def kill_at_call(self, calls: str, n: int) -> None:
        name = f"SIGKILL at {calls.split(',')[0]} #{n}"
        run_dir = self.fresh(re.sub(r"\W+", "-", name))
        done = run(strace(train(run_dir), calls, f"signal=KILL:when={n}"))
        problems: list[str] = []
        self.check_after_fault(run_dir, done, {-9, 137}, problems)
        note = f"killed after step {logged(run_dir)}"
        self.check_recovered(run_dir, problems)
        self.record(name, done.returncode, problems, note)

    def fail_call(self, calls: str, errno_name: str, n: int) -> None:
        """From the Nth call on, the system call fails (as on a disk that became full)."""
        name = f"{errno_name} from {calls.split(',')[0]} #{n} on"
        run_dir = self.fresh(re.sub(r"\W+", "-", name))
        done = run(strace(train(run_dir), calls, f"error={errno_name}:when={n}+"))
        problems: list[str] = []
        # Writes to the terminal fail too, so the message may not be seen; the exit code is.
        self.check_after_fault(run_dir, done, "non-zero", problems)
        note = f"stopped after step {logged(run_dir)}"
        self.check_recovered(run_dir, problems)
        self.record(name, done.returncode, problems, note)

    def signal_after(self, sig: signal.Signals, rows_first: int, second: bool = False,
                     expect=frozenset(), delay: float = 1.0) -> None:
        name = f"{sig.name}{' twice' if second else ''} after " + (
            f"{rows_first} rows" if rows_first else f"{delay} s (starting)")
        run_dir = self.fresh(re.sub(r"\W+", "-", name))
        proc = spawn(train(run_dir))
        if rows_first:
            wait_rows(run_dir, proc, rows_first)
        else:
            time.sleep(delay)  # during start-up: imports, data, networks
        proc.send_signal(sig)
        if second:
            time.sleep(0.3)
            proc.send_signal(sig)
        out, err = proc.communicate(timeout=300)
        done = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
        problems: list[str] = []
        self.check_after_fault(run_dir, done, set(expect), problems)
        note = f"stopped after step {logged(run_dir)}"
        self.check_recovered(run_dir, problems)
        self.record(name, done.returncode, problems, note)

    def pause(self) -> None:
        run_dir = self.fresh("SIGSTOP-SIGCONT")
        proc = spawn(train(run_dir))
        wait_rows(run_dir, proc, START + 4)
        proc.send_signal(signal.SIGSTOP)
        time.sleep(2)
        proc.send_signal(signal.SIGCONT)
        out, err = proc.communicate(timeout=300)
        problems: list[str] = []
        done = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
        self.check_after_fault(run_dir, done, {0}, problems)
        self.check_recovered(run_dir, problems)
        self.record("SIGSTOP 2 s then SIGCONT", proc.returncode, problems)

    def full_disk(self, size_kib: int, fill_after: int | None) -> None:
        """The run on a tmpfs of size_kib; with fill_after, a filler takes all free space
        once that many rows are logged (another program filling the disk)."""
        name = f"full disk {size_kib} KiB" + (f", filled after {fill_after} rows"
                                              if fill_after else "")
        mount = self.out / re.sub(r"\W+", "-", name)
        with tmpfs(mount, size_kib):
            try:
                run_dir = self.fresh("run", where=mount)
            except OSError:
                self.record(name, None, [], "the copied run did not fit: skipped")
                return
            proc = spawn(train(run_dir))
            if fill_after:
                wait_rows(run_dir, proc, fill_after)
                fill(mount / "filler")
            out, err = proc.communicate(timeout=300)
            done = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
            problems: list[str] = []
            self.check_after_fault(run_dir, done, "non-zero", problems)
            lines = err.strip().splitlines()
            if not lines or not re.search(r"No space left|could not write", lines[-1]):
                problems.append(f"no one-line disk error: {lines[-1:]}")
            elif str(mount) not in lines[-1]:
                problems.append(f"error does not name the path: {lines[-1]}")
            note = f"stopped after step {logged(run_dir)}: {lines[-1][:70] if lines else ''}"
            moved = self.out / (mount.name + "-recovered")
            shutil.rmtree(moved, ignore_errors=True)
            shutil.copytree(run_dir, moved)  # the same files, now with room to finish
        (moved / ".lock").unlink(missing_ok=True)
        self.check_recovered(moved, problems)
        self.record(name, done.returncode, problems, note)

    def read_only(self) -> None:
        mount = self.out / "read-only"
        with tmpfs(mount, 4096):
            run_dir = self.fresh("run", where=mount)
            before = snapshot(run_dir)
            subprocess.run(["mount", "-o", "remount,ro", str(mount)], check=True)
            done = run(train(run_dir))
            problems: list[str] = []
            lines = done.stderr.strip().splitlines()
            if done.returncode == 0 or "Traceback" in done.stderr or len(lines) != 1:
                problems.append(f"exit {done.returncode}, stderr {lines[-2:]}")
            if snapshot(run_dir) != before:
                problems.append("files changed")
            note = lines[-1][:80] if lines else ""
        self.record("read-only file system", done.returncode, problems, note)

    def two_writers(self) -> None:
        run_dir = self.fresh("two-writers")
        first = spawn(train(run_dir))
        wait_rows(run_dir, first, START + 1)
        second = run(train(run_dir))
        out, err = first.communicate(timeout=300)
        problems: list[str] = []
        lines = second.stderr.strip().splitlines()
        if second.returncode == 0 or len(lines) != 1 or str(first.pid) not in lines[0]:
            problems.append(f"second writer: exit {second.returncode}, {lines[-2:]}")
        if first.returncode != 0:
            problems.append(f"first writer exit {first.returncode}: {err.splitlines()[-1:]}")
        self.check_recovered(run_dir, problems)
        self.record("second writer while the first runs", second.returncode, problems,
                    lines[0][:80] if lines else "")

    def damaged(self, how: str) -> None:
        run_dir = self.fresh(f"damaged-{how}")
        newest = checkpoint.list_checkpoints(run_dir)[0]
        data = bytearray(newest.read_bytes())
        if how == "truncated":
            data = data[: len(data) // 2]
        else:  # bytes flipped inside the pickle's archive member
            for i in range(len(data) // 3, len(data) // 3 + 64):
                data[i] ^= 0xFF
        newest.write_bytes(bytes(data))
        done = run(train(run_dir))
        problems: list[str] = []
        if done.returncode != 0 or "damaged" not in done.stderr:
            problems.append(f"exit {done.returncode}, no note of the damage: "
                            f"{done.stderr.strip().splitlines()[-1:]}")
        aside = run_dir / "checkpoints" / "damaged"
        if not (aside / newest.name).exists():
            problems.append("the damaged checkpoint was not kept")
        self.check_recovered(run_dir, problems, damaged_ok=True)
        self.record(f"newest checkpoint {how}", done.returncode, problems)

    def export_argv(self, out: Path) -> list[str]:
        return [sys.executable, "-m", "wganlab", "export", str(self.ref), "--out", str(out)]

    def export_killed(self, n: int) -> None:
        out = self.out / f"export-{n}.safetensors"
        out.write_bytes(b"the user's earlier file")
        argv = self.export_argv(out)
        done = run(strace(argv, "write", f"signal=KILL:when={n}"))
        problems = []
        if out.read_bytes() != b"the user's earlier file":  # then it must be the whole export
            try:
                load_generator(out)
            except Exception as e:  # noqa: BLE001
                problems.append(f"the earlier file was replaced by a broken one: {e}")
        note = "earlier file kept" if out.read_bytes().startswith(b"the user") else "finished"
        self.record(f"export killed at write #{n}", done.returncode, problems, note)

    def rank_killed(self) -> None:
        run_dir = self.out / "two-ranks"
        shutil.rmtree(run_dir, ignore_errors=True)
        argv = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
                "--master-port", str(free_port()), "-m", "wganlab", "train", *TINY,
                "--device", "cpu", "--steps", "100000", "--out", str(run_dir)]
        launcher = spawn(argv)
        wait_rows(run_dir, launcher, 5)
        worker = rank_pid(launcher, 1)
        os.kill(worker, signal.SIGKILL)
        killed = time.monotonic()
        problems: list[str] = []
        try:
            launcher.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            launcher.kill()
            problems.append("the other rank did not stop within 60 s")
        took = time.monotonic() - killed
        if launcher.returncode == 0:
            problems.append("launcher exit 0")
        for path in checkpoint.list_checkpoints(run_dir):
            try:
                checkpoint.load(path)
            except Exception as e:  # noqa: BLE001
                problems.append(f"unloadable {path.name}: {e}")
        steps = [r["step"] for r in rows(run_dir)]
        if steps != list(range(1, len(steps) + 1)):
            problems.append("metrics rows not 1..n")
        last = checkpoint.list_checkpoints(run_dir)[0]
        target = checkpoint.load(last)["step"] + 3
        done = run(train(run_dir, target, "--device", "cpu"))
        if done.returncode != 0:
            problems.append(f"resume in one process: exit {done.returncode}")
        self.record("torchrun: rank 1 SIGKILLed", launcher.returncode, problems,
                    f"all ranks ended {took:.1f} s later")


def same(a, b) -> bool:
    if isinstance(b, torch.Tensor):
        return isinstance(a, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(b, dict):
        keys = b.keys() - {"elapsed", "config", "version"}
        return a.keys() - {"elapsed", "config", "version"} == keys and all(
            same(a[k], b[k]) for k in keys)
    if isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return a == b


def snapshot(folder: Path) -> dict:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


class tmpfs:  # noqa: N801  used as a context manager
    def __init__(self, mount: Path, size_kib: int):
        self.mount, self.size = mount, size_kib

    def __enter__(self):
        self.mount.mkdir(parents=True, exist_ok=True)
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={self.size}k", "tmpfs",
                        str(self.mount)], check=True)
        return self.mount

    def __exit__(self, *exc):
        subprocess.run(["umount", "-l", str(self.mount)], check=False)


def fill(path: Path) -> None:
    try:
        with open(path, "wb") as f:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
    except OSError:
        pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rank_pid(launcher: subprocess.Popen, rank: int) -> int:
    for pid in subprocess.run(["pgrep", "-P", str(launcher.pid)], capture_output=True,
                              text=True).stdout.split():
        if f"RANK={rank}".encode() in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0"):
            return int(pid)
    raise RuntimeError(f"no rank {rank} under {launcher.pid}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("/tmp/wganlab-faults"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    audit = Pass(args.out, args.seed)
    audit.prepare()

    writes = count_calls(train(audit.fresh("count")), "write")
    renames = count_calls(train(audit.fresh("count")), "rename")
    fsyncs = count_calls(train(audit.fresh("count")), "fsync")
    exports = count_calls(audit.export_argv(args.out / "count.safetensors"), "write")
    print(f"a fault-free resume {START}->{END} makes {writes} writes, {renames} renames, "
          f"{fsyncs} fsyncs; an export {exports} writes", flush=True)
    pick = audit.rng.sample
    faults = (
        # Every write of the start-up (lock, config, the metrics rewrite), then any.
        [lambda n=n: audit.kill_at_call("write", n)
         for n in sorted({*range(1, 9), *pick(range(9, writes + 1), 8)})]
        + [lambda n=n: audit.kill_at_call("rename", n)
           for n in sorted(pick(range(1, renames + 1), min(4, renames)))]
        + [lambda n=n: audit.kill_at_call("fsync", n)
           for n in sorted(pick(range(1, fsyncs + 1), min(3, fsyncs)))]
        + [lambda n=n: audit.fail_call("write", "ENOSPC", n)
           for n in sorted({1, 4, *pick(range(5, writes + 1), 3)})]
        + [lambda: audit.fail_call("fsync", "EIO", 1)]
        + [lambda: audit.signal_after(signal.SIGINT, START + 3, expect={130}),
           lambda: audit.signal_after(signal.SIGTERM, START + 5, expect={143}),
           lambda: audit.signal_after(signal.SIGINT, START + 8, second=True, expect={130}),
           lambda: audit.signal_after(signal.SIGHUP, START + 2, expect={129}),
           *[lambda d=d: audit.signal_after(signal.SIGINT, 0, expect={130}, delay=d)
             for d in (0.3, 1.0, 2.0)],
           audit.pause]
        + [lambda: audit.full_disk(560, None), lambda: audit.full_disk(8192, START + 4),
           lambda: audit.full_disk(8192, START + 13), audit.read_only]
        + [audit.two_writers, lambda: audit.damaged("truncated"),
           lambda: audit.damaged("flipped")]
        + [lambda n=n: audit.export_killed(n) for n in sorted(pick(range(1, exports + 1), 2))]
        + [audit.rank_killed]
    )
    for fault in faults:
        try:
            fault()
        except Exception as e:  # noqa: BLE001  the pass goes on; the fault counts as lost
            audit.record(getattr(fault, "__name__", "fault"), None, [f"harness: {e!r}"])
    lost = [r for r in audit.results if r.problems]
    print(json.dumps({"faults": len(audit.results), "survived": len(audit.results) - len(lost),
                      "with_loss_or_defect": len(lost)}))
    (args.out / "faults.json").write_text(json.dumps(
        [r.__dict__ for r in audit.results], indent=2))
    return 1 if lost else 0


if __name__ == "__main__":
    sys.exit(main())
