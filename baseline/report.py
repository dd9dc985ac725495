"""What a digital-baseline run prints and the choices it accepts (shared by ``jscec baseline`` and ``jscec compare``)."""
from __future__ import annotations

from jscec.errors import UserError

CODECS = ("heif", "bpg", "jpeg2000")
NOTE = "failures (any wrong bit, or no quality fits) are scored as the mean image of the train split"
NOTE_RADIO = ("failures (any wrong bit, no quality fits, or a lost frame) are scored as the mean image of the train "
              "split")


def parse_choices(codec_names, mod, rate, ldpc_iters):
    """Validate codec names, modulations, code rates and the LDPC iteration count; returns (codecs, mods, rates)."""
    from baseline.pipeline import MODULATIONS, parse_rate
    from baseline.source_codec import get_codec

    for c in codec_names:
        if c not in CODECS:
            raise UserError(f"unknown codec {c!r}: choose one of {', '.join(CODECS)}")
    mods = list(dict.fromkeys(m.lower() for m in mod))
    for m in mods:
        if m not in MODULATIONS:
            raise UserError(f"unknown modulation {m!r}: choose one of {', '.join(MODULATIONS)}")
    rates = [parse_rate(r) for r in dict.fromkeys(rate)]
    if ldpc_iters < 1:
        raise UserError(f"--ldpc-iters must be at least 1, got {ldpc_iters}")
    return [get_codec(c) for c in dict.fromkeys(codec_names)], mods, rates


def key_for_run(key_file: str | None) -> bytes:
    """The AES key of a run: read from ``key_file`` (mode 0600), or a fresh random one."""
    from crypto.aes_ctr import load_key, new_key

    return load_key(key_file) if key_file else new_key()


def table(res: dict) -> str:
    b = res["budget"]
    head = (f"{res['codec']} + AES-128-CTR + LDPC {res['rate']} + {res['mod'].upper()}: {b['symbols']} of "
            f"{b['k_symbols']} symbols, {b['codewords']} codeword(s), {b['info_bits']} info bits, "
            f"capacity {b['capacity_bytes']} bytes")
    if res["fits"]:
        head += (f"; mean payload {res['mean_payload_bytes']:.1f} B at mean quality {res['mean_quality']:.1f}; "
                 f"error-free {res['error_free']['psnr']:.2f} dB / SSIM {res['error_free']['ssim']:.3f}")
    lines = [head]
    if res["fits"] < res["images"]:
        lines.append(f"  {res['images'] - res['fits']} of {res['images']} images fit at no quality "
                     "(scored as the mean image at every SNR)")
    radio = "radio" in res
    head = f"  {'SNR dB':>7} {'PSNR dB':>8} {'SSIM':>6} {'undecodable':>12} {'undetected':>10}"
    lines.append(head + (f" {'frames rx/sent':>14} {'dropped':>7} {'MER dB':>7}" if radio else ""))
    estimated = False
    for r in res["results"]:
        snr = "n/a" if r["snr_db"] is None else f"{r['snr_db']:.2f}" + ("*" if r.get("snr_estimated") else "")
        estimated |= bool(r.get("snr_estimated"))
        line = (f"  {snr:>7} {r['psnr']:>8.2f} {r['ssim']:>6.3f} "
                f"{r['undecodable']:>6}/{r['images']:<5} {r['undetected_errors']:>10}")
        if radio:
            mer = "n/a" if r["mer_db"] is None else f"{r['mer_db']:.2f}"
            line += f" {r['frames_received']:>7}/{r['frames_sent']:<6} {r['frames_dropped']:>7} {mer:>7}"
        lines.append(line)
    if estimated:
        lines.append("  * SNR estimated by the receiver from the pilots (mean over the received frames)")
    else:
        thr = res["threshold_snr_db"]
        lines.append(f"  threshold (half of the fitting images undecodable): "
                     f"{'n/a' if thr is None else f'{thr:.2f} dB'}; mean image {res['mean_image']['psnr']:.2f} dB")
    return "\n".join(lines)
