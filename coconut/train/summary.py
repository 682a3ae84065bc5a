"""The model summary at the start of training, in one line on the `coconut` logger.

Lightning's own summary is a table with a FLOPs column and a "Total FLOPs" row that it fills only for a module
with an `example_input_array`; a latent model has no single example input (its thoughts depend on the stage),
so the table would show 0 FLOPs everywhere. The counts are Lightning's own (its ModelSummary computes them,
also under DeepSpeed); only the printing differs.
"""

from __future__ import annotations

import logging

from lightning.pytorch.callbacks import ModelSummary
from lightning.pytorch.utilities.model_summary.model_summary import get_formatted_model_size, get_human_readable_count

log = logging.getLogger(__name__)


def summary_line(total_parameters: int, trainable_parameters: int, model_size: float) -> str:
    return (f"model: {get_human_readable_count(total_parameters)} parameters, "
            f"{get_human_readable_count(trainable_parameters)} trainable "
            f"({get_formatted_model_size(model_size)} MB)")


class ParameterSummary(ModelSummary):
    """ModelSummary printing the parameter counts and size, without the layer table and FLOPs (pass the Trainer
    enable_model_summary=False, else Lightning adds its own beside it)."""

    @staticmethod
    def summarize(summary_data, total_parameters, trainable_parameters, model_size, total_training_modes,
                  total_flops, **summarize_kwargs) -> None:
        log.info("%s", summary_line(total_parameters, trainable_parameters, model_size))
