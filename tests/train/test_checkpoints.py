"""check_checkpoint refuses what the loaders would trip over later: a stage that is no integer, a state_dict entry
that is no tensor, weights that are NaN or infinite (eval, analyze, resume and model.init_from all read through it)."""

import pytest
import torch

from coconut.train.checkpoints import STAGE_KEY, CheckpointError, check_checkpoint, init_weights


def saved(tmp_path, name="x.ckpt", state_dict=None, **fields):
    path = tmp_path / name
    weights = {"a.weight": torch.ones(3, 4), "a.steps": torch.arange(5)} if state_dict is None else state_dict
    torch.save({"state_dict": weights, "epoch": 2, "global_step": 8, STAGE_KEY: 1, **fields}, path)
    return path


def test_a_sound_checkpoint_is_returned(tmp_path):
    state = check_checkpoint(saved(tmp_path))
    assert state[STAGE_KEY] == 1 and torch.equal(state["state_dict"]["a.weight"], torch.ones(3, 4))


@pytest.mark.parametrize("key, value", [(STAGE_KEY, "two"), (STAGE_KEY, 2.0), (STAGE_KEY, True), (STAGE_KEY, -1),
                                        ("epoch", "3")])
def test_a_stage_or_epoch_that_is_no_integer_is_refused(tmp_path, key, value):
    path = saved(tmp_path, **{key: value})
    with pytest.raises(CheckpointError) as err:
        check_checkpoint(path)
    assert str(err.value) == (f"checkpoint {path}: {key} is {value!r}, not an integer >= 0; it was not written by "
                              "coconut train: use a checkpoint of runs/NAME/checkpoints/")


def test_a_state_dict_entry_that_is_no_tensor_is_refused(tmp_path):
    path = saved(tmp_path, state_dict={"a.weight": torch.ones(2), "a.bias": [0.0, 1.0]})
    with pytest.raises(CheckpointError, match=r"x.ckpt: state_dict\['a.bias'\] is a list, not a tensor"):
        check_checkpoint(path)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
def test_non_finite_weights_name_the_first_tensor_and_how_many_values(tmp_path, dtype):
    spoiled = torch.zeros(3, 4, dtype=dtype)
    spoiled[0, 0], spoiled[1, 2], spoiled[2, 3] = float("nan"), float("inf"), float("-inf")
    later = torch.full((2,), float("nan"))
    path = saved(tmp_path, state_dict={"a.weight": torch.ones(2), "b.weight": spoiled, "c.weight": later,
                                       "d.ids": torch.arange(3)})
    with pytest.raises(CheckpointError) as err:
        check_checkpoint(path)
    assert str(err.value).startswith(f"checkpoint {path}: b.weight holds 3 non-finite value(s) (NaN or inf) of 12; "
                                     "the run diverged before this checkpoint: use an earlier one")


def test_integer_tensors_and_a_missing_stage_pass(tmp_path):
    path = tmp_path / "plain.ckpt"
    torch.save({"state_dict": {"ids": torch.arange(4), "mask": torch.tensor([True, False])}}, path)
    assert set(check_checkpoint(path)["state_dict"]) == {"ids", "mask"}


def test_model_init_from_a_diverged_checkpoint_is_refused_before_any_weight_loads(tmp_path):
    path = saved(tmp_path, state_dict={"a.weight": torch.tensor([1.0, float("nan")])})
    with pytest.raises(CheckpointError, match=r"x.ckpt: a.weight holds 1 non-finite value\(s\) \(NaN or inf\) of 2"):
        init_weights(None, path)  # no module is touched: the check comes first


def test_eval_stage_is_at_most_the_methods_final_stage():
    from coconut.config import ConfigError
    from coconut.experiment import load_config
    from coconut.train.checkpoints import check_eval_stage

    coconut = load_config("demo_coconut", ["method.max_latent_stage=2"])  # stage 3: every step replaced
    for stage in (None, 0, 3):
        check_eval_stage(coconut, stage)
    with pytest.raises(ConfigError) as err:
        check_eval_stage(coconut, 4)
    assert str(err.value) == ("stage=4: beyond the final stage of method coconut (3, after which its samples no "
                              "longer change); the largest stage allowed is 3")
    cot = load_config("demo_cot")  # no curriculum: stage 0 alone
    check_eval_stage(cot, 0)
    with pytest.raises(ConfigError, match=r"^stage=1: .* the largest stage allowed is 0$"):
        check_eval_stage(cot, 1)


def run_checkpoint(tmp_path, tokenizer):
    """A checkpoint in a run folder's layout (RUN/checkpoints/x.ckpt), RUN/tokenizer holding `tokenizer`."""
    run = tmp_path / "run"
    tokenizer.save_pretrained(run / "tokenizer")
    (run / "checkpoints").mkdir()
    return saved(run / "checkpoints")


def words(*texts):
    from coconut.data.word_tokenizer import build_word_tokenizer

    return build_word_tokenizer([{"question": text, "steps": [], "answer": "x"} for text in texts])


def test_model_init_from_a_run_that_numbered_its_words_otherwise_is_refused_before_any_weight_loads(tmp_path):
    from coconut.train.checkpoints import check_same_vocabulary

    path = run_checkpoint(tmp_path, words("b c d"))
    other = words("b c e")  # as many words (the embeddings' shapes fit), one of them another
    assert len(other) == len(words("b c d"))
    with pytest.raises(CheckpointError, match=r"x\.ckpt: its run's tokenizer \(.*run/tokenizer\) numbers 1 of its "
                                              r"\d+ tokens otherwise than this run's \(id 5 is 'd' there, 'e' here\)"):
        init_weights(None, path, tokenizer=other)  # no module is touched: the check comes first
    check_same_vocabulary(path, words("d c b"))  # the same words, given in another order: the same ids


def test_resuming_evaluating_or_analysing_a_checkpoint_of_another_vocabulary_is_refused_before_it_loads(tmp_path):
    from coconut.train.checkpoints import check_fits, load_weights

    path = run_checkpoint(tmp_path, words("b c d"))
    state = check_checkpoint(path)
    for read in (check_fits, load_weights):  # resume (check_fits); eval and analyze (load_weights)
        with pytest.raises(CheckpointError, match=r"^checkpoint .*x\.ckpt: its run's tokenizer .* \(id 5 is 'd' there, "
                                                  r"'e' here\)"):
            read(None, state, path, words("b c e"))


def test_a_checkpoint_outside_a_run_folder_or_without_its_tokenizer_is_not_checked(tmp_path):
    from coconut.train.checkpoints import check_same_vocabulary

    check_same_vocabulary(saved(tmp_path), words("b c e"))
    path = run_checkpoint(tmp_path, words("b c d"))
    for file in (tmp_path / "run" / "tokenizer").iterdir():
        file.unlink()
    check_same_vocabulary(path, words("b c e"))
