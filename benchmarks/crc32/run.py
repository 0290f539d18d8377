"""Is zlib's crc32 faster than the walker's own CRC-32 on the strings the walker hashes (#19)?

Both are called from C (Cython) on the same 100,000 keys and short values (4 to 64 characters, what
the walker hashes for its value sketches), 20 times over, best of 5, twice in turn. Needs Cython and
zlib's headers (Debian: zlib1g-dev), which the product itself does not:

    pip install cython && python benchmarks/crc32/run.py
"""

from __future__ import annotations

import random
import string
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

HERE = Path(__file__).resolve().parent
SETUP = """
from setuptools import Extension, setup
from Cython.Build import cythonize
setup(ext_modules=cythonize([Extension("compare", ["compare.pyx"], libraries=["z"], extra_compile_args=["-O2"])]), script_args=["build_ext", "--inplace", "-q"])
"""


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        walker = (HERE.parents[1] / "drift" / "features" / "fingerprint" / "walk.pyx").read_text()
        crc = walker[walker.index("cdef unsigned int _CRC[8][256]") : walker.index("def crc32_text(")]
        source = (HERE / "compare.pyx").read_text().replace("# WALKER_CRC", crc + "\n# (end of the walker's code)")
        (Path(folder) / "compare.pyx").write_text(source)
        (Path(folder) / "setup.py").write_text(SETUP)
        subprocess.run([sys.executable, "setup.py"], cwd=folder, check=True, capture_output=True)
        sys.path.insert(0, folder)
        import compare

        rng = random.Random(0)
        alphabet = string.ascii_letters + string.digits + "_-:."
        values = ["".join(rng.choice(alphabet) for _ in range(rng.choice([4, 8, 12, 20, 36, 64]))) for _ in range(100_000)]
        assert compare.run(values, 1, True) == compare.run(values, 1, False), "the two CRC-32s disagree"
        print(f"zlib {zlib.ZLIB_RUNTIME_VERSION}\n\n| CRC-32 | million strings/s (best of 5) |\n|---|---:|")
        for label, use_zlib in (("walker's own (slicing-by-8)", False), ("zlib crc32", True)) * 2:
            best = min(_timed(compare.run, values, use_zlib) for _ in range(5))
            print(f"| {label} | {20 * len(values) / best / 1e6:.1f} |")


def _timed(run, values, use_zlib) -> float:
    started = time.perf_counter()
    run(values, 20, use_zlib)
    return time.perf_counter() - started


if __name__ == "__main__":
    main()
