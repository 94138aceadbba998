#!/usr/bin/env python3
"""Draws site/roundhouse.png: a railway turntable seen from above, the picture a
roundhouse is built around. Standard library only (zlib + struct write the PNG), so
the image can be made again anywhere: python3 scripts/make_site_image.py"""
import math
import struct
import zlib
from pathlib import Path

SIZE = 96
BACKGROUND = (246, 241, 230)
RING = (120, 72, 40)
PIT = (214, 200, 170)
TRACK = (60, 60, 70)
BRIDGE = (196, 60, 44)


def pixel(x, y):
    cx = cy = (SIZE - 1) / 2
    dx, dy = x - cx, y - cy
    r = math.hypot(dx, dy)
    angle = math.atan2(dy, dx)
    # The turntable's bridge: a bar through the centre, slightly tilted.
    along = dx * math.cos(0.5) + dy * math.sin(0.5)
    across = -dx * math.sin(0.5) + dy * math.cos(0.5)
    if r < 30 and abs(across) < 3.5:
        return BRIDGE
    if 29 <= r < 33:
        return RING
    if r < 29:
        return PIT
    # Stalls: tracks radiating out of the ring every 30 degrees.
    for k in range(12):
        a = k * math.pi / 6
        if abs(math.remainder(angle - a, 2 * math.pi)) * r < 2.2 and r < SIZE / 2:
            return TRACK
    return BACKGROUND


def chunk(kind, data):
    body = kind + data
    return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))


def main():
    rows = b"".join(
        b"\x00" + bytes(c for x in range(SIZE) for c in pixel(x, y)) for y in range(SIZE)
    )
    png = (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", SIZE, SIZE, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(rows, 9))
        + chunk(b"IEND", b"")
    )
    out = Path(__file__).resolve().parent.parent / "site" / "roundhouse.png"
    out.write_bytes(png)
    print(f"wrote {out} ({len(png)} bytes)")


if __name__ == "__main__":
    main()
