"""The JSON walker is compiled (drift/features/fingerprint/walk.pyx); everything else is in pyproject.toml."""

from Cython.Build import cythonize
from setuptools import Extension, setup

setup(
    ext_modules=cythonize(
        [Extension("drift.features.fingerprint.walk", ["drift/features/fingerprint/walk.pyx"])],
        compiler_directives={"language_level": "3"},
    )
)
