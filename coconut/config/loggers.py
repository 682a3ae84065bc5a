"""`logger=`: which of Lightning's loggers a run writes to, besides its metrics history.

    logger=tensorboard,csv        the default
    logger=csv                    no TensorBoard folder
    logger=tensorboard,wandb      also Weights & Biases (pip install 'coconut-latent[wandb]')
    logger=[csv,mlflow]           also MLflow (pip install 'coconut-latent[mlflow]')

`csv/metrics.csv` is written whatever the list says: it is the run's record, which a resumed run continues
(coconut.train.history), so `csv` in the list only says so. wandb and mlflow are optional packages, checked
before the run folder is written (`check_logger_packages`). Torch-free, like the rest of coconut.config.
"""

from __future__ import annotations

import importlib.util

from coconut.config.checks import ConfigError, require

LOGGERS = ("tensorboard", "csv", "wandb", "mlflow")
DEFAULT_LOGGERS = ["tensorboard", "csv"]
# The package each optional logger imports, and the extra of this distribution that installs it.
EXTRAS = {"wandb": "wandb", "mlflow": "mlflow"}


def logger_names(value) -> list[str]:
    """`logger=` as a list of distinct names: a list, or a comma-separated string; unknown names refused."""
    if value is None:
        return []
    parts = value.split(",") if isinstance(value, str) else list(value) if isinstance(value, (list, tuple)) else None
    require(parts is not None and all(isinstance(p, str) for p in parts),
            f"logger={value!r} must name loggers, comma-separated ({','.join(LOGGERS)})")
    names = [p.strip().lower() for p in parts if p.strip()]
    unknown = [n for n in names if n not in LOGGERS]
    require(not unknown, f"logger={','.join(names)}: unknown logger {', '.join(unknown)}; choose one or more of "
                         f"{', '.join(LOGGERS)} (comma-separated)")
    return list(dict.fromkeys(names))


def check_logger_packages(names) -> None:
    """An optional logger whose package is not installed: one ConfigError naming the extra, before the run starts."""
    for name in names:
        package = EXTRAS.get(name)
        if package is not None and importlib.util.find_spec(package) is None:
            raise ConfigError(f"logger={name} needs the {package} package, which is not installed: pip install "
                              f"'coconut-latent[{name}]' (or drop {name} from logger=)")
