"""Frame synchronisation from known symbols, good enough for 4096-QAM (numpy; the per-frame inner loops
are compiled with numba in :mod:`radio.sync_kernels`).

The receiver works on two aligned sample streams: ``raw``, the samples as received, and ``det``, the
same samples through the **detection filter** (:func:`detection_taps`: a low-pass as long as the
matched filter, so with the same delay, whose passband reaches the band edge of a signal offset by
½ cycle per symbol; GNU Radio's FIR in the flowgraph, :func:`detection_filter` in :func:`synchronize`).
The RRC matched filter itself is applied only after the carrier offset is removed: at |CFO| ≈ 0.5
cycles per symbol it would cut much of the signal (and the detector's metric falls from ~0.65 to
~0.19 at 5 dB, below its threshold one time in six).

1. **Detection** (on ``det``, CFO-blind): p[n] = det[n]·conj(det[n − sps]) turns any carrier offset into
   a constant phase; summed over three samples (z[n] = p[n − 1] + p[n] + p[n + 1]: the wide filter's
   noise × noise averages, the signal's part does not), its correlation C with the preamble's
   differential sequence (powers of j for a QPSK preamble: additions only) peaks at the preamble's last
   symbol. The metric ρ = |C|² / ((N−1)·Σ|z|²/sps) lies in [0, ~1.4] whatever the gain, and ∠C gives
   the CFO modulo one cycle per symbol. Once a header decodes, the scan resumes at that frame's end (one transmitter:
   no preamble starts inside a frame), so a continuous stream is scanned only between frames.
2. **CFO and confirmation**: for each whole-cycle alias of ∠C within ±``cfo_search`` the preamble's raw
   samples are de-rotated and matched-filtered, stripped of their modulation, and the peak of the
   zero-padded DFT near 0 measured: the alias with the strongest peak is the CFO (the others leave the
   signal outside the matched filter), the peak's frequency refines it (close to the Cramér–Rao bound)
   and its normalised height confirms the frame (a second, coherent detection test). A confirmed
   frame whose |CFO| exceeds ``max_cfo`` is dropped as out of range and counted
   (:attr:`SyncStats.cfo_out_of_range`; :func:`cfo_advice` words the message that names ``jscec calibrate``).
3. **Matched filter after CFO removal**: the raw samples of the frame are de-rotated and filtered,
   so a large CFO does not turn the RRC pair into a non-Nyquist filter.
4. **Timing**: a data-aided timing-error detector on the known blocks at both ends of the frame
   (preamble + decoded header; postamble), Newton steps on Σ Re{conj(h·x)·(y(t+1) − y(t−1))}: ISI
   from known neighbours cancels pairwise for an even pulse, so the estimate is nearly unbiased.
   The two ends give the start time and the sample-rate offset; every symbol is then interpolated
   at its own instant with a Kaiser-windowed-sinc fractional-delay filter (−68 dB error at sps 2).
5. **Gain and phase**: the complex gain at every symbol from the known symbols (preamble, header
   once decoded, pilots, postamble) by a Gaussian-kernel local-linear smoother — it follows residual
   CFO ramps without bias and phase noise slower than the kernel.
6. **DC offset and IQ imbalance** of the receiver (``iq_correction``): raw r → r − w·conj(r) − c. The
   residual image coefficient w and DC c are fitted by least squares on the known symbols of the
   preamble, header region and postamble, whose residuals s − h·x are regressed on the same chain
   applied to conj(r) (the exact image, ISI and filtering included, at any CFO) and on the DC's own
   tone; when the fit explains a set share of the residual energy the correction is updated and the
   frame processed again. The correction is a property of the radio: it carries over to the next
   frames (a blind DC blocker notches 4096-QAM's own spectrum: MER 29.9 → 25.8 dB with
   ``dc_blocker_cc(1024)``). Before this fit (and again after a correction), the **transmitter's carrier
   leakage** (``tx_leak_correction``) — its LO's tone, received at the carrier offset, hence a constant d
   on the de-rotated symbols (s = h·(x + d)) — is fitted on every known symbol, removed and carried over
   the same way (:meth:`FrameFinisher._leak_removed`; reported as ``tx_leak_dbc``). Left in, a leak 30 dB
   below the signal held two uncalibrated fake Plutos at ~27 dB MER; removed, 39 dB. And a DC offset near or
   above a weak signal's level (a strongly attenuated transmitter: a Pluto's −50 dBFS residual DC over a
   −58 dBFS signal) would stop detection before any of this runs: :meth:`StreamSync._remove_dc` subtracts
   a smoothed block mean from both streams first, while the DC holds ≥ 10 % of the power of the rest
   (``blind_dc``), and the finisher's fit takes what is left.
7. **Optional equaliser**: a short T-spaced least-squares FIR trained on the known blocks.
8. **MER/SNR** from the residuals at the known symbols, corrected for the smoother's degrees of
   freedom (``calibration.snr``), and the noise variance of the equalised payload for soft demapping.

:class:`StreamSync` runs this on a stream pushed in arbitrary chunks (the GNU Radio block wraps it);
:func:`synchronize` runs it on a whole recording. It works in two stages: detection, CFO, preamble
timing and the header (which tells where the next frame can start) in stream order, then the rest of
the frame in a :class:`FrameFinisher` — which ``radio.sync_process`` runs in a worker process.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from calibration.snr import snr_from_residuals
from radio.frame import (DEFAULT_FORMAT, VERSION, VERSION_AUTH, FrameFormat, FrameHeader, HeaderError, known_symbols,
                         qpsk_llr)
from radio.pulse import PulseShape, detection_taps  # noqa: F401 - re-exported: the detection filter is the sync's
from radio.sync_kernels import (derotate_filter, gain_at, grid_gain, interpolate, iq_fit_sums, phase_ramp,
                                preamble_timing, rotator, scan_preamble)




@dataclass(frozen=True)
class SyncConfig:
    """Receiver settings (the defaults meet issue 4's and issue 16's targets at sps 4, roll-off 0.25)."""

    detect_threshold: float = 0.1    # differential-correlation metric ρ (noise alone: ~1/126; above 0.1: 3e-6)
    confirm_threshold: float = 0.2   # coherent preamble metric after CFO removal (noise: ~1/127)
    max_cfo: float = 0.6             # |CFO| accepted, cycles per symbol (frames beyond: dropped, counted)
    cfo_search: float = 1.5          # |CFO| searched when resolving ∠C's whole-cycle ambiguity
    track_span: float = 128.0        # std (symbols) of the gain/phase tracker's Gaussian kernel
    equalizer_taps: int = 0          # 0: off; else an odd number of T-spaced taps
    timing_iterations: int = 2
    max_sro: float = 2e-3            # |sample-rate offset| accepted (fraction)
    iq_correction: bool = True       # estimate and remove the receiver's DC offset and IQ imbalance
    iq_update_share: float = 0.05    # ... when the fit explains this share of the known symbols' residual energy
    tx_leak_correction: bool = True  # estimate and remove the transmitter's carrier leakage (a constant per symbol)
    blind_dc: bool = True            # remove a DC offset near or above the signal's level before detection

    def __post_init__(self):
        if self.equalizer_taps and (self.equalizer_taps < 0 or self.equalizer_taps % 2 == 0):
            raise ValueError("equalizer_taps must be 0 or a positive odd number")
        if not self.track_span > 0:
            raise ValueError("track_span must be positive")
        if not 0 < self.max_cfo <= self.cfo_search:
            raise ValueError("max_cfo must be positive and no larger than cfo_search")


@dataclass
class SyncedFrame:
    """One synchronised frame: header, equalised payload symbols and the link measurements."""

    header: FrameHeader
    payload: np.ndarray                  # complex64, equalised (unit-power constellation scale)
    noise_var: float                     # noise variance of ``payload`` (for soft demapping)
    mer_db: float                        # −10·log10(noise_var): the payload MER predicted from pilots
    snr_db: float                        # channel SNR estimate |h|²/σ² before estimation losses
    cfo: float                           # cycles per symbol
    sro_ppm: float                       # sample-rate offset estimate
    timing: float                        # fractional sample offset of the first preamble symbol
    gain: float                          # mean |h| (received amplitude per unit symbol)
    start: float                         # sample index (raw stream) of the first preamble symbol
    metric: float                        # detection metric ρ
    d_values: np.ndarray | None = None   # lwe-pk d block (int64) or None
    d_ok: bool | None = None             # its CRC
    d_llr: np.ndarray | None = None      # coded-bit LLRs of the d block (float32)
    tag: bytes | None = None             # the tag block's MAC tag (header version 2) or None
    tag_ok: bool | None = None           # its CRC-16 (noise, not authenticity: only a key holder can verify the tag)
    # The DC/IQ correction in force (nan: none needed): the image rejection (dB) and the DC level (dB below
    # the frame's signal power) it removes — the receiver's own where they matter; near |CFO| = 0.5 the
    # matched filter takes most of the image, and the estimate stops once the rest no longer matters.
    image_rejection_db: float = float("nan")
    dc_dbc: float = float("nan")
    # The transmitter's carrier leakage removed (dB relative to the signal; nan: none found): a tone at the
    # TX LO, hence at the carrier offset in the received samples and a constant on the synchronised symbols.
    tx_leak_dbc: float = float("nan")

    @property
    def counter(self) -> int:
        return self.header.counter


@dataclass
class DroppedFrame:
    """A detected preamble whose header failed, or whose carrier offset is out of range (never delivered
    as a frame)."""

    start: float
    reason: str
    metric: float
    snr_db: float = float("nan")


@dataclass
class SyncStats:
    samples: int = 0
    detections: int = 0
    unconfirmed: int = 0
    frames: int = 0
    header_failures: int = 0
    truncated: int = 0
    cfo_out_of_range: int = 0          # confirmed preambles dropped for |CFO| > max_cfo
    cfo_out_of_range_mean: float = 0.0  # their mean CFO, cycles per symbol (0 when none)

    def as_dict(self) -> dict:
        return dict(self.__dict__)

    def count_out_of_range(self, cfo: float) -> None:
        self.cfo_out_of_range += 1
        self.cfo_out_of_range_mean += (cfo - self.cfo_out_of_range_mean) / self.cfo_out_of_range


def cfo_drop_reason(max_cfo: float) -> str:
    """The drop reason of a frame whose |CFO| exceeds ``max_cfo`` (one string per setting: receivers
    count drops by reason)."""
    return f"carrier offset beyond ±{max_cfo:g} cycles/symbol"


def cfo_advice(stats: dict, sample_rate_hz: float | None = None, sps: int = 4,
               max_cfo: float | None = None) -> str | None:
    """The one line a run prints (or ends with) when its synchroniser dropped frames for their carrier
    offset, naming ``jscec calibrate``; None when it dropped none. ``stats``: a :class:`SyncStats` dict
    (``FrameSync.stats()``, a report's ``sync`` entry for one role); with ``sample_rate_hz`` the offset
    is also given in kHz."""
    n = int(stats.get("cfo_out_of_range", 0) or 0)
    if n <= 0:
        return None
    cfo = float(stats.get("cfo_out_of_range_mean", 0.0))
    limit = SyncConfig().max_cfo if max_cfo is None else max_cfo
    where = f"{cfo:+.2f} cycles/symbol"
    if sample_rate_hz:
        where += f" = {cfo * sample_rate_hz / sps / 1e3:+.0f} kHz at {sample_rate_hz / 1e6:g} MS/s"
    frames = "1 frame" if n == 1 else f"{n} frames"
    return (f"carrier offset {where} is beyond the ±{limit:g} cycles/symbol the receiver accepts ({frames} "
            f"dropped): the radios' oscillators disagree; run jscec calibrate")


# ---------------------------------------------------------------------------------------------------
# Interpolation and pulse constants
# ---------------------------------------------------------------------------------------------------

class FractionalInterpolator:
    """y(t) and y'(t) at fractional sample positions: Kaiser-windowed sinc, 12 taps, 1024 phases."""

    def __init__(self, half: int = 6, beta: float = 8.0, resolution: int = 1024):
        self.half = half
        self.res = resolution
        self.width = 2 * half
        self._offsets = np.arange(-half + 1, half + 1)
        self._beta = beta
        mu = np.arange(resolution + 1) / resolution
        self.table = self._kernel(mu).astype(np.float32)
        eps = 1e-4
        # d/dt of y(i + μ) = Σ_j y[i + j] w_j(μ): the μ-derivative of the weights.
        self.dtable = ((self._kernel(mu + eps) - self._kernel(mu - eps)) / (2 * eps)).astype(np.float32)

    def _kernel(self, mu: np.ndarray) -> np.ndarray:
        x = self._offsets[None, :] - mu[:, None]
        w = np.sinc(x) * np.i0(self._beta * np.sqrt(np.clip(1 - (x / self.half) ** 2, 0, None)))
        return w / w.sum(axis=1, keepdims=True)

    def __call__(self, y: np.ndarray, t: np.ndarray, deriv: bool = False):
        """y(t) (complex64), or (y(t), y'(t)) with ``deriv``; t in samples of ``y`` (complex64)."""
        s, d = interpolate(y, np.asarray(t, dtype=np.float64), self.table, self.dtable, self.half, self.res, deriv)
        return (s, d) if deriv else s


_INTERP = FractionalInterpolator()
#: Samples scanned per detection pass.
SCAN_BLOCK = 1024
TAYLOR_MAX = 0.05


@lru_cache(maxsize=16)
def _pulse_slopes(taps_key: tuple, sps: int) -> tuple[float, float]:
    """Slopes of the timing detector Re{conj(h·x̂)·y'(t)} per unit timing error (samples).

    With c = taps ⊗ taps the slope is c''(0)/c(0) for a known symbol. For an unknown symbol whose
    stand-in x̂ is its own equalised value (which moves with the timing error) the neighbours' ISI
    adds Σ_{m≠0} c'(m·sps)²/c(0)² on average (about a third of the first term, opposite sign).
    """
    taps = np.asarray(taps_key)
    n = 1 << 15
    c_f = np.abs(np.fft.fft(taps, n)) ** 2
    w = 2 * np.pi * np.fft.fftfreq(n)
    c0 = c_f.sum() / n
    c2 = -np.sum(w * w * c_f) / n
    span = (taps.size - 1) // sps
    m = np.concatenate([np.arange(-span, 0), np.arange(1, span + 1)]) * sps
    dc = -(np.sin(np.outer(m, w)) * w) @ c_f / n
    known = c2 / c0
    return float(known), float(known + np.sum(dc * dc) / c0 ** 2)


def _filtered_window(x: np.ndarray, a: int, cfo: float, ref: int, sps: int, taps32: np.ndarray) -> np.ndarray:
    """Raw samples ``x`` (the first at absolute index ``a``), de-rotated by ``cfo`` cycles per symbol
    (phase 0 at ``ref``), matched-filtered.

    'same' alignment: element i is the filter output centred on raw sample a + i; the first and
    last ``delay`` elements are incomplete.
    """
    return derotate_filter(x, a - ref, cfo / sps, taps32)


def _phase_slope(u: np.ndarray, lag: int) -> float:
    """Frequency (cycles per sample) of a noisy tone from its lag-``lag`` autocorrelation.

    Unambiguous within ±1/(2·lag); used for residual offsets far inside that range.
    """
    return float(np.angle(np.vdot(u[:-lag], u[lag:])) / (2 * np.pi * lag))


@lru_cache(maxsize=8)
def _dft_rows(n: int, nfft: int, reach: int) -> np.ndarray:
    """Rows of the ``nfft``-point DFT of ``n`` samples for bins −reach−1 … reach+1 (complex64)."""
    k = np.arange(-reach - 1, reach + 2)
    rows = np.exp(-2j * np.pi * np.outer(k, np.arange(n)) / nfft).astype(np.complex64)
    rows.setflags(write=False)
    return rows


def _tone_frequency(u: np.ndarray, reach: int, nfft: int = 2048, with_peak: bool = False):
    """Frequency (cycles per sample of ``u``) of the strongest tone within ±reach bins of 0 of the
    zero-padded ``nfft``-point DFT.

    The peak bin refined by a parabola through the log-free power of its neighbours; ``with_peak``
    also returns the peak power |Σ u e^{−j2πfk}|². Only the bins searched are computed (one small
    matrix product: a fifth of a full FFT's time).
    """
    spec = np.abs(_dft_rows(u.size, nfft, reach) @ u.astype(np.complex64, copy=False)).astype(np.float64) ** 2
    i = 1 + int(np.argmax(spec[1:-1]))
    y0, y1, y2 = spec[i - 1], spec[i], spec[i + 1]
    den = y0 - 2 * y1 + y2
    frac = 0.5 * (y0 - y2) / den if den < 0 else 0.0
    f = (i - reach - 1 + frac) / nfft
    return (f, y1) if with_peak else f


# ---------------------------------------------------------------------------------------------------
# Gain / phase tracker
# ---------------------------------------------------------------------------------------------------

_BIN = 8  # symbols per bin of the tracker


@dataclass(frozen=True)
class _Tracker:
    """Linear operator: bin means of the known ratios y/x → complex gain on the symbol grid."""

    n_sym: int
    known: np.ndarray        # sorted known positions
    bins: np.ndarray         # bin index of each known position (into the non-empty bins)
    counts: np.ndarray       # known symbols per non-empty bin
    op_t: np.ndarray         # (n_bins, n_grid) smoother at the grid points, transposed
    grid: np.ndarray         # grid positions (symbols)
    dof_known: tuple         # (n, tr H, ||H||²_F) on the known positions
    penalty: np.ndarray      # per-symbol estimation-noise factor Σ_b Q[k,b]²/n_b

    def grid_gain(self, s: np.ndarray, known_sym: np.ndarray) -> np.ndarray:
        """The complex gain on the tracker's grid (every ``_BIN`` symbols) from the frame's symbols
        ``s``, whose known positions carry ``known_sym``."""
        return grid_gain(s, self.known, known_sym, self.bins, self.counts, self.op_t)

    def at(self, g: np.ndarray, pos: np.ndarray | None = None) -> np.ndarray:
        """Grid gain ``g`` interpolated to symbol positions ``pos`` (default: every symbol)."""
        return gain_at(g, self.grid, _BIN, self.all_pos if pos is None else pos)

    @property
    def all_pos(self) -> np.ndarray:
        return np.arange(self.n_sym)

    def apply(self, s: np.ndarray, known_sym: np.ndarray) -> np.ndarray:
        """The complex gain at every symbol from the frame's symbols ``s`` (known ones: ``known_sym``)."""
        return self.at(self.grid_gain(s, known_sym))


def _make_tracker(n_sym: int, known: np.ndarray, span: float) -> _Tracker:
    known = np.asarray(known)
    bin_id = known // _BIN
    uniq, inv, counts = np.unique(bin_id, return_inverse=True, return_counts=True)
    centres = np.bincount(inv, weights=known.astype(np.float64)) / counts
    grid = np.arange(0, n_sym + _BIN, _BIN, dtype=np.float64)
    grid[-1] = max(grid[-1], n_sym - 1)
    d = centres[None, :] - grid[:, None]
    k = counts[None, :] * np.exp(-0.5 * (d / span) ** 2)
    s0, s1, s2 = k.sum(1), (k * d).sum(1), (k * d * d).sum(1)
    det = s0 * s2 - s1 * s1
    tiny = det <= 1e-9 * s0 * s2 + 1e-300
    det = np.where(tiny, 1.0, det)
    op = k * (s2[:, None] - s1[:, None] * d) / det[:, None]
    # Where local-linear is ill-conditioned (one bin in reach), fall back to local-constant.
    op[tiny] = (k[tiny] / s0[tiny, None])
    # Rows of the interpolated operator at every symbol position.
    pos = np.arange(n_sym, dtype=np.float64)
    j = np.clip(np.searchsorted(grid, pos, side="right") - 1, 0, grid.size - 2)
    frac = ((pos - grid[j]) / (grid[j + 1] - grid[j]))[:, None]
    q = op[j] * (1 - frac) + op[j + 1] * frac          # (n_sym, n_bins)
    penalty = (q * q / counts[None, :]).sum(1)
    qk = q[known]
    n = known.size
    tr = float(np.sum(qk[np.arange(n), inv] / counts[inv]))
    fro = float(penalty[known].sum())
    op_t = np.ascontiguousarray(op.T)
    for a in (op_t, grid, known, inv, counts, penalty):
        a.setflags(write=False)
    return _Tracker(n_sym, known, inv, counts, op_t, grid, (n, tr, fro), penalty)


@lru_cache(maxsize=32)
def _cached_tracker(n_sym: int, known_key: bytes, span: float) -> _Tracker:
    return _make_tracker(n_sym, np.frombuffer(known_key, dtype=np.int64), span)


def tracker(n_sym: int, known: np.ndarray, span: float) -> _Tracker:
    """The (cached) gain/phase smoother for ``n_sym`` symbols with pilots at ``known``."""
    return _cached_tracker(int(n_sym), np.ascontiguousarray(known, dtype=np.int64).tobytes(), float(span))


# ---------------------------------------------------------------------------------------------------
# Per-frame layout facts the receiver needs (cached)
# ---------------------------------------------------------------------------------------------------

def _known(fmt: FrameFormat, header: FrameHeader) -> tuple[np.ndarray, np.ndarray]:
    """Known (positions, symbols) of a decoded frame, cached apart from the header's own symbols."""
    pos, sym, hdr_slots = _known_template(fmt, header.payload_len, header.d_len, header.tagged)
    sym = sym.copy()
    sym[hdr_slots] = fmt.header_to_symbols(header)
    return pos, sym


@lru_cache(maxsize=32)
def _known_template(fmt: FrameFormat, payload_len: int, d_len: int, tagged: bool = False):
    proto = FrameHeader(counter=0, payload_len=payload_len, d_len=d_len, version=VERSION_AUTH if tagged else VERSION)
    pos, sym = known_symbols(proto, fmt)
    hdr_slots = np.searchsorted(pos, fmt.layout_of(proto).header)
    for arr in (pos, sym, hdr_slots):
        arr.setflags(write=False)
    return pos, sym, hdr_slots


@dataclass(frozen=True)
class _HeaderPlan:
    """Known symbols usable before the header is decoded: preamble and header-region pilots."""

    n_sym: int
    known_pos: np.ndarray
    known_sym: np.ndarray
    header_pos: np.ndarray


@lru_cache(maxsize=8)
def _header_plan(fmt: FrameFormat) -> _HeaderPlan:
    lay = fmt.layout(0, 0)
    n_sym = fmt.preamble_len + fmt.header_region_len()
    pil = lay.pilots[lay.pilots < n_sym]
    pos = np.concatenate([np.arange(fmt.preamble_len), pil])
    sym = np.concatenate([fmt.preamble, fmt.pilot_symbols(pil.size)])
    return _HeaderPlan(n_sym, pos, sym, lay.header)


# ---------------------------------------------------------------------------------------------------
# The synchroniser
# ---------------------------------------------------------------------------------------------------

@dataclass
class _Candidate:
    peak: int        # absolute det index of the last preamble symbol
    cfo0: float
    metric: float


@dataclass
class _Pending:
    cand: _Candidate
    cfo: float
    t0: float        # absolute raw position of the first preamble symbol
    header: FrameHeader
    end: int         # absolute raw index needed before phase 2 can run
    y: np.ndarray    # matched-filter output of the header window
    a: int           # its first raw sample (absolute); also the de-rotation phase reference
    b: int           # its end
    res_cfo: float   # residual CFO measured after timing (left to the tracker)


@dataclass
class FinishJob:
    """Everything the second stage (:class:`FrameFinisher`) needs of a frame whose header decoded:
    picklable, with no reference to the stream's buffers (it may be finished in another process)."""

    header: FrameHeader
    metric: float            # detection metric ρ
    cfo: float               # CFO (cycles per symbol) the header window was de-rotated by
    res_cfo: float           # residual CFO measured after timing
    t0: float                # absolute raw position of the first preamble symbol
    a: int                   # first raw sample of the header window; the de-rotation phase reference
    head: np.ndarray         # matched-filter output of the header window, up to its last complete sample
    rest_start: int          # absolute raw index of ``rest_raw[0]``
    rest_raw: np.ndarray     # raw samples from ``rest_start`` to the end of the frame (and margin)
    head_raw: np.ndarray | None = None   # raw samples from ``a`` to ``rest_start`` (DC/IQ correction on)
    dc_removed: complex = 0j             # the blind DC estimate already subtracted from these raw samples


@dataclass
class _Aligned:
    """A frame's symbols after timing and tracking (:meth:`FrameFinisher._align`)."""

    s: np.ndarray            # symbols (complex64), de-rotated
    g: np.ndarray            # tracked gain on the tracker's grid
    tau0: float              # first symbol's instant in the filtered window (samples from ``a``)
    step_len: float          # samples per symbol
    cfo: float               # total CFO estimate, cycles per symbol
    rot: np.ndarray          # the symbol-rate rotation applied to ``s``
    k_all: np.ndarray        # symbol indices


class FrameFinisher:
    """Second stage of the synchroniser: one decoded header's frame → :class:`SyncedFrame`.

    Frames must be finished in stream order: the sample-rate offset measured on one frame is the
    starting point of the next (``_step``).
    """

    def __init__(self, pulse: PulseShape = PulseShape(), fmt: FrameFormat = DEFAULT_FORMAT,
                 config: SyncConfig = SyncConfig(), taps=None):
        self.fmt = fmt
        self.cfg = config
        self.sps = pulse.sps
        self.taps = np.asarray(pulse.taps if taps is None else taps, dtype=np.float64)
        if self.taps.size % 2 != 1:
            raise ValueError("matched-filter taps must have odd length")
        self.delay = (self.taps.size - 1) // 2
        self._taps32 = self.taps.astype(np.float32)
        self._kappa, self._kappa_soft = _pulse_slopes(tuple(self.taps), self.sps)
        self._timing_plans: dict[tuple, tuple] = {}
        self._step = float(self.sps)   # samples per symbol as received (tracks the sample-rate offset)
        self._corr: tuple[complex, complex] | None = None   # DC/IQ correction (w, c) in force
        self._leak = 0j          # TX carrier leakage in force: a constant on the symbols, in units of the gain h
        self._iq_plans: dict[tuple, tuple] = {}
        self._taps_sum = float(np.sum(self.taps))
        self.frames = 0
        warm_up()

    def _timing_plan(self, hdr: FrameHeader, n_sym: int, kpos: np.ndarray):
        """(symbol indices, timing-segment starts, timing-detector slope per symbol) of a frame layout."""
        key = (hdr.payload_len, hdr.d_len, hdr.tagged)
        plan = self._timing_plans.get(key)
        if plan is None:
            is_known = np.zeros(n_sym, dtype=bool)
            is_known[kpos] = True
            seg_starts = np.linspace(0, n_sym, max(2, n_sym // 256) + 1).astype(np.int64)[:-1]
            plan = self._timing_plans[key] = (np.arange(n_sym), seg_starts,
                                              np.where(is_known, self._kappa, self._kappa_soft))
        return plan

    def finish(self, job: FinishJob) -> SyncedFrame:
        """Timing drift, gain/phase tracking, DC/IQ correction, equaliser, MER and the payload of a
        decoded frame."""
        sps, fmt, hdr = self.sps, self.fmt, job.header
        lay = fmt.layout_of(hdr)
        n_sym = lay.postamble.stop
        kpos, ksym = _known(fmt, hdr)
        trk = tracker(n_sym, kpos, self.cfg.track_span)
        a, m = job.a, self.delay
        iq = self.cfg.iq_correction and job.head_raw is not None
        corr = self._corr if iq else None
        raw = np.concatenate([job.head_raw, job.rest_raw]) if iq else None
        if corr is not None:
            raw = self._corrected(raw, corr)
            y = derotate_filter(raw, 0, job.cfo / sps, self._taps32)
        else:
            # Extend the header window's filter output to the whole frame (same de-rotation).
            rest = _filtered_window(job.rest_raw, job.rest_start, job.cfo, a, sps, self._taps32)
            y = np.concatenate([job.head, rest[m:]])
        al = self._leak_removed(self._align(job, y, hdr, n_sym, kpos, ksym, trk), kpos, ksym, trk)
        if iq:
            fit = self._fit_iq(raw, job, al, lay, kpos, ksym, trk)
            if fit is not None:
                new = self._compose(corr, fit)
                if new is not None:
                    corr = self._corr = new
                    raw = self._corrected(np.concatenate([job.head_raw, job.rest_raw]), corr)
                    y = derotate_filter(raw, 0, job.cfo / sps, self._taps32)
                    al = self._leak_removed(self._align(job, y, hdr, n_sym, kpos, ksym, trk), kpos, ksym, trk)
        s, g, tau0, step_len, cfo = al.s, al.g, al.tau0, al.step_len, al.cfo
        h = trk.at(g)
        if self.cfg.equalizer_taps:
            x_known = np.zeros(n_sym, dtype=np.complex128)
            x_known[kpos] = ksym
            s = self._equalise(s / h, lay, x_known)
            h = trk.apply(s, ksym)
        resid = s[kpos] - h[kpos] * ksym
        sigma2 = snr_from_residuals(resid, *trk.dof_known)
        pay = lay.payload
        sel = pay if pay.size else al.k_all
        gain2 = float(np.mean(np.abs(h[sel]) ** 2))
        pen = float(np.mean(trk.penalty[sel]))
        noise_var = sigma2 * (1 + pen) / max(gain2, 1e-30)
        z = s / h
        sro = step_len / sps - 1
        # The sample-rate offset is a property of the channel: start the next frame from it.
        self._step = float(sps * (1 + 0.5 * (self._step / sps - 1) + 0.5 * sro)) if self.frames else step_len
        frame = SyncedFrame(
            header=hdr, payload=z[pay].astype(np.complex64), noise_var=float(noise_var),
            mer_db=float(-10 * np.log10(max(noise_var, 1e-30))),
            snr_db=float(10 * np.log10(gain2 / max(sigma2, 1e-30))),
            cfo=float(cfo), sro_ppm=float(sro * 1e6),
            timing=float((a + tau0) % 1.0), gain=float(np.sqrt(gain2)), start=float(a + tau0),
            metric=job.metric)
        if corr is not None or job.dc_removed:
            w, c = corr if corr is not None else (0j, 0j)
            c = c + job.dc_removed          # what the stream's blind DC removal took first, too
            if corr is not None:
                frame.image_rejection_db = float(-10 * np.log10(max(abs(w) ** 2, 1e-30)))
            frame.dc_dbc = float(10 * np.log10(max(abs(c) ** 2 * sps * sps / max(gain2, 1e-30), 1e-30)))
        if self._leak:
            frame.tx_leak_dbc = float(20 * np.log10(abs(self._leak)))
        if hdr.d_len:
            llr = qpsk_llr(z[lay.d_block], max(noise_var, 1e-6))
            frame.d_values, frame.d_ok = fmt.decode_d(llr, hdr.d_len)
            frame.d_llr = llr.astype(np.float32)
        if hdr.tagged:
            frame.tag, frame.tag_ok = fmt.decode_tag(z[lay.tag_block].real)
        self.frames += 1
        return frame

    def _align(self, job: FinishJob, y: np.ndarray, hdr: FrameHeader, n_sym: int, kpos, ksym, trk) -> _Aligned:
        """Timing drift and gain/phase tracking on ``y``, the matched-filter output of the frame's raw
        samples from ``job.a`` (de-rotated by ``job.cfo``)."""
        sps = self.sps
        tau0 = job.t0 - job.a
        step_len = self._step
        k_all, seg_starts, slopes = self._timing_plan(hdr, n_sym, kpos)
        cfo = job.cfo + job.res_cfo
        rot = rotator(n_sym, job.res_cfo)

        def sample(tau0, step_len):
            s, d = _INTERP(y, tau0 + k_all * step_len, deriv=True)
            return s * rot, d * rot

        s, d = sample(tau0, step_len)
        g = trk.grid_gain(s, ksym)
        # Any phase ramp left (residual CFO) would bend the local-linear tracker: remove the
        # straight-line fit of the tracked phase and track again.
        slope = phase_ramp(g, trk.grid)
        if abs(slope) * n_sym > 0.02:
            extra = rotator(n_sym, slope / (2 * np.pi))
            rot = rot * extra
            s, d = s * extra, d * extra
            g = trk.grid_gain(s, ksym)
            cfo += slope / (2 * np.pi)
        for it in range(self.cfg.timing_iterations):
            # Timing error at every symbol, with the current equalised symbols standing in for the
            # unknown ones (h·(s/h) = s): their ISI then cancels pairwise like that of known neighbours.
            hx = s.copy()
            hx[kpos] = trk.at(g, kpos) * ksym
            e = (np.conj(hx) * d).real
            w = hx.real * hx.real + hx.imag * hx.imag
            w_seg = np.add.reduceat(w, seg_starts)
            c_seg = np.add.reduceat(w * k_all, seg_starts) / w_seg
            d_seg = np.add.reduceat(e, seg_starts) / np.add.reduceat(w * slopes, seg_starts)
            # Weighted LS line δ(k) = α + βk through the segment estimates.
            sw = w_seg.sum()
            cm = np.sum(w_seg * c_seg) / sw
            dm = np.sum(w_seg * d_seg) / sw
            beta = np.sum(w_seg * (c_seg - cm) * (d_seg - dm)) / np.sum(w_seg * (c_seg - cm) ** 2)
            alpha = float(np.clip(dm - beta * cm, -sps / 2, sps / 2))
            beta = float(np.clip(beta, step_len - sps * (1 + self.cfg.max_sro),
                                 step_len - sps * (1 - self.cfg.max_sro)))
            tau0 -= alpha
            step_len -= beta
            delta = alpha + beta * k_all
            small = max(abs(alpha), abs(alpha + beta * (n_sym - 1))) <= TAYLOR_MAX
            if small:
                # Small corrections: a first-order Taylor step instead of interpolating again.
                s = s - delta * d
            else:
                s, d = sample(tau0, step_len)
            g = trk.grid_gain(s, ksym)
            if small:
                break
        return _Aligned(s, g, tau0, step_len, cfo, rot, k_all)

    # -- the transmitter's carrier leakage -------------------------------------------------------------
    #: Rounds of (remove the leak, track the gain, fit the leak's remainder): the tracker's bias shrinks by
    #: about |d|·|x̄| a round, so a leak as strong as the signal converges in four.
    LEAK_ITERATIONS = 4

    def _leak_removed(self, al: _Aligned, kpos, ksym, trk) -> _Aligned:
        """``al`` with the transmitter's carrier leakage removed from its symbols.

        The TX LO leaks a tone at the transmitter's DC: it crosses the channel with the signal, so after the
        carrier offset is removed it is a constant d on the symbols, in units of the tracked gain h
        (s = h·(x + d) + noise) — at any CFO, where the receiver's own DC (:meth:`_fit_iq`) is a tone at −CFO.
        d is a property of the transmitter at its gain: the estimate in force (``_leak``) is subtracted from the
        symbols as they came (with the gain tracked so far), the gain tracked again on what is left, and the
        residuals s − h·x at every known symbol regressed on h, in rounds; the estimate is
        updated when the fit explains ``iq_update_share`` of their energy and far more than noise alone would
        (2 real parameters: 25·σ² is never reached by chance). Left in, a leak 30 dB below the signal limits
        the MER to ~27 dB at 30 dB SNR.
        """
        if not self.cfg.tx_leak_correction:
            return al
        s0, g = al.s, al.g
        d = self._leak
        s = s0
        for it in range(self.LEAK_ITERATIONS):
            if d:
                # Track the gain on the symbols without the leak: with it, the tracker's bins take h·d·x̄*
                # (x̄ the known symbols' local mean) for gain — a bias no fit on the known symbols sees.
                s = (s0 - trk.at(g) * np.complex64(d)).astype(np.complex64)
                g = trk.grid_gain(s, ksym)
            hk = trk.at(g, kpos)
            e = s[kpos] - hk * ksym
            hh = float(np.vdot(hk, hk).real)
            energy = float(np.vdot(e, e).real)
            if hh <= 0 or energy <= 0:
                break
            dd = complex(np.vdot(hk, e)) / hh
            gain = abs(dd) ** 2 * hh
            if gain < self.cfg.iq_update_share * energy or gain < 25 * (energy - gain) / kpos.size:
                if not d or it >= 2:
                    break        # nothing (more) to find; the gain tracked once more on the corrected symbols
                continue
            d += dd
        if d:
            s = (s0 - trk.at(g) * np.complex64(d)).astype(np.complex64)
            g = trk.grid_gain(s, ksym)
        self._leak = complex(d)
        # What is left of a constant on this frame's symbols — too small to update the estimate carried to the
        # next frames, or this frame's share of a DC that a small carrier offset turns against the leak from
        # frame to frame (the two are one within a frame) — is removed for this frame only: one complex
        # parameter fitted on all its known symbols costs ~0.02 dB, a residual left below the gate up to 0.3 dB.
        hk = trk.at(g, kpos)
        hh = float(np.vdot(hk, hk).real)
        if hh > 0:
            rest = complex(np.vdot(hk, s[kpos] - hk * ksym)) / hh
            s = (s - trk.at(g) * np.complex64(rest)).astype(np.complex64)
            g = trk.grid_gain(s, ksym)
        return _Aligned(s, g, al.tau0, al.step_len, al.cfo, al.rot, al.k_all)

    # -- DC offset and IQ imbalance ----------------------------------------------------------------
    @staticmethod
    def _corrected(raw: np.ndarray, corr: tuple[complex, complex]) -> np.ndarray:
        """r − w·conj(r) − c: the image and the DC removed from raw samples."""
        w, c = corr
        return (raw - np.complex64(w) * np.conj(raw) - np.complex64(c)).astype(np.complex64)

    @staticmethod
    def _compose(corr, fit) -> tuple[complex, complex] | None:
        """The correction r → r − w·conj(r) − c followed by the residual one ``fit`` = (Δw, Δc), to first
        order in Δw (the leftover scale 1 + Δw·conj(w) is a gain the tracker takes); None when the image
        coefficient would exceed 0.3 (10 dB image rejection: no receiver is that poor, a bad fit is)."""
        w, c = corr if corr is not None else (0j, 0j)
        dw, dc = fit
        w, c = w + dw, c + dc - dw * np.conj(c)
        return (complex(w), complex(c)) if abs(w) <= 0.3 else None

    def _fit_iq(self, raw, job: FinishJob, al: _Aligned, lay, kpos, ksym, trk) -> tuple[complex, complex] | None:
        """Least-squares (Δw, Δc) of the image and DC left in ``raw`` (the frame's raw samples from
        ``job.a``, corrected as far as known), from the preamble and the postamble; None unless the fit
        removes ``iq_update_share`` of their residual energy, and far more than noise alone would.

        Residuals e = s − h·x are regressed on v, the same chain (de-rotation, matched filter,
        interpolation at the frame's symbol instants, symbol-rate rotation) applied to conj(raw) —
        the image exactly, ISI and the filter's attenuation at the image's frequency included — and on
        u, the chain's response to a constant: H(f)·e^{−2πj·f·t}·rot (f = CFO per sample, H the matched
        filter's response there). Only the two contiguous QPSK blocks are used (159 symbols: the image
        to −50 dB at 30 dB SNR, on ~900 filtered samples): at a small CFO the image of the header's BPSK
        symbols is a multiple of themselves, which the gain tracker has already taken.
        """
        sps, m, half = self.sps, self.delay, _INTERP.half
        f = job.cfo / sps
        npre, post = self.fmt.preamble_len, lay.postamble
        key = (post.start, post.stop)
        if key not in self._iq_plans:
            self._iq_plans[key] = (np.concatenate([np.arange(npre), np.arange(post.start, post.stop)]),
                                   np.concatenate([self.fmt.preamble, ksym[-(post.stop - post.start):]]))
        pos, x = self._iq_plans[key]
        t = al.tau0 + pos * al.step_len
        v = np.empty(pos.size, np.complex64)
        for sel in (slice(0, npre), slice(npre, None)):
            ts = t[sel]
            lo = max(0, int(ts[0]) - half - m - 2)
            hi = min(raw.size, int(ts[-1]) + half + m + 3)
            v[sel] = np.conj(_INTERP(derotate_filter(raw[lo:hi], lo, -f, self._taps32), ts - lo))
        vv, ve, uu, ue, vu, energy, hf = iq_fit_sums(al.s[pos], trk.at(al.g, pos), x, v, al.rot[pos], t, f,
                                                     self.taps)
        # Normal equations of [v u]·θ = e (u left out where the matched filter all but removes DC).
        if abs(hf) > 0.1 * self._taps_sum:
            det = vv * uu - abs(vu) ** 2
            if det <= 1e-9 * vv * uu:
                return None
            dw = (uu * ve - vu * ue) / det
            dc = (vv * ue - np.conj(vu) * ve) / det
            gain = float((np.conj(dw) * ve + np.conj(dc) * ue).real)
        else:
            if vv <= 0:
                return None
            dw, dc = ve / vv, 0j
            gain = float((np.conj(dw) * ve).real)
        # Noise alone: gain ≈ σ²·χ²₄/2 (2 complex parameters); 25·σ² is never reached by chance.
        if gain < self.cfg.iq_update_share * energy or gain < 25 * (energy - gain) / pos.size:
            return None
        return complex(dw), complex(dc)

    def _equalise(self, u, lay, x_known):
        """T-spaced LS FIR trained on the contiguous known blocks, applied to gain-normalised symbols."""
        n = self.cfg.equalizer_taps
        c = n // 2
        head = np.arange(c, self.fmt.preamble_len + self.fmt.header_region_len())
        tail = np.arange(lay.postamble.start, lay.postamble.stop - c)
        train = np.concatenate([head, tail])
        cols = sliding_window_view(np.pad(u, c), n)[train][:, ::-1]
        w, *_ = np.linalg.lstsq(cols, x_known[train], rcond=None)
        return np.convolve(u, w, mode="same")


class StreamSync:
    """Streaming synchroniser: push aligned (detection-filtered, raw) chunks, get frames back.

    Detection and header decoding run here; the rest of each frame in ``finisher`` (a
    :class:`FrameFinisher`), or, with ``defer_finish``, by the caller: ``push`` then returns a
    :class:`FinishJob` in the frame's place (``radio.sync_process`` finishes them in another process).

    ``det[n]`` must be the detection filter's output whose centre tap sits on ``raw[n − delay]``, delay
    the matched filter's ((len(taps) − 1)/2, ``pulse.delay`` for the pulse's own taps): GNU Radio's
    ``fir_filter_ccf(1, detection_taps(pulse))``, or :func:`detection_filter`. (The matched filter's own
    output also works, with a narrower CFO range: its detection metric at 5 dB falls below threshold
    one time in six at |CFO| = 0.5.)
    """

    def __init__(self, pulse: PulseShape = PulseShape(), fmt: FrameFormat = DEFAULT_FORMAT,
                 config: SyncConfig = SyncConfig(), taps=None, defer_finish: bool = False):
        self.pulse = pulse
        self.fmt = fmt
        self.cfg = config
        self.sps = pulse.sps
        self.finisher = FrameFinisher(pulse, fmt, config, taps)
        self.defer_finish = defer_finish
        self.taps, self.delay, self._taps32 = self.finisher.taps, self.finisher.delay, self.finisher._taps32
        self._kappa = self.finisher._kappa
        pre = fmt.preamble
        self._npre = pre.size
        diff = pre[1:] * np.conj(pre[:-1])
        n = self._npre
        # The detector's correlator taps conj(d_t) as powers of j (a QPSK preamble's are exactly).
        quarter = np.rint(np.angle(np.conj(diff)) / (np.pi / 2)).astype(np.int64) % 4
        if not np.allclose(1j ** quarter, np.conj(diff), atol=1e-5):
            raise ValueError("the preamble must be QPSK: its differential sequence is a power of j")
        self._quarter = quarter
        self._conj_pre = np.conj(pre).astype(np.complex64)
        # DFT rows at 9 frequencies within ±0.04 cycles per symbol (the alias test of _preamble_cfo).
        self._coarse_rows = np.exp(-2j * np.pi * np.outer(np.linspace(-0.04, 0.04, 9), np.arange(n))).astype(np.complex64)
        self._span = (n - 2) * self.sps             # correlator span − 1 (samples)
        self._win = (n - 1) * self.sps             # energy window (samples)
        self._hist = self._win + self.sps + 8       # det history needed before the scan point
        self._margin = self.delay + _INTERP.half + 3 * self.sps + 4
        self._det = np.zeros(0, dtype=np.complex64)
        self._raw = np.zeros(0, dtype=np.complex64)
        self._base = 0          # absolute index of _det[0] / _raw[0]
        self._scan = 0          # absolute det index from which peaks are still undecided
        self._queue: list[_Candidate] = []
        self._pending: _Pending | None = None
        self._busy_until = -1   # absolute det index: no new frame starts before it
        self.stats = SyncStats()
        # Blind DC removal (blind_dc): block sums of raw, the smoothed mean and power, whether it is applied.
        self._dc_gain = np.complex64(np.sum(detection_taps(pulse)))
        self._dc, self._dc_power, self._dc_blocks, self._dc_on = 0j, 0.0, 0, False
        self._dc_sum, self._dc_sq, self._dc_n = 0j, 0.0, 0
        self._dc_applied: dict[int, complex] = {}   # block index → the DC subtracted from it (applied blocks)

    # -- streaming ---------------------------------------------------------------------------------
    def push(self, det: np.ndarray, raw: np.ndarray) -> list:
        """Add aligned samples (``det``: the detection filter's output for ``raw``); returns the
        :class:`SyncedFrame`/:class:`DroppedFrame` completed."""
        det = np.asarray(det, dtype=np.complex64)
        raw = np.asarray(raw, dtype=np.complex64)
        if det.shape != raw.shape:
            raise ValueError("det and raw chunks must have the same length")
        if self.cfg.blind_dc and not self._flushing:
            det, raw = self._remove_dc(det, raw)
        self._det = np.concatenate([self._det, det])
        self._raw = np.concatenate([self._raw, raw])
        self.stats.samples += det.size
        # Candidates waiting from earlier pushes go first: a decoded header moves the scan past its
        # frame. Detection stops at each new candidate for the same reason, and goes on at once
        # when the candidate came to nothing; a candidate still waiting for samples ends the push.
        out = self._process()
        while not self._queue and self._detect():
            if self._queue:
                out += self._process()
        self._trim()
        return out

    def flush(self) -> list:
        """End of stream: zero-pad so the last frame can complete, return what is left."""
        pad = np.zeros(self._needed_tail(), dtype=np.complex64)
        samples = self.stats.samples
        self._flushing = True
        try:
            out = self.push(pad, pad) if pad.size else []
        finally:
            self._flushing = False
        self.stats.samples = samples
        return out

    # -- blind DC removal ----------------------------------------------------------------------------
    #: Samples per block of the DC estimate (counted from the stream's start: the same for any chunking).
    DC_BLOCK = 4096
    #: Smoothing of the block means (≈ 16 blocks, 65 ms at 1 MS/s; the first blocks are averaged evenly).
    DC_ALPHA = 1 / 16
    #: Applied once the DC holds this share of the power of what varies (−10 dB), until it falls below 0.03.
    DC_ON, DC_OFF = 0.1, 0.03
    _flushing = False

    def _remove_dc(self, det: np.ndarray, raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Subtract the receiver's DC offset from both streams while it is near or above the signal's level.

        A weak signal (a strongly attenuated transmitter, a low RX gain) can sit below the radio's residual DC;
        the detector's differential correlation and the header decoding then fail before the finisher's DC fit
        (:meth:`FrameFinisher._fit_iq`) ever runs. The DC is the smoothed mean of whole blocks of ``DC_BLOCK``
        samples (from absolute sample 0, so every chunking gives the same result), subtracted from ``raw``
        and, through the detection filter's DC gain, from ``det`` — only while it holds at least ``DC_ON`` of
        the power of the rest (hysteresis down to ``DC_OFF``): a DC 10 dB or more below the signal is left to
        the finisher's exact fit, so this never adds a block mean's noise to a clean signal. Frames
        synchronised while it is applied carry it in :attr:`FinishJob.dc_removed`.
        """
        n = raw.size
        if n == 0:
            return det, raw
        raw, det = raw.copy(), det.copy()
        i = 0
        first = self._base + self._raw.size         # absolute index of raw[0]
        while i < n:
            k = min(n - i, self.DC_BLOCK - self._dc_n)
            seg = raw[i:i + k].astype(np.complex128)       # before the correction: the estimate sees the raw DC
            self._dc_sum += complex(seg.sum())
            self._dc_sq += float(np.vdot(seg, seg).real)
            if self._dc_on:
                raw[i:i + k] -= np.complex64(self._dc)
                det[i:i + k] -= self._dc_gain * np.complex64(self._dc)
                self._dc_applied[(first + i) // self.DC_BLOCK] = complex(np.complex64(self._dc))
            self._dc_n += k
            i += k
            if self._dc_n == self.DC_BLOCK:
                a = max(self.DC_ALPHA, 1.0 / (self._dc_blocks + 1))
                self._dc += a * (self._dc_sum / self.DC_BLOCK - self._dc)
                self._dc_power += a * (self._dc_sq / self.DC_BLOCK - self._dc_power)
                self._dc_blocks += 1
                ac = max(self._dc_power - abs(self._dc) ** 2, 1e-30)
                share = abs(self._dc) ** 2 / ac
                self._dc_on = share >= (self.DC_OFF if self._dc_on else self.DC_ON)
                self._dc_sum, self._dc_sq, self._dc_n = 0j, 0.0, 0
        return det, raw

    def _needed_tail(self) -> int:
        end = self._base + self._det.size
        need = self._win + 2 * self.sps
        if self._pending is not None:
            need = max(need, self._pending.end - end)
        for c in self._queue:
            t0 = c.peak - (self._npre - 1) * self.sps - self.delay
            need = max(need, int(t0 + self._header_end_rel()) - end)
        return max(0, int(need) + 16)

    # -- detection ---------------------------------------------------------------------------------
    def _detect(self) -> bool:
        """Scan one block from ``_scan``; True when called for again (a new candidate, or more to scan).

        Blocks of ``SCAN_BLOCK`` samples: in a continuous stream the next preamble follows a frame's
        end closely, and the correlator stops at the first detection (see :meth:`push`), so most of a
        block is never correlated.
        """
        sps, base = self.sps, self._base
        end = base + self._det.size
        start = max(self._scan, base + self._hist)
        if end - start < 2 * sps + 1:
            return False
        stop = min(end, start + SCAN_BLOCK)
        more = stop < end
        lo = start - self._win - base          # buffer index of the first z needed
        abs0 = base + lo + self._span          # absolute det index of correlator output 0
        a, j, rho, c = scan_preamble(self._det, lo, stop - base, sps, self._quarter, (self._npre - 1) / sps,
                                     self.cfg.detect_threshold, start - abs0, 3 * sps)
        if a < 0:
            self._scan = stop - 1              # the block's last output was one sample before its end
            return more
        if j < 0:
            self._scan = abs0 + a
            return more
        self.stats.detections += 1
        self._queue.append(_Candidate(abs0 + j, float(np.angle(c) / (2 * np.pi)), float(rho)))
        self._scan = abs0 + j + 2 * sps + 1
        return True

    # -- frame processing --------------------------------------------------------------------------
    def _header_end_rel(self) -> float:
        return _header_plan(self.fmt).n_sym * self.sps + self._margin

    def _process(self) -> list:
        out = []
        end = self._base + self._raw.size
        while True:
            if self._pending is not None:
                if self._pending.end > end:
                    return out
                job, self._pending = self._job(self._pending), None
                if self.defer_finish:
                    out.append(job)
                else:
                    out.append(self.finisher.finish(job))
                    self.stats.frames += 1
                continue
            if not self._queue:
                return out
            cand = self._queue[0]
            if cand.peak < self._busy_until:
                self._queue.pop(0)
                continue
            t0 = cand.peak - (self._npre - 1) * self.sps - self.delay
            if t0 + self._header_end_rel() > end:
                return out
            self._queue.pop(0)
            res = self._start(cand)
            if isinstance(res, DroppedFrame):
                out.append(res)
            elif res is not None:
                self._pending = res

    def _job(self, p: _Pending) -> FinishJob:
        m, base = self.delay, self._base
        head_raw = self._raw[p.a - base:p.b - 2 * m - base].copy() if self.cfg.iq_correction else None
        return FinishJob(p.header, p.cand.metric, p.cfo, p.res_cfo, p.t0, p.a, p.y[:p.b - m - p.a],
                         p.b - 2 * m, self._raw[p.b - 2 * m - base:p.end - base].copy(), head_raw,
                         dc_removed=self._dc_applied.get(int(p.a) // self.DC_BLOCK, 0j))

    def _window(self, a: int, b: int, cfo: float, ref: int) -> np.ndarray:
        """Raw samples [a, b) (absolute) through :func:`_filtered_window`."""
        return _filtered_window(self._raw[a - self._base:b - self._base], a, cfo, ref, self.sps, self._taps32)

    def _preamble_cfo(self, t0: int, cfo0: float) -> tuple[float, float]:
        """(CFO, coherent confirmation metric) of the preamble whose first symbol is at raw sample ``t0``,
        given ∠C's estimate ``cfo0`` (cycles per symbol, modulo 1).

        Each alias cfo0 + k within ±``cfo_search`` de-rotates the preamble's raw samples before the
        matched filter, and at the symbol instants (integer samples: the timing is refined later) the
        modulation is stripped. The true alias passes the signal through the matched
        filter; one a cycle away leaves it in the filter's roll-off only, so the alias with the
        strongest coherent sum (at a few frequencies within ±0.04 cycles per symbol: ∠C's error) is
        chosen, and the peak of its zero-padded DFT within ±0.05 refines the CFO.
        """
        sps, npre, m = self.sps, self._npre, self.delay
        lo = t0 - m - self._base
        x = self._raw[lo:lo + (npre - 1) * sps + 2 * m + 1]
        conj_pre = self._conj_pre
        lim = self.cfg.cfo_search
        best, best_u, best_f = -1.0, None, 0.0
        for k in range(-int(np.ceil(lim)) - 1, int(np.ceil(lim)) + 2):
            f = cfo0 + k
            if abs(f) > lim + 0.05:
                continue
            u = derotate_filter(x, 0, f / sps, self._taps32)[m:m + npre * sps:sps] * conj_pre
            power = float(np.max(np.abs(self._coarse_rows @ u)))
            if power > best:
                best, best_u, best_f = power, u, f
        dcfo, peak = _tone_frequency(best_u, reach=int(0.05 * 2048), with_peak=True)
        return best_f + dcfo, peak / (npre * float(np.vdot(best_u, best_u).real) + 1e-30)

    def _start(self, cand: _Candidate):
        """Fine CFO, confirmation, timing on the preamble and header decoding."""
        sps, npre = self.sps, self._npre
        s0 = cand.peak - (npre - 1) * sps                # mf index of the first preamble symbol
        if s0 - self._base < 0:
            self.stats.truncated += 1
            return None
        pre = self.fmt.preamble
        plan = _header_plan(self.fmt)
        t0 = float(s0 - self.delay)
        a = int(t0) - self._margin
        b = int(t0) + plan.n_sym * sps + self._margin
        if a < self._base:
            self.stats.truncated += 1
            return None
        cfo, confirm = self._preamble_cfo(int(t0), cand.cfo0)
        if confirm < self.cfg.confirm_threshold:
            self.stats.unconfirmed += 1
            return None
        if abs(cfo) > self.cfg.max_cfo:
            # A real preamble (the coherent test passed) at an offset beyond the accepted range.
            self.stats.count_out_of_range(cfo)
            return DroppedFrame(start=t0, reason=cfo_drop_reason(self.cfg.max_cfo), metric=cand.metric,
                                snr_db=float(10 * np.log10(max(confirm, 1e-12) / max(1 - confirm, 1e-12))))
        y = self._window(a, b, cfo, a)
        tau0 = t0 - a
        tau0 = preamble_timing(y, tau0, pre, sps, self._kappa, self.cfg.timing_iterations, _INTERP.table,
                               _INTERP.dtable, _INTERP.half, _INTERP.res)
        s = _INTERP(y, tau0 + np.arange(plan.n_sym) * sps)
        # Residual CFO from the correctly timed preamble (the first estimate, taken at the integer
        # sample instants, carries a small deterministic bias from the preamble's own ISI at
        # fractional timing); removed at symbol rate, where it is far too small to upset the filter.
        res_cfo = _phase_slope(s[:npre] * np.conj(pre), lag=32)
        s *= rotator(plan.n_sym, res_cfo)
        trk = tracker(plan.n_sym, plan.known_pos, self.cfg.track_span)
        h = trk.apply(s, plan.known_sym)
        zh = s[plan.header_pos] / h[plan.header_pos]
        start = a + tau0
        try:
            header = self.fmt.decode_header(zh.real)
        except HeaderError as err:
            self.stats.header_failures += 1
            # The SNR of what was received, for the drop report (a frame's own comes from its pilots).
            resid = s[plan.known_pos] - h[plan.known_pos] * plan.known_sym
            sigma2 = snr_from_residuals(resid, *trk.dof_known)
            snr_db = float(10 * np.log10(np.mean(np.abs(h) ** 2) / max(sigma2, 1e-30)))
            return DroppedFrame(start=float(start), reason=f"header: {err}", metric=cand.metric, snr_db=snr_db)
        lay = self.fmt.layout_of(header)
        n_sym = lay.postamble.stop + min(self.fmt.guard, 4)
        end = int(start) + n_sym * sps + self._margin + int(abs(self.cfg.max_sro) * n_sym * sps) + 1
        # One transmitter: no other preamble can end inside this frame, so detection resumes at its
        # postamble (most of a continuous stream is never scanned), and candidates already queued
        # before the postamble's end (at the largest sample-rate offset accepted) are discarded.
        frame_end_det = int(start + lay.postamble.stop * sps * (1 - self.cfg.max_sro)) + self.delay - 2 * sps
        self._scan = max(self._scan, frame_end_det)
        self._busy_until = int(start + lay.postamble.stop * sps * (1 + self.cfg.max_sro)) + self.delay
        return _Pending(cand, cfo, float(start), header, end, y=y, a=a, b=b, res_cfo=res_cfo)

    def _trim(self):
        """Drop samples no longer needed (keep detection history and any frame in progress)."""
        slack = self._margin + 2 * self.sps   # the fine timing may move a frame's start back
        # A preamble whose peak is found at the scan point starts (npre − 1)·sps + delay before it.
        keep = self._scan - max(self._hist, (self._npre - 1) * self.sps + self.delay) - slack
        if self._pending is not None:
            keep = min(keep, int(self._pending.t0) - slack)
        for c in self._queue:
            keep = min(keep, c.peak - (self._npre - 1) * self.sps - self.delay - slack)
        cut = keep - self._base
        if self._dc_applied:
            self._dc_applied = {b: v for b, v in self._dc_applied.items() if (b + 1) * self.DC_BLOCK > keep}
        if cut > 65536 or (cut > 0 and cut > self._det.size // 2):
            self._det = self._det[cut:]
            self._raw = self._raw[cut:]
            self._base += cut


_warm = False


def warm_up() -> None:
    """Run one short synthetic frame through both stages, once per process.

    The compiled kernels (``radio.sync_kernels``) load from numba's on-disk cache on their first call
    in a process (~0.15 s; the first time on a machine they compile, a few seconds): done here, at
    construction, that cost stays out of the first frame of a stream. A real frame passes exactly the
    array types a stream passes, so no later call compiles again.
    """
    global _warm
    if _warm:
        return
    _warm = True
    from radio.frame import random_frames
    from radio.pulse import shape

    pulse = PulseShape()
    frames, _ = random_frames(1, 64, np.random.default_rng(0))
    raw = np.concatenate([np.zeros(1000, np.complex64), shape(frames[0], pulse), np.zeros(1000, np.complex64)])
    raw = (raw * np.exp(0.3j)).astype(np.complex64)
    sync = StreamSync(pulse)
    sync.push(detection_filter(raw, pulse), raw)
    sync.flush()


def matched_filter(raw: np.ndarray, taps: np.ndarray) -> np.ndarray:
    """What GNU Radio's ``fir_filter_ccf(1, taps)`` outputs for ``raw`` (same length, causal)."""
    return np.convolve(np.asarray(raw), taps)[: len(raw)].astype(np.complex64)


def detection_filter(raw: np.ndarray, pulse: PulseShape = PulseShape()) -> np.ndarray:
    """The ``det`` stream :class:`StreamSync` takes for raw samples ``raw``: what GNU Radio's
    ``fir_filter_ccf(1, detection_taps(pulse))`` outputs (same length, causal)."""
    return matched_filter(raw, detection_taps(pulse))


def synchronize(samples, pulse: PulseShape = PulseShape(), fmt: FrameFormat = DEFAULT_FORMAT,
                config: SyncConfig = SyncConfig(), chunk: int = 1 << 16) -> tuple[list, SyncStats]:
    """Synchronise a whole recording of raw samples; returns (frames and drops, statistics)."""
    raw = np.asarray(samples, dtype=np.complex64)
    det = detection_filter(raw, pulse)
    sync = StreamSync(pulse, fmt, config)
    out = []
    for i in range(0, raw.size, chunk):
        out += sync.push(det[i:i + chunk], raw[i:i + chunk])
    out += sync.flush()
    return out, sync.stats
