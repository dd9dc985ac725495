"""Cryptography, numpy only: Z_p arithmetic, the LWE cipher and its modes, the keyed DRBG, AES-CTR,
key files, and the cut of plaintext into cipher frames under counters (``framing``). No torch, no
GNU Radio: the radio, the models and the baseline all build on it."""
