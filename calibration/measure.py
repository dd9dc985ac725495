"""Measurements on a known periodic waveform: relative oscillator offset (from CFO and SRO), SNR, images, DC.

The calibration waveform (:func:`comb`) is a comb of tones on every fourth FFT bin of a period of
``P`` samples — bins k ≡ 1 (mod 4) within ±``band``·fs, so a tone's mirror −k (≡ 3 mod 4) is never a
tone: IQ images land on empty bins, and the bins ≡ 0, 2 (mod 4) hold only noise. Newman phases keep
its crest factor near 4 (12 dB).

**Offset.** One reference oscillator drives a radio's LO and sample clock. Between a transmitter (error
e_T) and a receiver (e_R), receive sample n sees the transmitter's sample r·n, r = (1 + e_T)/(1 + e_R),
rotated by f = f_c·(e_T − e_R)/fs cycles per sample. So the comb's tone at ν (cycles per transmit
sample) arrives at ν·r + f: every tone's frequency, measured over the whole capture, lies on a line
whose intercept is the CFO and whose slope is the clock ratio (:func:`estimate_offset`):

1. integer bins: the averaged power spectrum against the comb's mask (circular correlation);
2. fraction of a bin: the phase advance from one period to the next, summed over tones;
3. per tone: the slope of its unwrapped phase across periods → its residual frequency δ_k;
4. a weighted straight-line fit δ_k = a + ν_k·(r − 1): intercept → CFO, slope → SRO.

Two independent estimates of e_R − e_T follow: ``ppm_cfo`` = −f·fs/f_c and ``ppm_sro`` = −(r − 1).
The CFO one is far more precise (at 2.4 GHz one ppm is 2.4 kHz, measured to a fraction of a Hz); the SRO
one is unambiguous, and it picks the CFO's alias (the CFO is known only modulo fs). They must agree
within their uncertainties; the combined value is their inverse-variance mean.

**SNR, images, DC** (:func:`comb_powers`): with the offset known, the capture is rotated and resampled
so that the tones sit exactly on bins of one windowed FFT; signal power is the tone bins' power less the
noise, noise the median of the bins away from every known component (÷ ln 2, the exponential
distribution's median), TX images the power at −k, RX images (at the mirror of the *received* tone,
−(ν·r + f)) measured the same way after rotating the other way. Powers are per sample over the whole
sample band, in dB relative to ADC full scale.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from radio.devices.hardware import resample

PERIOD = 4096
BAND = 0.25


@dataclass(frozen=True)
class Comb:
    """One period of the calibration waveform (unit RMS) and its tones."""

    period: int
    bins: np.ndarray          # signed FFT bins of the tones
    values: np.ndarray        # their complex amplitudes in the normalised FFT (fft/√P)
    samples: np.ndarray       # one period, complex128, RMS 1

    @property
    def nu(self) -> np.ndarray:
        """Tone frequencies, cycles per sample."""
        return self.bins / self.period


def comb(period: int = PERIOD, band: float = BAND) -> Comb:
    """The calibration comb: tones on bins ≡ 1 (mod 4), |k| ≤ band·period, k ≠ 1 and k ≠ −3 (away from DC)."""
    kmax = int(band * period)
    k = np.arange(-kmax, kmax + 1)
    k = k[(k % 4 == 1) & (np.abs(k) > 4)]
    m = k.size
    phases = np.pi * np.arange(m) ** 2 / m            # Newman: low crest factor
    spec = np.zeros(period, np.complex128)
    spec[k % period] = np.exp(1j * phases)
    x = np.fft.ifft(spec)
    scale = 1 / np.sqrt(np.mean(np.abs(x) ** 2))
    x *= scale
    values = np.fft.fft(x)[k % period] / np.sqrt(period)
    return Comb(period, k, values, x)


def _blocks(y: np.ndarray, period: int) -> np.ndarray:
    nb = y.size // period
    return y[:nb * period].reshape(nb, period)


def _spectra(y: np.ndarray, period: int) -> np.ndarray:
    return np.fft.fft(_blocks(y, period), axis=1) / np.sqrt(period)


@dataclass
class Offset:
    """The oscillator offset of a receiver against a transmitter, from one capture."""

    cfo: float               # cycles per sample (receive clock)
    ratio: float             # r: receive sample n sees transmit sample r·n
    cfo_std: float
    ratio_std: float
    tones_used: int

    def ppm(self, center_freq_hz: float, sample_rate_hz: float) -> dict:
        """e_R − e_T in ppm from the CFO, from the SRO, combined, with standard deviations and agreement."""
        k = sample_rate_hz / center_freq_hz * 1e6
        p_cfo, s_cfo = -self.cfo * k, self.cfo_std * k
        p_sro, s_sro = -(self.ratio - 1) * 1e6, self.ratio_std * 1e6
        w1, w2 = 1 / max(s_cfo, 1e-12) ** 2, 1 / max(s_sro, 1e-12) ** 2
        comb_ppm = (w1 * p_cfo + w2 * p_sro) / (w1 + w2)
        diff = p_cfo - p_sro
        # 5 σ, and never stricter than 0.01 ppm (effects outside the model: synthesiser steps, filters)
        tol = max(5 * np.hypot(s_cfo, s_sro), 0.01)
        return {"ppm": float(comb_ppm), "ppm_std": float((w1 + w2) ** -0.5),
                "ppm_from_cfo": float(p_cfo), "ppm_from_cfo_std": float(s_cfo),
                "ppm_from_sro": float(p_sro), "ppm_from_sro_std": float(s_sro),
                "cfo_hz": float(self.cfo * sample_rate_hz), "sro_ppm": float((self.ratio - 1) * 1e6),
                "agree": bool(abs(diff) <= tol), "disagreement_ppm": float(diff), "tolerance_ppm": float(tol)}


def estimate_offset(y: np.ndarray, c: Comb, center_freq_hz: float | None = None,
                    sample_rate_hz: float | None = None) -> Offset:
    """CFO and clock ratio of capture ``y`` (receive samples of the repeated comb), see the module notes.

    With ``center_freq_hz`` and ``sample_rate_hz`` the CFO's alias (it is known modulo one cycle per
    sample) is the one the SRO predicts.
    """
    P = c.period
    y = np.asarray(y, np.complex128)
    nb = y.size // P
    if nb < 8:
        raise ValueError(f"need at least 8 periods of {P} samples, got {y.size} samples")
    n = np.arange(nb * P)
    y = y[:nb * P]
    # 1. integer bins: power spectrum against the mask
    power = np.mean(np.abs(_spectra(y, P)) ** 2, axis=0)
    mask = np.zeros(P)
    mask[c.bins % P] = 1
    corr = np.fft.ifft(np.fft.fft(power) * np.conj(np.fft.fft(mask))).real
    s = int(np.argmax(corr))
    s = s - P if s > P // 2 else s
    # 2. fraction of a bin: phase advance period to period, over the tones (after the integer shift)
    y1 = y * np.exp(-2j * np.pi * s * n / P)
    z = _spectra(y1, P)[:, c.bins % P] / c.values
    f1 = float(np.angle(np.sum(z[1:] * np.conj(z[:-1]))) / (2 * np.pi * P))
    # 3. each tone's residual frequency from its unwrapped phase across periods
    y2 = y1 * np.exp(-2j * np.pi * f1 * n)
    z = _spectra(y2, P)[:, c.bins % P] / c.values
    amp2 = np.mean(np.abs(z) ** 2, axis=0)
    ph = np.unwrap(np.angle(z), axis=0)
    b = np.arange(nb) - (nb - 1) / 2
    slope = (b @ ph) / (b @ b)                          # radians per period, per tone
    resid = ph - ph.mean(axis=0) - np.outer(b, slope)
    var_slope = np.sum(resid ** 2, axis=0) / max(nb - 2, 1) / (b @ b)
    delta = slope / (2 * np.pi * P)                     # cycles per sample
    var_delta = var_slope / (2 * np.pi * P) ** 2
    # drop tones that are not clean tones: faded, or within two bins of a spur — the RX DC (raw frequency 0)
    # and the TX carrier leakage with its RX image (raw ±f), at −(s/P + f1), ≈ 0 and ≈ −2(s/P + f1) here
    f_now = s / P + f1
    dist = np.abs(((c.bins[:, None] / P - np.array([-f_now, 0.0, -2 * f_now])[None, :]) * P + P / 2) % P - P / 2)
    good = (amp2 > 0.1 * np.median(amp2)) & (dist.min(axis=1) > 2)
    nu = c.nu
    A = np.stack([np.ones_like(nu), nu], axis=1)
    # 4. δ_k = a + ν_k·(r − 1): weighted least squares, twice — the second time without outliers
    for _ in range(2):
        w = np.where(good, 1 / np.maximum(var_delta, 1e-30), 0.0)
        AtW = A.T * w
        cov = np.linalg.inv(AtW @ A)
        a, d = cov @ (AtW @ delta)
        r = delta - (a + nu * d)
        z = np.abs(r) * np.sqrt(w)
        scale = 1.4826 * np.median(z[good]) if good.any() else 1.0
        good = good & (z <= 5 * max(scale, 1e-30))
    # the fit's own residual scatter (not only the per-tone noise) sets the uncertainty
    chi2 = float(np.sum(w * r ** 2) / max(int(good.sum()) - 2, 1))
    cov = cov * max(chi2, 1.0)
    cfo = s / P + f1 + a
    ratio = 1 + d
    if center_freq_hz and sample_rate_hz:
        # the SRO predicts the CFO: f ≈ (r − 1)·f_c/fs; take the alias nearest to it
        predicted = (ratio - 1) * center_freq_hz / sample_rate_hz
        cfo = cfo + np.round(predicted - cfo)
    else:
        cfo = (cfo + 0.5) % 1.0 - 0.5
    return Offset(float(cfo), float(ratio), float(np.sqrt(cov[0, 0])), float(np.sqrt(cov[1, 1])),
                  int(good.sum()))


def noise_power(y: np.ndarray, period: int = PERIOD) -> float:
    """Noise power per sample (full scale²) of a capture with no signal: the median of the periodogram's
    bins (÷ ln 2), blind to DC, carrier leakage and other spurs."""
    spec = np.abs(_spectra(np.asarray(y, np.complex128), period)) ** 2
    spec = np.delete(spec, [0, 1, period - 1], axis=1)
    return float(np.median(spec) / np.log(2))


def dc_power(y: np.ndarray) -> float:
    """|mean|² of a capture (full scale²)."""
    return float(np.abs(np.mean(np.asarray(y, np.complex128))) ** 2)


def _aligned(y: np.ndarray, off: Offset, sign: int) -> np.ndarray:
    """``y`` rotated by ``sign``·CFO and resampled onto the transmit clock (tones or images on bins)."""
    n = np.arange(y.size)
    y = np.asarray(y, np.complex128) * np.exp(2j * np.pi * sign * off.cfo * n)
    if off.ratio == 1.0:
        return y
    return resample(y, 1 / off.ratio)


def _windowed(y: np.ndarray, off: Offset, sign: int, period: int) -> tuple[np.ndarray, float, float]:
    """|FFT|² of the whole capture rotated by ``sign``·CFO, resampled onto the transmit clock and
    Blackman-Harris windowed (length a multiple of the period: the comb's bins are exact FFT bins); with
    the window's Σw and Σw²."""
    ya = _aligned(y, off, sign)
    L = (ya.size // period) * period
    t = 2 * np.pi * np.arange(L) / L                     # 4-term Blackman-Harris (periodic)
    w = 0.35875 - 0.48829 * np.cos(t) + 0.14128 * np.cos(2 * t) - 0.01168 * np.cos(3 * t)
    return np.abs(np.fft.fft(ya[:L] * w)) ** 2, float(w.sum()), float(np.sum(w * w))


def comb_powers(y: np.ndarray, c: Comb, off: Offset) -> dict:
    """Signal, noise, SNR (per sample, full band), and image rejection of a capture of the comb.

    ``off`` is the capture's offset (from :func:`estimate_offset`, or a known one). Every component sits
    at a known frequency: tone k at k·r/P + f, its TX image at −k·r/P + f, its RX image at −(k·r/P + f),
    the RX DC at 0 and the TX carrier leakage at f. Rotated by −f and resampled, the tones and TX images
    fall on exact bins of one Blackman-Harris-windowed FFT of the capture (sidelobes below −92 dB); rotated
    by +f, the RX images do. Noise is the median of the bins away from every component. An image below
    what the capture can see gives a lower bound (``image_rejection_bound``).
    """
    P = c.period
    if np.asarray(y).size < 8 * P:
        raise ValueError(f"need at least 8 periods of {P} samples, got {np.asarray(y).size}")
    pa, sw, sw2 = _windowed(y, off, -1, P)
    L = pa.size
    up = L // P
    n_bin = None

    def fine(freqs_cycles):
        return np.round(np.asarray(freqs_cycles) * L).astype(np.int64) % L

    nu = c.bins / P
    shift = 2 * off.cfo / off.ratio                              # cycles per sample

    def near(bins):
        m = np.zeros(L, bool)
        for d in range(-5, 6):                                    # the window's main lobe is ±4 bins
            m[(np.asarray(bins) + d) % L] = True
        return m

    spurs = near(fine([0.0, -off.cfo / off.ratio, off.cfo / off.ratio]))   # TX leakage, RX DC, its image
    away = ~(near(np.concatenate([fine(nu), fine(-nu), fine(-nu - shift)])) | spurs)
    band = np.abs(np.fft.fftfreq(L)) <= np.abs(nu).max()       # where the resampler is flat
    n_bin = float(np.median(pa[away & band]) / np.log(2))         # noise power per FFT bin
    noise = n_bin / sw2                                           # per sample
    clean = ~spurs[fine(nu)]                                      # tones a spur sits on: counted at the mean
    tone_amp2 = (pa[fine(nu)[clean]] - n_bin) / sw ** 2           # |A_k|² per tone
    signal = float(max(np.sum(tone_amp2) * nu.size / max(int(clean.sum()), 1), 1e-30))
    out = {"signal_power": signal, "noise_power": noise, "snr_db": _db(signal / noise),
           "signal_dbfs": _db(signal), "noise_dbfs": _db(noise), "image_rejection_bound": False}

    def rejection(p, img_bins):
        img_bins = img_bins[~spurs[img_bins]]
        extra = float(np.sum(p[img_bins] - n_bin)) / sw ** 2 * nu.size / max(img_bins.size, 1)
        floor = 2 * n_bin * np.sqrt(img_bins.size) / sw ** 2      # two standard deviations of that sum
        if extra <= floor:
            out["image_rejection_bound"] = True
            return _db(signal / floor)
        return _db(signal / extra)

    sep = abs(shift) * L >= 12                                    # the two images' main lobes apart
    if sep:
        pb, _, _ = _windowed(y, off, +1, P)
        pb = pb[:L]
        out["image_rejection_tx_db"] = rejection(pa, fine(-nu))
        out["image_rejection_rx_db"] = rejection(pb, fine(-nu))
        irr = [out["image_rejection_tx_db"], out["image_rejection_rx_db"]]
        out["image_rejection_db"] = _db(1 / sum(10 ** (-v / 10) for v in irr))
    else:   # the two images fall together: only their sum can be measured
        out["image_rejection_db"] = rejection(pa, fine(-nu))
        out["image_rejection_tx_db"] = out["image_rejection_rx_db"] = None
    del up
    return out


def _db(x: float) -> float:
    return float(10 * np.log10(x)) if x > 0 else float("-inf")
