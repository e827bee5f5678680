"""``init()``: install the configuration, then import the feature modules."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from metaxy_delta._config._entrypoints import load_features

if TYPE_CHECKING:
    from metaxy_delta.config import MetaxyConfig


def init(
    config: MetaxyConfig | Path | str | None = None, search_parents: bool = True
) -> MetaxyConfig:
    """Set up Metaxy: install the configuration, then import the feature modules.

    A :class:`MetaxyConfig` is installed as is; otherwise :meth:`MetaxyConfig.load` reads
    ``config`` (a file path) or discovers the file. Then the feature modules are imported (see
    :func:`load_features`): ``entrypoints``, installed packages' ``metaxy.project`` entry
    points, and ``METAXY_ENTRYPOINT*`` env vars (comma-separated). A module next to the config
    file is found even if that directory is not on ``sys.path``.

    Raises:
        InvalidConfigError: Invalid configuration, or an entrypoint cannot be imported.

    Examples:
        >>> from metaxy_delta.config import MetaxyConfig, init
        >>> config = init()  # doctest: +SKIP
        >>> config = init("path/to/metaxy.toml")  # doctest: +SKIP
        >>> config = init(MetaxyConfig(entrypoints=["demo.features"]))  # doctest: +SKIP
    """
    from metaxy_delta.config import MetaxyConfig  # config imports this module at its end

    if isinstance(config, MetaxyConfig):
        MetaxyConfig.set(config)
    else:
        config = MetaxyConfig.load(config, search_parents=search_parents)
    base_dir = config.config_file.parent if config.config_file is not None else None
    load_features(config.entrypoints, base_dir=base_dir)
    return config
