"""Numbers the papers print, for drawing beside a campaign's (labelled as the paper's, never as ours).

Only numbers printed in the papers' text are here. Paper 000 (Tung & Gündüz, *Deep Joint Source-Channel
and Encryption Coding*): Table III (CIFAR-10, Bob's model trained at SNR_train = 10 dB and evaluated at
10 dB; Eve's chosen-plaintext decoder; the mean-pixel image). Its Fig. 3 (PSNR/SSIM against SNR, against
BPG + AES + LDPC) is a plot without printed values: the text says only that DeepJSCEC degrades gracefully
while the digital schemes fall off a cliff at their threshold SNRs. Table V and paper 002's Table III
belong to the classification applications, which campaigns do not run yet.
"""
from __future__ import annotations

TABLE_III = {
    "paper": "000 (DeepJSCEC)",
    "what": "Table III, CIFAR-10, SNR_train = 10 dB, evaluated at 10 dB",
    "dataset": "CIFAR-10",
    "rho": 1 / 6,
    "snr_db": 10.0,
    "bob": {"psnr": 25.95, "ssim": 0.8698},
    "eve": {"psnr": 12.29, "ssim": 0.0624},
    "mean_image": {"psnr": 12.42, "ssim": 0.0860},
}

FIG3_NOTE = ("paper 000 Fig. 3 prints no values (a plot only); its Table III point (SNR 10 dB) is drawn, labelled "
             "as the paper's")


def matches_table_iii(dataset: str | None, rho: float | None) -> bool:
    """Whether a campaign's DeepJSCEC cells are comparable with Table III (CIFAR-10 at ρ = 1/6)."""
    return bool(dataset) and "cifar-10" in dataset.lower() and rho is not None and abs(rho - 1 / 6) < 1e-3
