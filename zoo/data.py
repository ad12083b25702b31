"""Fashion-MNIST from the IDX gzip files, with the standard library and NumPy only.

No torchvision download: the files come from Debian's `dataset-fashion-mnist`
(/usr/share/datasets/fashion-mnist) or any folder holding the four standard files.
"""
import gzip
import os
import struct

import numpy as np

DEFAULT_DIR = "/usr/share/datasets/fashion-mnist"

FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}

# IDX type codes (only unsigned bytes are used by (Fashion-)MNIST).
_IDX_UBYTE = 0x08


def read_idx(path):
    """Reads one IDX file (gzip or plain) into a uint8 array of the shape in its header."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4:
        raise ValueError(f"[zoo.data] {path}: truncated IDX header ({len(raw)} bytes)")
    zero, dtype, ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0 or dtype != _IDX_UBYTE or ndim < 1:
        raise ValueError(f"[zoo.data] {path}: not an unsigned-byte IDX file "
                         f"(magic {zero:#x}, type {dtype:#x}, ndim {ndim})")
    header = 4 + 4 * ndim
    dims = struct.unpack(">" + "I" * ndim, raw[4:header])
    count = int(np.prod(dims))
    if len(raw) - header != count:
        raise ValueError(f"[zoo.data] {path}: expected {count} data bytes for shape {dims}, "
                         f"found {len(raw) - header}")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


def load_split(split, data_dir=DEFAULT_DIR):
    """Returns (images uint8 [N,28,28], labels int64 [N]) of 'train' or 'test'."""
    img_name, lbl_name = FILES[split]
    images = read_idx(os.path.join(data_dir, img_name))
    labels = read_idx(os.path.join(data_dir, lbl_name)).astype(np.int64)
    if images.ndim != 3 or labels.ndim != 1 or images.shape[0] != labels.shape[0]:
        raise ValueError(f"[zoo.data] {split}: images {images.shape} and labels {labels.shape} "
                         "do not match")
    if labels.min() < 0 or labels.max() > 9:
        raise ValueError(f"[zoo.data] {split}: labels outside 0..9")
    return images, labels


def normalisation(train_images):
    """Mean and std of the training pixels scaled to [0, 1] (recorded in every model file)."""
    x = train_images.astype(np.float64) / 255.0
    return float(x.mean()), float(x.std())


def to_float(images, mean, std):
    """uint8 [N,H,W] -> float32 [N,1,H,W]: x = (pixel/255 - mean)/std."""
    x = images.astype(np.float32) / np.float32(255.0)
    x = (x - np.float32(mean)) / np.float32(std)
    return x[:, None, :, :]
