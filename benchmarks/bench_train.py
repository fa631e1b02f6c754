"""Time the training step against a plain eager PyTorch step: `python benchmarks/bench_train.py`.

The same as `wganlab bench`; every flag is its (see `wganlab bench --help`). For example:

    python benchmarks/bench_train.py --devices cpu --batch-sizes 128 --repeats 2 --steps 1 \
        --json benchmarks/results-cpu.json --markdown benchmarks/RESULTS.md
"""

import sys

from wganlab.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", *sys.argv[1:]]))
