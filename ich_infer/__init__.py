"""ichseg: intracranial haemorrhage segmentation in non-contrast head CT."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("ichseg")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+local"
