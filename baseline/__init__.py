"""The digital separation baseline (paper §V): source codecs (HEVC/BPG, JPEG 2000), 802.11ad LDPC, Gray QAM
and the codec → AES-128-CTR → LDPC → QAM pipeline with its AWGN simulation. No GNU Radio; images are
scored with :mod:`models.metrics` (the project's one PSNR/SSIM)."""
