"""neuralscale: find how wide each layer of a CNN should be for a budget (NeuralScale, CVPR 2020)."""

__version__ = "0.1.0"

from .errors import NeuralscaleError  # noqa: E402
from .space import WidthSpace, space  # noqa: E402
from .train import TrainConfig, Trainer, paper_config  # noqa: E402
from .data import load as load_dataset, dataset_info  # noqa: E402
from .api import train  # noqa: E402

__all__ = ["NeuralscaleError", "WidthSpace", "space", "TrainConfig", "Trainer", "paper_config",
           "load_dataset", "dataset_info", "train", "__version__"]
