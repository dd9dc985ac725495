"""Learned parts and the codec: networks, quantiser, cipher, training, Eve's attack, datasets.

This package never imports GNU Radio. It may use `radio`'s pure-numpy QAM for the training channel.
"""
