"""Draw the app icons (a speech bubble on the accent colour) as PNGs, with nothing but zlib.

Run once after changing the design: `python -m frontend.make_icons`. The output is committed in
frontend/static/youthhub/icons/ next to icon.svg (the same drawing as vector).
"""

import struct
import zlib
from pathlib import Path

ICONS = Path(__file__).resolve().parent / "static" / "youthhub" / "icons"
ACCENT = (0x1F, 0x5F, 0x8B)  # --accent in app.css
WHITE = (0xFF, 0xFF, 0xFF)
SAMPLES = 4  # per axis, for smooth edges

# The drawing on a 512 × 512 canvas (icon.svg has the same shapes).
BUBBLE = (256, 236, 160, 126)  # ellipse: centre x, centre y, radius x, radius y
TAIL = ((170, 318), (132, 408), (258, 354))  # triangle joining the bubble
DOTS = [(190, 236), (256, 236), (322, 236)]
DOT_RADIUS = 24


def _in_triangle(x: float, y: float, a, b, c) -> bool:
    def side(p, q):
        return (x - q[0]) * (p[1] - q[1]) - (p[0] - q[0]) * (y - q[1])

    d1, d2, d3 = side(a, b), side(b, c), side(c, a)
    return not ((d1 < 0 or d2 < 0 or d3 < 0) and (d1 > 0 or d2 > 0 or d3 > 0))


def _colour_at(x: float, y: float) -> tuple[int, int, int]:
    for dx, dy in DOTS:
        if (x - dx) ** 2 + (y - dy) ** 2 <= DOT_RADIUS**2:
            return ACCENT
    cx, cy, rx, ry = BUBBLE
    if ((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2 <= 1 or _in_triangle(x, y, *TAIL):
        return WHITE
    return ACCENT


def render(size: int) -> bytes:
    scale = 512 / size
    rows = []
    for py in range(size):
        row = bytearray([0])  # filter type 0 (none)
        for px in range(size):
            total = [0, 0, 0]
            for sy in range(SAMPLES):
                for sx in range(SAMPLES):
                    x = (px + (sx + 0.5) / SAMPLES) * scale
                    y = (py + (sy + 0.5) / SAMPLES) * scale
                    for i, value in enumerate(_colour_at(x, y)):
                        total[i] += value
            row.extend(round(v / SAMPLES**2) for v in total)
        rows.append(bytes(row))
    return png(size, size, b"".join(rows))


def png(width: int, height: int, raw_rgb_rows: bytes) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw_rgb_rows, 9))
        + chunk(b"IEND", b"")
    )


def main() -> None:
    ICONS.mkdir(parents=True, exist_ok=True)
    for size in (192, 512):
        (ICONS / f"icon-{size}.png").write_bytes(render(size))
        print(f"wrote {ICONS / f'icon-{size}.png'}")


if __name__ == "__main__":
    main()
