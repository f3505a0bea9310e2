"""Data sets for vaekit: named ones (Fashion-MNIST, MNIST, digits), image folders and NumPy files.

Everything loads into a :class:`Dataset` of three :class:`Split` parts holding float32 arrays in
[0, 1], shaped ``(N, C, H, W)`` for images or ``(N, D)`` for vectors. Modules:

* ``dataset`` -- the containers; ``splits`` -- seeded train/val/test splits;
* ``idx`` -- the IDX file format; ``sources`` -- where IDX files are found; ``download`` -- fetching;
* ``builtin`` -- the registry of named data sets; ``arrays`` -- .npy/.npz; ``folder`` -- image folders;
* ``loading`` -- :func:`load_dataset` and :func:`list_datasets`.
"""
from vaekit.data.dataset import Dataset, DatasetInfo, Split
from vaekit.data.loading import dataset_names, list_datasets, load_dataset

__all__ = ["Dataset", "DatasetInfo", "Split", "dataset_names", "list_datasets", "load_dataset"]
