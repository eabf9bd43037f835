#!/usr/bin/env python3
"""Writes the decoder fuzz corpus: real photos (scikit-image) and synthetic images
re-encoded as many JPEG and PNG variants (tests/python/io_images.py), with EXIF.

    make_corpus.py OUT_DIR [--full]

Without numpy (or Pillow / scikit-image) it writes what it can and exits 0: the fuzz
driver adds seeds of its own. --full uses every photo (longer runs on demand).
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "python"))


def main():
    out = sys.argv[1]
    small = "--full" not in sys.argv
    os.makedirs(out, exist_ok=True)
    try:
        import io_images
    except ImportError as e:  # no numpy in this interpreter
        print(f"make_corpus: {e}; the fuzzer uses its own seeds only")
        return 0
    n = 0
    files = list(io_images.png_files(small=small))
    if io_images.Image is not None:
        jpegs = list(io_images.jpeg_files(small=small))
        files += jpegs
        files += [(f"exif{o}-{name}", io_images.with_exif_jpeg(data, o, o % 2 == 0))
                  for o, (name, data) in zip(range(1, 9), jpegs[::5])]
    for name, data in files:
        with open(os.path.join(out, name + (".png" if data[:4] == b"\x89PNG" else ".jpg")), "wb") as f:
            f.write(data)
        n += 1
    print(f"make_corpus: wrote {n} files to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
