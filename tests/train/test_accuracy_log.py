"""The TensorBoard table of sample generations: every cell survives TensorBoard's own Markdown rendering."""

from html.parser import HTMLParser
from types import SimpleNamespace

import pytest

from coconut.run_dir import RunDir
from coconut.train.accuracy_log import AccuracyVsTokensLogger, markdown_cell, samples_table

# A COCONUT prompt on prosqa-mini: the `|` of the question and of every latent marker used to split the row.
SAMPLES = [
    {"prompt": "p1 : c17 | c4 ? <|start-latent|><|latent|><|latent|><|end-latent|>", "generated": "c7 c4 ### c4",
     "answer": "c4", "correct": True},
    {"prompt": "two\nlines and a back\\slash", "generated": "ends in \\| a pipe\r\nand more", "answer": "a|b",
     "correct": False},
]


class Cells(HTMLParser):
    """The text of each <td> of the rendered table, row by row (<br> read back as a line break)."""

    def __init__(self):
        super().__init__()
        self.rows, self.cell = [], None

    def handle_starttag(self, tag, attrs):
        if tag == "tr":
            self.rows.append([])
        elif tag == "td":
            self.cell = ""
        elif tag == "br" and self.cell is not None:
            self.cell += "\n"

    def handle_endtag(self, tag):
        if tag == "td":
            self.rows[-1].append(self.cell)
            self.cell = None

    def handle_data(self, data):
        if self.cell is not None:
            self.cell += data


def rendered_cells(markdown: str) -> list[list[str]]:
    # TensorBoard's text plugin renders with this function; what it shows is what a user sees.
    from tensorboard.plugin_util import markdown_to_safe_html

    parser = Cells()
    parser.feed(markdown_to_safe_html(markdown))
    return [row for row in parser.rows if row]  # the header row has <th>, not <td>


def test_every_cell_renders_as_written():
    rows = rendered_cells(samples_table(SAMPLES))
    expected = [[s["prompt"], s["generated"], s["answer"], str(s["correct"])] for s in SAMPLES]
    expected[1][1] = "ends in \\| a pipe\nand more"  # \r\n is one line break
    assert rows == expected


def test_without_escaping_the_row_would_split():
    # The check above means something only if TensorBoard does split on a bare `|`: the old table lost the
    # generated text and the verdict, pushed out past the header's four columns.
    bare = "| prompt | generated | answer | correct |\n|---|---|---|---|\n| p1 : c17 | c4 <|latent|> | c4 | c4 | True |"
    assert rendered_cells(bare)[0] != ["p1 : c17 | c4 <|latent|>", "c4", "c4", "True"]


@pytest.mark.parametrize("text, cell", [("<|latent|>", "<\\|latent\\|>"), ("a\\|b", "a\\\\\\|b"), ("x\ny", "x<br>y"),
                                        (True, "True")])
def test_markdown_cell(text, cell):
    assert markdown_cell(text) == cell


def test_the_callback_logs_the_escaped_table(tmp_path):
    logged = []
    experiment = SimpleNamespace(add_text=lambda tag, text, global_step: logged.append((tag, text, global_step)))
    metrics = {f"val/{k}": 1.0 for k in ("acc", "tokens", "language_tokens", "language_tokens_with_eos", "thoughts",
                                         "passes", "loss")}
    trainer = SimpleNamespace(sanity_checking=False, is_global_zero=True, callback_metrics=metrics, current_epoch=0,
                              global_step=7, datamodule=SimpleNamespace(stage=1),
                              loggers=[SimpleNamespace(experiment=experiment)])
    AccuracyVsTokensLogger(RunDir(tmp_path)).on_validation_end(trainer, SimpleNamespace(samples=SAMPLES))
    assert logged == [("val/samples", samples_table(SAMPLES), 7)]
    assert rendered_cells(logged[0][1])[0][1:] == ["c7 c4 ### c4", "c4", "True"]


def validation(tmp_path, epoch, step, acc):
    """One validation end of the callback on a fake trainer (no logger)."""
    metrics = {f"val/{k}": 1.0 for k in ("tokens", "language_tokens", "language_tokens_with_eos", "thoughts",
                                         "passes", "loss")}
    trainer = SimpleNamespace(sanity_checking=False, is_global_zero=True, callback_metrics={**metrics, "val/acc": acc},
                              current_epoch=epoch, global_step=step, datamodule=SimpleNamespace(stage=epoch), loggers=[])
    AccuracyVsTokensLogger(RunDir(tmp_path)).on_validation_end(trainer, SimpleNamespace(samples=[]))


def test_several_validations_in_one_epoch_keep_a_row_each(tmp_path):
    """trainer.val_check_interval: rows told apart by step (keyed by epoch, the second replaced the first)."""
    for epoch, step, acc in ((0, 2, 0.25), (0, 4, 0.5), (1, 6, 0.75)):
        validation(tmp_path, epoch, step, acc)
    rows = AccuracyVsTokensLogger(RunDir(tmp_path)).read()
    assert [(r["epoch"], r["step"], r["val_acc"]) for r in rows] == [("0", "2", "0.25"), ("0", "4", "0.5"),
                                                                     ("1", "6", "0.75")]


def test_a_resumed_run_drops_the_rows_logged_after_its_checkpoint(tmp_path):
    for epoch, step, acc in ((0, 2, 0.25), (0, 4, 0.5), (1, 6, 0.75)):  # a killed attempt got to step 6
        validation(tmp_path, epoch, step, acc)
    callback = AccuracyVsTokensLogger(RunDir(tmp_path))
    callback.on_train_start(SimpleNamespace(is_global_zero=True, global_step=4), None)  # resumed at step 4
    assert [r["step"] for r in callback.read()] == ["2", "4"]
    validation(tmp_path, 1, 6, 0.5)  # the replayed validation logs its own figure, once
    assert [(r["step"], r["val_acc"]) for r in callback.read()] == [("2", "0.25"), ("4", "0.5"), ("6", "0.5")]
