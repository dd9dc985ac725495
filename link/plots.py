"""Pictures a lab user looks at: image panels (original | Bob | Eve) and constellations."""
from __future__ import annotations

from pathlib import Path

import numpy as np


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def image_panel(rows: list[dict], png: Path, title: str = "") -> None:
    """One row per image: original | Bob | Eve, with PSNR/SSIM under each reconstruction.

    Each row: ``{"original": uint8 HWC, "bob": uint8 HWC or None, "eve": ..., "bob_psnr", "eve_psnr", ...}``.
    """
    plt = _plt()
    n = len(rows)
    fig, axes = plt.subplots(n, 3, figsize=(9, 3 * n), squeeze=False)
    for i, row in enumerate(rows):
        for j, who in enumerate(("original", "bob", "eve")):
            ax = axes[i, j]
            ax.axis("off")
            img = row.get(who)
            if img is None:
                ax.text(0.5, 0.5, f"{who}: no image\n(frames lost)", ha="center", va="center")
                continue
            ax.imshow(img.squeeze(), cmap="gray" if img.shape[-1] == 1 else None, interpolation="nearest")
            label = who.capitalize() if who != "original" else "Original"
            if who != "original" and row.get(f"{who}_psnr") is not None:
                label += f"\n{row[f'{who}_psnr']:.2f} dB, SSIM {row[f'{who}_ssim']:.3f}"
            ax.set_title(label, fontsize=9)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    plt.close(fig)


def constellation_plot(panels: dict[str, np.ndarray], png: Path, max_points: int = 20000, title: str = "") -> None:
    """Scatter of received (synchronised) payload symbols, one panel per receiver."""
    plt = _plt()
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 5), squeeze=False)
    for ax, (name, sym) in zip(axes[0], panels.items()):
        sym = np.asarray(sym).ravel()[:max_points]
        ax.scatter(sym.real, sym.imag, s=0.3, alpha=0.5)
        ax.set_aspect("equal")
        ax.set_title(name)
        ax.set_xlabel("I")
        ax.set_ylabel("Q")
        ax.grid(True, alpha=0.2)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    plt.close(fig)
