"""The JSON walker is compiled (drift/fingerprint/walk.pyx); everything else is in pyproject.toml."""

from Cython.Build import cythonize
from setuptools import Extension, setup

setup(
    ext_modules=cythonize(
        [Extension("drift.fingerprint.walk", ["drift/fingerprint/walk.pyx"])],
        compiler_directives={"language_level": "3"},
    )
)
