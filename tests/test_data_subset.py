"""--max-images: a class-balanced subset drawn by seed, the same every time, the rest held
out; and the report's panels for the overfitting heuristic and p."""

import io

import torch
from PIL import Image

from wganlab.data import Dataset
from wganlab.data.subset import balanced_indices, take_subset
from wganlab.reporting.figures import health_png


def test_the_subset_is_balanced_and_fixed_by_the_seed():
    labels = torch.arange(1000) % 10
    labels[labels == 3] = 4  # class 3 empty, class 4 doubled: 9 classes
    a = balanced_indices(labels, 95, 1000, seed=1)
    counts = torch.bincount(labels[a], minlength=10)
    assert len(a) == 95 and len(a.unique()) == 95
    # 95 = 9 x 10 + 5: five classes get 11, four get 10, the empty one none.
    assert sorted(counts.tolist()) == [0] + [10] * 4 + [11] * 5
    assert torch.equal(a, balanced_indices(labels, 95, 1000, seed=1))
    assert not torch.equal(a, balanced_indices(labels, 95, 1000, seed=2))
    # A class too small for its share gives what it has; the others make up the count.
    small = torch.tensor([0] * 2 + [1] * 50)
    assert torch.bincount(small[balanced_indices(small, 20, 52, 0)]).tolist() == [2, 18]


def test_take_subset_holds_out_the_rest():
    images = torch.arange(40, dtype=torch.uint8).view(40, 1, 1, 1)
    data = Dataset(images, torch.arange(40) % 4, "x", "train", "here", 4, tuple("abcd"))
    subset, heldout = take_subset(data, 8, seed=0)
    assert subset.class_names == heldout.class_names == tuple("abcd")
    assert len(subset) == 8 and torch.bincount(subset.labels).tolist() == [2, 2, 2, 2]
    assert sorted(subset.images.flatten().tolist() + heldout.images.flatten().tolist()
                  ) == list(range(40))
    # Each held-out image keeps its own label (a conditional critic scores them with it).
    assert torch.equal(heldout.labels, heldout.images.flatten().long() % 4)
    unlabelled = Dataset(images, None, "x", "train", "here", None)
    assert len(take_subset(unlabelled, 8, seed=0)[0]) == 8


def test_the_report_plots_the_heuristic_and_p():
    rows = [{"step": s, "g_loss": 0.0, "d_loss": 0.0, "wasserstein": 1.0} for s in range(50)]
    plain = Image.open(io.BytesIO(health_png(rows, [], 56.0))).size
    for r in rows[::10]:
        r.update(overfit=0.4, augment_p=0.2)
    with_both = Image.open(io.BytesIO(health_png(rows, [], 56.0))).size
    assert with_both[1] > 2.5 * plain[1]  # one panel became three
