"""Image arrays ↔ model tensors: uint8 (B, H, W, C) as stored and shown, float (B, C, H, W) in [0, 1]
for the networks."""
from __future__ import annotations

import numpy as np
import torch


def to_tensor(images_u8: np.ndarray, device) -> torch.Tensor:
    """uint8 (B, H, W, C) → float (B, C, H, W) in [0, 1]."""
    return torch.from_numpy(images_u8).to(device).permute(0, 3, 1, 2).float().div_(255.0)
