"""Pictures a lab user looks at: image panels (original | Bob | Eve), label grids (classification) and
constellations."""
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
                ax.text(0.5, 0.5, "no reference\nimage" if who == "original" else f"{who}: no image\n(frames lost)",
                        ha="center", va="center")
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


#: Label colours of :func:`label_grid`: right, wrong, and unknown (no reference label).
RIGHT, WRONG, UNKNOWN = "#1a7f37", "#cf222e", "#444444"


def label_grid(cells: list[dict], png: Path, title: str = "", columns: int = 8) -> None:
    """A grid of images, each with its true label and Bob's and Eve's predicted labels under it, green
    when right and red when wrong or lost (grey: no reference label).

    Each cell: ``{"image": uint8 HWC or None, "index": int, "true": str or None, "bob": str or None,
    "eve": str or None}`` (a role left out was not run; None: that role got no label, its frames lost).
    """
    plt = _plt()
    n = max(1, len(cells))
    cols = min(columns, n)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(1.9 * cols, 2.5 * rows), squeeze=False,
                             gridspec_kw={"hspace": 0.6, "wspace": 0.15, "top": 1 - 0.35 / (2.5 * rows)})
    for ax in axes.ravel():
        ax.axis("off")
    for ax, cell in zip(axes.ravel(), cells):
        img = cell.get("image")
        if img is not None:
            ax.imshow(img.squeeze(), cmap="gray" if img.shape[-1] == 1 else None, interpolation="nearest")
        else:
            ax.set(xlim=(0, 1), ylim=(0, 1), aspect="equal")
            ax.text(0.5, 0.5, "no reference\nimage", ha="center", va="center", fontsize=7, color=UNKNOWN)
        true = cell.get("true")
        ax.set_title(f"#{cell['index']}: {true}" if true is not None else f"#{cell['index']}", fontsize=8)
        lines = [(who, cell[who]) for who in ("bob", "eve") if who in cell]
        for k, (who, label) in enumerate(lines):
            colour = UNKNOWN if true is None else RIGHT if label == true else WRONG    # lost: wrong
            ax.text(0.5, -0.06 - 0.16 * k, f"{who.capitalize()}: {label if label is not None else 'lost'}",
                    transform=ax.transAxes, ha="center", va="top", fontsize=8, color=colour,
                    fontweight="bold")
    if title:
        fig.suptitle(title, fontsize=10, y=1.0, va="bottom")
    fig.savefig(png, dpi=110, bbox_inches="tight")     # the label lines under the last row included
    plt.close(fig)
