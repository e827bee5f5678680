"""Helpers shared by the benchmark scripts: sizes on the command line and peak-memory capture."""

from __future__ import annotations

import argparse
import re
import threading
from typing import Any

import psutil

SCENARIOS: dict[str, dict[str, Any]] = {
    "simple": {
        "roots": {"video": ["audio", "frames"]},
        "leaf": {"default": ["video.audio", "video.frames"]},
    },
    "wide": {
        "roots": {
            "video": ["audio", "frames", "captions", "thumbs"],
            "sensor": ["gps", "imu", "lidar", "radar"],
        },
        # default field mapping: the same-named video field plus every sensor field
        "leaf": {
            "audio": ["sensor.gps", "sensor.imu", "sensor.lidar", "sensor.radar", "video.audio"],
            "frames": ["sensor.gps", "sensor.imu", "sensor.lidar", "sensor.radar", "video.frames"],
        },
    },
}
"""The benchmark graphs: root features and their fields, and the leaf's fields with the upstream
fields they depend on (what the default field mapping resolves to; the bounds hash these)."""


def parse_size(text: str) -> int:
    """``"100k"`` → 100_000, ``"10M"`` → 10_000_000 (for ``--sizes``)."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kKmM]?)\s*", text)
    if not m:
        raise argparse.ArgumentTypeError(f"bad size {text!r} (e.g. 100k, 1M, 10M)")
    return int(float(m.group(1)) * {"": 1, "k": 1_000, "m": 1_000_000}[m.group(2).lower()])


def fmt_size(n: int) -> str:
    """The inverse of :func:`parse_size` for round sizes (``1000000`` → ``"1M"``)."""
    if n % 1_000_000 == 0:
        return f"{n // 1_000_000}M"
    if n % 1_000 == 0:
        return f"{n // 1_000}k"
    return str(n)


def status_kb(name: str) -> int | None:
    """A ``/proc/self/status`` field in kB (``VmHWM``, ``VmRSS``), ``None`` where unavailable."""
    try:
        with open("/proc/self/status") as f:
            m = re.search(rf"{name}:\s+(\d+)", f.read())
        return int(m.group(1)) if m else None
    except OSError:
        return None


class PeakMemory:
    """Peak RSS (bytes) of this process inside a ``with`` block.

    The kernel's high-water mark ``VmHWM``, reset on entry (``/proc/self/clear_refs``); where
    that is unavailable, psutil samples the RSS every 10 ms. ``source`` says which was used.
    """

    def __init__(self, interval: float = 0.01) -> None:
        self.peak = 0
        self.source = "VmHWM"
        self._interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._proc = psutil.Process()

    def __enter__(self) -> PeakMemory:
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
            if status_kb("VmHWM") is not None:
                return self
        except OSError:
            pass
        self.source = "psutil"
        self.peak = self._proc.memory_info().rss
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(self._interval):
            self.peak = max(self.peak, self._proc.memory_info().rss)

    def __exit__(self, *exc: object) -> None:
        if self._thread is None:
            self.peak = (status_kb("VmHWM") or 0) * 1024
            return
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._proc.memory_info().rss)
