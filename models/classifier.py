"""Remote classification networks of the paper's Table IV (Sec. V-B).

Alice's encoder f_θ (the edge device, small) maps an image to the same kind of latent as the image
model (quantised to the N centroids, encrypted, sent over 4096-QAM); Bob's decoder g_φ (the server,
larger) maps the decrypted features to class scores:

    f_θ:  RB s2 (w) → RB (w) → Attention (w) → RB s2 (w) → RB (w) → Attention (C_out)
    g_φ:  RB (d) → RB (2d) → Attention (2d) → RB (2d) → RB s2 (4d) → RB (8d) → RB (8d) →
          Attention (8d) → average pooling (4×4) → Linear (8d) → LeakyReLU → Linear (classes)

with Table IV's w = d = 256 (``paper``). The softmax sits in the cross-entropy loss (eq. 30).
The *feature compression network* of the learned digital baseline has the same layers except that
the encoder's last attention block keeps w channels instead of C_out (Table IV, right).

Eve's classifier has the architecture of Bob's decoder and reads the soft ciphertext ĉ as (cos, sin)
on the circle of Z_p, like her image decoder.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from crypto.zp import P
from models.networks import AttentionBlock, ResidualBlock, ResidualBlockDown, pad_to_multiple

#: Named (encoder width w, decoder base width d). ``paper`` is Table IV; ``small`` trains on 2 CPU
#: cores in about two hours and keeps the bundled checkpoints small; ``tiny`` is for tests.
CLASSIFIER_WIDTHS = {"paper": (256, 256), "small": (32, 16), "tiny": (8, 4)}
#: Spatial downsampling of the classification encoder (two stride-2 blocks).
CLASSIFIER_DOWNSAMPLING = 4


def classification_encoder(cin: int, width: int, cout: int) -> nn.Sequential:
    """f_θ of Table IV (left column); ``cout`` = C_out, or ``width`` for the feature compression network."""
    w = width
    return nn.Sequential(ResidualBlockDown(cin, w), ResidualBlock(w, w), AttentionBlock(w, w),
                         ResidualBlockDown(w, w), ResidualBlock(w, w), AttentionBlock(w, cout))


class ClassificationDecoder(nn.Module):
    """g_φ of Table IV: features (B, C_in, h, w) → class logits (B, classes)."""

    def __init__(self, cin: int, base: int, num_classes: int = 10):
        super().__init__()
        d = base
        self.features = nn.Sequential(
            ResidualBlock(cin, d), ResidualBlock(d, 2 * d), AttentionBlock(2 * d, 2 * d), ResidualBlock(2 * d, 2 * d),
            ResidualBlockDown(2 * d, 4 * d), ResidualBlock(4 * d, 8 * d), ResidualBlock(8 * d, 8 * d),
            AttentionBlock(8 * d, 8 * d))
        # Table IV's 4×4 average pooling covers the whole 4×4 map of a 32×32 image; adaptive pooling
        # does the same for any input size.
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Sequential(nn.Linear(8 * d, 8 * d), nn.LeakyReLU(inplace=True), nn.Linear(8 * d, num_classes))

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        return self.head(self.pool(self.features(feats)).flatten(1))


def circle_of_zp(c: torch.Tensor, latent_shape) -> torch.Tensor:
    """Values in Z_p (B, k) → (cos, sin) features (B, 2C, h, w), two channels per latent channel."""
    angle = c.float().reshape(c.shape[0], *latent_shape) * (2 * math.pi / P)
    feats = torch.stack([torch.cos(angle), torch.sin(angle)], dim=2)
    b, ch, two, h, w = feats.shape
    return feats.reshape(b, ch * two, h, w)


def pad_image(x: torch.Tensor) -> torch.Tensor:
    return pad_to_multiple(x, CLASSIFIER_DOWNSAMPLING)[0]
