"""The images an experiment sends: scikit-image's sample photographs, or test images of a dataset."""
from __future__ import annotations

import numpy as np

from jscec.errors import UserError

#: scikit-image sample photographs sent by default (coded fully convolutionally at their own size).
SAMPLE_PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "motorcycle_left")


def load_images(data: str | None, count: int, split_seed: int = 0) -> tuple[list[np.ndarray], str]:
    """``count`` uint8 (H, W, 3) images and a description of where they came from.

    ``data`` None: the sample photographs; otherwise a dataset path (as ``jscec train --data``), whose
    seeded test split supplies the first ``count`` images.
    """
    if count < 1:
        raise UserError("--images must be at least 1")
    if data is None:
        from skimage import data as skdata

        if count > len(SAMPLE_PHOTOS):
            raise UserError(f"only {len(SAMPLE_PHOTOS)} sample photographs; use --data for more images")
        names = SAMPLE_PHOTOS[:count]
        return [np.ascontiguousarray(getattr(skdata, n)()[..., :3]) for n in names], "scikit-image: " + ", ".join(names)
    from models.datasets import load_dataset, split_indices

    ds = load_dataset(None if data == "default" else data)
    test = split_indices(len(ds.images), seed=split_seed)["test"][:count]
    images = ds.images[test]
    if images.shape[-1] == 1:
        images = np.repeat(images, 3, axis=-1)
    return [np.ascontiguousarray(im) for im in images], f"{ds.name} test split, first {len(test)}"
