"""SNR estimation, calibration procedures and per-device profiles."""
