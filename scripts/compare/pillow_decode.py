#!/usr/bin/env python3
"""Pillow's decode speed on the same files as `doppel bench decode`, for the README's
comparison only (Pillow is not a Doppel dependency): python3 pillow_decode.py FILE...
Prints JSON like the Doppel benchmark: best of 3 rounds of `seconds / 3` each."""
import json
import sys
import time

from PIL import Image


def measure(path, seconds=1.5):
    with open(path, "rb") as f:
        data = f.read()
    import io
    best = 0.0
    for _ in range(3):
        calls, start = 0, time.perf_counter()
        while True:
            for _ in range(16):
                Image.open(io.BytesIO(data)).load()
            calls += 16
            elapsed = time.perf_counter() - start
            if elapsed >= seconds / 3:
                break
        best = max(best, calls / elapsed)
    return {"path": path, "bytes": len(data), "imagesPerSecond": round(best)}


if __name__ == "__main__":
    print(json.dumps({"decode": [measure(p) for p in sys.argv[1:]]}, indent=2))
