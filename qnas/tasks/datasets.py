"""Image data sets as 4x4 feature maps: bundled digits, and MNIST/Fashion-MNIST from local files.

MNIST and Fashion-MNIST are read from the user's own copy (IDX files as distributed, or an
npz with x_train/y_train/x_test/y_test); qnas never downloads them at run time.
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

_IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
_NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")
_URLS = {
    "mnist": "https://yann.lecun.com/exdb/mnist/ (or any mirror; keras.datasets.mnist saves mnist.npz)",
    "fashion": "https://github.com/zalandoresearch/fashion-mnist (data/fashion)",
}


def data_dir(name: str) -> Path:
    """Where the files of data set `name` are looked for: $QNAS_DATA/name, default ~/.qnas/data/name."""
    return Path(os.environ.get("QNAS_DATA", Path.home() / ".qnas" / "data")) / name


def _read_idx(path: Path) -> np.ndarray:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        raw = f.read()
    ndim = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def _find(directory: Path, stem: str) -> Path | None:
    for candidate in (directory / stem, directory / f"{stem}.gz"):
        if candidate.exists():
            return candidate
    return None


def load_image_set(name: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Return {"train": (images, labels), "test": (images, labels)} of MNIST or Fashion-MNIST (28x28 uint8)."""
    directory = data_dir(name)
    npz = directory / f"{name}.npz"
    if npz.exists():
        with np.load(npz) as f:
            missing = [key for key in _NPZ_KEYS if key not in f.files]
            if missing:
                raise ValueError(
                    f"{npz} lacks {', '.join(missing)} (it holds {', '.join(f.files) or 'nothing'}); "
                    f"an npz of {name} needs the arrays {', '.join(_NPZ_KEYS)}"
                )
            return {"train": (f["x_train"], f["y_train"]), "test": (f["x_test"], f["y_test"])}
    out = {}
    for split, (images, labels) in _IDX_FILES.items():
        img, lab = _find(directory, images), _find(directory, labels)
        if img is None or lab is None:
            raise FileNotFoundError(
                f"{name}: no {images}[.gz]/{labels}[.gz] or {name}.npz in {directory}; download the IDX files "
                f"from {_URLS[name]} into that folder, or set QNAS_DATA to the folder holding {name}/"
            )
        out[split] = (_read_idx(img), _read_idx(lab))
    return out


def pool_to_4x4(images: np.ndarray, crop: int | None = None) -> np.ndarray:
    """Average-pool square images down to 4x4 (after a center crop), flattened to 16 features in [0, 1]."""
    return pool_images(images, 4, crop)


def pool_images(images: np.ndarray, size: int, crop: int | None = None) -> np.ndarray:
    """Average-pool square images down to size x size (after a center crop), flattened, in [0, 1]."""
    x = torch.as_tensor(images, dtype=torch.float32)
    if crop is not None:
        start = (x.shape[-1] - crop) // 2
        x = x[..., start : start + crop, start : start + crop]
    x = x / x.amax()
    pooled = F.adaptive_avg_pool2d(x[:, None], size)
    return pooled.reshape(len(x), size * size).numpy()


def load_digits_4x4() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's bundled 8x8 digits averaged down to 4x4: (features (n, 16) in [0, 1], labels)."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    return pool_to_4x4(digits.images), digits.target


def load_digits_8x8() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's bundled digits at their own 8x8: (features (n, 64) in [0, 1], labels)."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    return digits.images.reshape(len(digits.images), 64) / 16.0, digits.target
