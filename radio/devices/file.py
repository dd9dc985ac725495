"""Replay of a SigMF recording as a receive-only device (``file:capture.sigmf-meta``).

``rx(n)`` hands out the recording's samples in order, as fast as asked (pace it downstream if
needed), then an empty block with ``end_of_stream`` set. The recording's sample rate must equal
``settings.sample_rate_hz`` (refused otherwise: replaying at the wrong rate would silently break
timing); the centre frequency is taken from the recording. There are no overflows in a file.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from radio.devices.base import Chunk, Device, RadioSettings
from radio.devices.uri import DeviceUri
from jscec.errors import UserError
from radio.recording import open_recording


class FileDevice(Device):
    kind = "file"
    can_tx = False

    def __init__(self, uri: DeviceUri, settings: RadioSettings):
        super().__init__(uri, settings)
        self.recording = open_recording(Path(uri.target).expanduser())
        self._pos = 0

    def configure(self) -> None:
        rate = self.recording.sample_rate
        if abs(rate - self.settings.sample_rate_hz) > 1e-6 * rate:
            raise UserError(f"{self.uri}: recorded at {rate:g} S/s, but {self.settings.sample_rate_hz:g} S/s "
                            "was asked for")

    def start(self) -> None:
        pass

    def _read_chunk(self) -> Chunk:
        n = self.settings.buffer_size
        if self._pos >= len(self.recording):
            return Chunk(np.zeros(0, np.complex64), end_of_stream=True)
        samples = self.recording.samples(self._pos, n)  # a memmap view for cf32_le
        self._pos += samples.size
        return Chunk(samples)

    def tx(self, samples) -> None:
        raise UserError(f"{self.uri}: a recording can only be replayed (receive only)")

    def _tune(self, center_freq_hz: float) -> float:
        raise UserError(f"{self.uri}: a recording cannot be retuned (its capture segments say where it was tuned)")

    def _close(self) -> None:
        self.recording.close()

    def describe(self) -> dict:
        d = self._common_description()
        g = self.recording.global_info
        d.update(hw=str(g.get("core:hw", "recording")), path=str(self.recording.meta_path),
                 sample_rate_hz=self.recording.sample_rate, num_samples=len(self.recording))
        if self.recording.center_freq is not None:
            d["center_freq_hz"] = self.recording.center_freq
        if "jscec:device" in g:
            d["recorded_with"] = g["jscec:device"]
        return d
