"""16-bit colour PNG codecs compared: file size and write/read time on one photo-like image.

    python benchmarks/png16_codecs.py [--size 2048] [--repeats 3] [--old-codec PNG16_PY]

The image: scikit-image's astronaut photo (512x512, 8-bit) resized to size x size with cubic
interpolation into 16 bits, plus Gaussian noise of 64/65535 (a sensor's grain: the low bits are not
constant, as in a real 16-bit photo). Each codec writes it to bytes and reads it back (median of
--repeats; process CPU time, which other jobs on a shared machine disturb less than wall time,
and wall time), on one thread, and must return the same samples. zlib level 6 is used where the codec
takes a level (as png16.py did), and the codec's own default beside it. --old-codec adds the
hand-written codec that serpentir used before, from a copy of the file:
`git show ea26ca7:serpentir/image_io/png16.py > /tmp/png16.py`.
Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import statistics
import time

import numpy as np

os.environ.setdefault("OMP_NUM_THREADS", "1")


def photo(size: int) -> np.ndarray:
    """(size, size, 3) uint16, a real photo's content at 16 bits with fine grain."""
    from skimage import data, transform

    rgb = transform.resize(data.astronaut().astype(np.float64) / 255, (size, size), order=3)
    grain = np.random.default_rng(0).normal(0, 64 / 65535, rgb.shape)
    return np.rint(np.clip(rgb + grain, 0, 1) * 65535).astype(np.uint16)


def codecs(old: str | None) -> dict:
    """name -> (encode(array) -> bytes, decode(bytes) -> (H, W, C) uint16)."""
    import cv2
    import imagecodecs
    import png

    cv2.setNumThreads(1)

    def pypng_encode(a, level=6):
        out = io.BytesIO()
        png.Writer(a.shape[1], a.shape[0], greyscale=False, bitdepth=16, compression=level).write(
            out, a.reshape(a.shape[0], -1))
        return out.getvalue()

    def pypng_decode(b):
        w, h, rows, info = png.Reader(bytes=b).asDirect()
        return np.vstack([np.asarray(r, np.uint16) for r in rows]).reshape(h, w, info["planes"])

    def cv2_decode(b):
        return cv2.imdecode(np.frombuffer(b, np.uint8), cv2.IMREAD_UNCHANGED)[:, :, ::-1]

    found = {
        "imagecodecs (libpng), level 6": (lambda a: imagecodecs.png_encode(a, level=6), imagecodecs.png_decode),
        "imagecodecs (libpng), default": (imagecodecs.png_encode, imagecodecs.png_decode),
        "imagecodecs (libpng), OpenCV's settings": (
            lambda a: imagecodecs.png_encode(a, level=1, strategy=3, filter=16), imagecodecs.png_decode),
        "opencv-python-headless, level 6": (
            lambda a: cv2.imencode(".png", a[:, :, ::-1], [cv2.IMWRITE_PNG_COMPRESSION, 6])[1].tobytes(), cv2_decode),
        "opencv-python-headless, default": (lambda a: cv2.imencode(".png", a[:, :, ::-1])[1].tobytes(), cv2_decode),
        "pypng, level 6": (pypng_encode, pypng_decode),
    }
    if old:
        import importlib.util
        import tempfile
        from pathlib import Path

        spec = importlib.util.spec_from_file_location("png16_old", old)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        decode_png16, encode_png16 = module.decode_png16, module.encode_png16

        def old_decode(b):
            with tempfile.NamedTemporaryFile(suffix=".png") as f:
                f.write(b)
                f.flush()
                return decode_png16(Path(f.name))

        found["png16.py (hand-written, removed)"] = (encode_png16, old_decode)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=2048)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--old-codec", metavar="PNG16_PY", help="the removed png16.py, to compare")
    args = parser.parse_args()
    import cv2
    import imagecodecs
    import png

    image = photo(args.size)
    print(f"{args.size}x{args.size}x3 uint16 ({image.nbytes / 2**20:.0f} MiB raw); {platform.machine()}, "
          f"imagecodecs {imagecodecs.__version__}, opencv {cv2.__version__}, pypng {png.__version__}\n")
    print("| codec | size (MB) | write, CPU s | read, CPU s | write, wall s | read, wall s |\n"
          "|---|---:|---:|---:|---:|---:|")
    for name, (encode, decode) in codecs(args.old_codec).items():
        times: dict[str, list[float]] = {"write": [], "read": [], "write_cpu": [], "read_cpu": []}
        for _ in range(args.repeats):
            start, start_cpu = time.perf_counter(), time.process_time()
            blob = encode(image)
            times["write"].append(time.perf_counter() - start)
            times["write_cpu"].append(time.process_time() - start_cpu)
            start, start_cpu = time.perf_counter(), time.process_time()
            back = decode(blob)
            times["read"].append(time.perf_counter() - start)
            times["read_cpu"].append(time.process_time() - start_cpu)
            assert np.array_equal(back, image), f"{name}: the samples did not come back"
        m = {k: statistics.median(v) for k, v in times.items()}
        print(f"| {name} | {len(blob) / 1e6:.1f} | {m['write_cpu']:.2f} | {m['read_cpu']:.2f} | "
              f"{m['write']:.2f} | {m['read']:.2f} |", flush=True)


if __name__ == "__main__":
    main()
