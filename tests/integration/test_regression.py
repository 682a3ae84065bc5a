"""A tiny deterministic run whose numbers are pinned: a refactor that changes them fails here.

The run: the demo's COCONUT recipe (learned projection, thoughts scaled to the embeddings' size at the first
stage-1 step, stage 0 without <eot>) on a 1-layer Llama 32 wide, 128 generated ProsQA-mini records in batches
of 8 at a large rate, 3 epochs = stages 0, 1, 2 (16 optimizer steps each; the optimizer and the cosine schedule
restart at each stage), 12 validation and 12 test questions. About 30 s on a 2-core CPU.

The constants were recorded at commit b2220ea, before the layout change (`coconut.config.load_config`,
`coconut.train.train`, with these same overrides), and re-measured after it: every training loss,
validation figure and test figure came out bit-identical. The tolerance only allows for another CPU's
float summation order.
"""

import lightning as L
import pytest
import torch
from torch.testing import assert_close

from coconut.experiment import load_config
from coconut.train.run import train
from tests.integration.tiny_run import tiny_overrides

pytestmark = pytest.mark.slow

OVERRIDES = ("trainer.max_epochs=3", "data.train_size=128", "data.batch_size=8", "optim.lr=0.03", "model.hidden=32",
             "model.intermediate=64", "data.val_size=12", "data.test_size=12")

# The loss of each of the 48 optimizer steps (stage 0: steps 0-15, stage 1: 16-31, stage 2: 32-47).
TRAIN_LOSSES = [
    3.8026556968688965, 3.60286545753479, 3.454241991043091, 3.207440137863159,
    3.1080052852630615, 3.2250559329986572, 3.375777244567871, 3.206024408340454,
    3.233816623687744, 3.3029351234436035, 3.1592471599578857, 3.280888557434082,
    3.0615293979644775, 3.1093051433563232, 2.9498438835144043, 3.145650625228882,
    2.9742062091827393, 2.786822557449341, 2.837251663208008, 3.6109936237335205,
    3.504917860031128, 3.1458547115325928, 2.879676103591919, 2.6082849502563477,
    2.8925914764404297, 2.8844921588897705, 2.9610960483551025, 2.785999059677124,
    2.6626806259155273, 2.7006115913391113, 2.5457634925842285, 2.62764573097229,
    3.588324785232544, 2.4219932556152344, 2.309159994125366, 2.08541202545166,
    2.203917980194092, 2.635758399963379, 1.876752257347107, 2.063183307647705,
    2.5425784587860107, 1.3630527257919312, 2.2644402980804443, 2.159749984741211,
    2.198850393295288, 1.7249579429626465, 2.2345612049102783, 1.7331891059875488,
]
# After each epoch: validation accuracy (2 of 12 right at the end), loss, tokens (language + thoughts), thoughts.
VAL = {
    "val/acc": [0.0, 0.0, 2 / 12],
    "val/loss": [3.1138603687286377, 2.702427625656128, 2.270097017288208],
    "val/tokens": [12.0, 13.0, 10.5],
    "val/thoughts": [0.0, 1.0, 2.0],
}
# The best final-stage checkpoint on the test questions (results.json rounds to 5 digits).
TEST = {"test/acc": 0.0, "test/cot_match": 0.0, "test/tokens": 12.5, "test/language_tokens": 10.5,
        "test/thoughts": 2.0, "test/passes": 13.5}


class Record(L.Callback):
    """The loss each training step returned, and the metrics of each validation."""

    def __init__(self):
        self.losses, self.val = [], {name: [] for name in VAL}

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.losses.append(float(outputs["loss"]))

    def on_validation_end(self, trainer, pl_module):
        for name, values in self.val.items():
            values.append(float(trainer.callback_metrics[name]))


def test_a_tiny_run_reproduces_its_recorded_numbers(tmp_path):
    cfg = load_config("demo_coconut", tiny_overrides(tmp_path, *OVERRIDES))
    record = Record()
    results = train(cfg, extra_callbacks=[record])
    assert len(record.losses) == 3 * 128 // 8
    assert_close(torch.tensor(record.losses), torch.tensor(TRAIN_LOSSES), rtol=1e-4, atol=1e-5)
    for name, want in VAL.items():
        assert_close(torch.tensor(record.val[name]), torch.tensor(want), rtol=1e-4, atol=1e-5, msg=lambda m: f"{name}: {m}")
    assert results["test"].keys() == TEST.keys()
    for name, want in TEST.items():
        assert_close(results["test"][name], want, rtol=0, atol=1e-5, msg=lambda m: f"{name}: {m}")
    assert results["test_stage"] == 2
