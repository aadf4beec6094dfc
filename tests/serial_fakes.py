"""Byte-exact serial fakes shared by the bus driver tests (pytest puts tests/ on sys.path)."""

from __future__ import annotations

import time


class ScriptedLine:
    """Serial-like fake: `script[request]` is a list of replies, one consumed per write."""

    def __init__(self, script: dict[bytes, list[bytes]]):
        self.script = {k: list(v) for k, v in script.items()}
        self.written: list[bytes] = []
        self.rx = bytearray()
        self.timeout = 0.002

    def write(self, data: bytes) -> int:
        data = bytes(data)
        self.written.append(data)
        replies = self.script.get(data)
        assert replies is not None, f"unexpected request {data.hex(' ')}"
        if replies:
            self.rx += replies.pop(0)
        return len(data)

    def read(self, size: int = 1) -> bytes:
        if not self.rx:
            time.sleep(self.timeout)  # like pyserial: wait up to `timeout` for a byte
        out = bytes(self.rx[:size])
        del self.rx[:size]
        return out

    @property
    def in_waiting(self) -> int:
        return len(self.rx)

    def reset_input_buffer(self) -> None:
        self.rx.clear()

    def close(self) -> None:
        pass


def feed_chunked(scanner, stream: bytes, cuts: list[int]) -> list:
    """Feed `stream` to an incremental scanner cut at the given offsets; all parsed frames."""
    out, start = [], 0
    for cut in [*sorted(c % (len(stream) + 1) for c in cuts), len(stream)]:
        out += scanner.feed(stream[start:cut])
        start = max(start, cut)
    return out
