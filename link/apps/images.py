"""The images an experiment sends: image files and folders given by the user, test images of a dataset, or
scikit-image's sample photographs."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from jscec.errors import UserError

#: scikit-image sample photographs sent by default (coded fully convolutionally at their own size).
SAMPLE_PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "motorcycle_left")
#: Images sent when the user does not say how many (photographs, dataset).
DEFAULT_COUNT = 3
#: File name endings read from a folder given with ``--input``.
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".gif")


def load_images(data: str | None, count: int | None, split_seed: int = 0,
                inputs: list | None = None) -> tuple[list[np.ndarray], str]:
    """uint8 (H, W, 3) images and a description of where they came from.

    ``inputs``: image files and folders (every image in them, in name order; ``count`` caps them);
    else ``data`` None: the sample photographs; else a dataset path (as ``jscec train --data``), whose
    seeded test split supplies the first ``count`` images. ``count`` None: every input, else 3.
    """
    if count is not None and count < 1:
        raise UserError("--images must be at least 1")
    if inputs:
        if data is not None:
            raise UserError("give --input (your image files and folders) or --data (a dataset), not both")
        images, names = read_image_files(inputs)
        if count is not None:
            images, names = images[:count], names[:count]
        shown = ", ".join(names[:4]) + (f", … ({len(names)} files)" if len(names) > 4 else "")
        return images, f"files: {shown}"
    count = DEFAULT_COUNT if count is None else count
    if data is None:
        from skimage import data as skdata

        if count > len(SAMPLE_PHOTOS):
            raise UserError(f"only {len(SAMPLE_PHOTOS)} sample photographs; use --input or --data for more images")
        names = SAMPLE_PHOTOS[:count]
        return [np.ascontiguousarray(getattr(skdata, n)()[..., :3]) for n in names], "scikit-image: " + ", ".join(names)
    from models.datasets import load_dataset, split_indices

    ds = load_dataset(None if data == "default" else data)
    test = split_indices(len(ds.images), seed=split_seed)["test"][:count]
    images = ds.images[test]
    if images.shape[-1] == 1:
        images = np.repeat(images, 3, axis=-1)
    return [np.ascontiguousarray(im) for im in images], f"{ds.name} test split, first {len(test)}"


def read_image_files(paths) -> tuple[list[np.ndarray], list[str]]:
    """Every image of ``paths`` (files, and the image files directly inside folders, in name order) as uint8
    RGB; ``UserError`` naming a path that is missing, an empty folder, or a file that is not an image."""
    from PIL import Image, UnidentifiedImageError

    files = []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(f for f in p.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                raise UserError(f"no image files ({', '.join(IMAGE_SUFFIXES)}) in folder {p}")
            files += found
        elif p.is_file():
            files.append(p)
        else:
            raise UserError(f"--input {p}: no such file or folder")
    images = []
    for f in files:
        try:
            with Image.open(f) as im:
                images.append(np.ascontiguousarray(np.asarray(im.convert("RGB"), dtype=np.uint8)))
        except (UnidentifiedImageError, OSError) as exc:
            raise UserError(f"--input {f}: not an image Pillow can read ({type(exc).__name__})") from None
    return images, [f.name for f in files]
