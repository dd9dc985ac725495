"""Signals and hardware: QAM, framing, synchronisation, channels, devices, SigMF, ZMQ.

This package never imports torch.
"""
