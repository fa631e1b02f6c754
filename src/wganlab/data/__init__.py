"""The data layer: named data sets (MNIST, Fashion-MNIST, CIFAR-10, synthetic, image folders)
as uint8 tensors, plus the scaling and latent sampling every model shares.

    idx.py       strict IDX reader/writer (MNIST, Fashion-MNIST)
    download.py  mirrors, SHA-256 verification, atomic writes
    sources.py   where files are looked for, in order, and the known hashes
    cifar.py     CIFAR-10 binary records, read from the tar by an allowlist
    folder.py    PNG/JPEG folders, resized and centre-cropped, bad files listed
    synthetic.py a tiny generated data set for tests and smoke runs
    tensors.py   Dataset, to_float, sample_z, resizing and channel conversion
    load.py      load_dataset and native_shape
"""

from .idx import read_idx, write_idx
from .load import load_dataset, native_shape
from .tensors import Dataset, sample_z, to_float

__all__ = ["Dataset", "load_dataset", "native_shape", "read_idx", "sample_z", "to_float",
           "write_idx"]
