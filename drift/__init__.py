"""drift: a nightly monitor for the images, documents and JSON payloads an LLM agent receives."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("drift")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"
