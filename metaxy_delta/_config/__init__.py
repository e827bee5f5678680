"""Private helpers of :mod:`metaxy_delta.config` (TOML files, store registry, entrypoints).

Import the public names from :mod:`metaxy_delta.config`; the layout of this package may change.
"""
