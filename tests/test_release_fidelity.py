"""Each paper experiment resolves to the released code's settings (facebookresearch/coconut: run.py, dataset.py,
args/*.yaml), point by point; the expected values are written from the release's rules, not read from our files.
See docs/reproduce.md, "Fidelity to the release", for the table these tests pin."""

import pytest

from coconut.config import ConfigError
from coconut.experiment import load_config
from coconut.methods import TABLE1_METHODS

DATASETS = ("prosqa", "prontoqa", "gsm8k")
CURRICULUM = ("coconut", "no_curriculum", "no_thought", "pause_as_thought")  # the release's coconut.yaml family
ROWS = [(d, m) for d in DATASETS for m in TABLE1_METHODS]


@pytest.mark.parametrize("data, method", ROWS)
def test_every_table1_row_has_the_releases_generation_precision_batch_and_optimiser(data, method):
    cfg = load_config(f"{data}_{method}")
    gsm = data == "gsm8k"
    # run.py: max_new_tokens = 64 if "gsm" in val_path else 128.
    assert cfg.eval.max_new_tokens == (64 if gsm else 128)
    # args/*.yaml: bf16: False.
    assert cfg.trainer.precision == "32-true"
    # 32 per GPU x 4 GPUs, no accumulation: 128 examples per optimizer step.
    assert (cfg.data.batch_size, cfg.trainer.devices, cfg.trainer.accumulate_grad_batches) == (32, 4, 1)
    assert cfg.trainer.effective_batch == 128
    # optim.AdamW(parameters(), lr, weight_decay): decay on every parameter, constant rate.
    assert (cfg.optim.weight_decay, cfg.optim.decay_all, cfg.optim.schedule, cfg.optim.warmup_steps) == (0.01, True, "constant", 0)
    assert cfg.model.name_or_path == "openai-community/gpt2" and cfg.model.init_token == "<<"
    assert cfg.eval.scoring == "release"
    assert cfg.trainer.max_epochs == (25 if gsm else 50)
    if method == "icot":
        return  # Deng et al.'s own schedule: tests/data/test_icot_schedule.py
    assert cfg.optim.lr == 1e-4 and cfg.optim.grad_clip is None
    # reset_optimizer: True re-creates AdamW inside the epoch loop (coconut runs); the CoT run keeps one (False).
    assert cfg.optim.reset == ("epoch" if method in CURRICULUM else "never")


@pytest.mark.parametrize("data", DATASETS)
@pytest.mark.parametrize("method", CURRICULUM)
def test_the_curriculum_rows_follow_the_release_schedule(data, method):
    cfg = load_config(f"{data}_{method}")
    gsm = data == "gsm8k"
    m, t = cfg.method, cfg.trainer
    # gsm_coconut.yaml: c_thought 2, max_latent_stage 3, epochs_per_stage 3, pad_latent_to_max True, resume 3;
    # prosqa/prontoqa_coconut.yaml: 1, 6, 5, True, 0.
    assert (m.thoughts_per_step, m.max_latent_stage, m.pad_latent_to_max, m.uniform_prob) == \
        ((2, 3, True, 0.0) if gsm else (1, 6, True, 0.0))
    assert (t.epochs_per_stage, t.first_stage_epochs, t.start_epoch) == ((3, None, 3) if gsm else (5, None, 0))
    # scheduled_stage = epoch // epochs_per_stage for epoch in range(resume, num_epochs).
    first = 3 if gsm else 0
    stages = [t.schedule.stage(e) for e in range(t.epochs_to_train)]
    assert stages == [e // t.epochs_per_stage for e in range(first, t.max_epochs)]
    if gsm:  # from the CoT run's weights (load_model_path), stage 0 not trained again
        assert cfg.model.init_from.endswith("gsm8k_cot/checkpoints/best.ckpt")
        assert stages[:3] == [1, 1, 1] and len(stages) == 22
    else:
        assert cfg.model.init_from is None


@pytest.mark.parametrize("data", DATASETS)
def test_the_baselines_train_one_stage_from_the_pretrained_model(data):
    for method in ("cot", "no_cot", "pause"):
        cfg = load_config(f"{data}_{method}")
        assert cfg.model.init_from is None and cfg.final_stage() == 0
        assert {cfg.trainer.schedule.stage(e) for e in range(cfg.trainer.epochs_to_train)} == {0}


@pytest.mark.parametrize("devices, accumulation", [(4, 1), (2, 2), (1, 4), ("0,1", 2), ([0, 1, 2, 3], 1)])
def test_the_effective_batch_stays_128_whatever_the_gpu_count(devices, accumulation):
    cfg = load_config("prosqa_coconut", [f"trainer.devices={devices}".replace(" ", "")])
    assert cfg.trainer.accumulate_grad_batches == accumulation
    assert "effective batch 128 = 32 per device" in cfg.trainer.effective_batch_text(cfg.data.batch_size)


@pytest.mark.parametrize("devices, nodes, per_device, accumulation", [
    (8, 1, 16, 1), ("0,1,2,3,4,5,6,7", 1, 16, 1), (4, 2, 16, 1), (16, 1, 8, 1), (8, 4, 4, 1)])
def test_the_effective_batch_stays_128_on_more_gpus_than_accumulation_can_serve(devices, nodes, per_device,
                                                                                accumulation):
    """32 x 8 = 256 > 128: each device takes 128 / 8 = 16 per step instead (the same mean gradient), and the
    start of the run says the batch was lowered."""
    cfg = load_config("prosqa_coconut", [f"trainer.devices={devices}", f"trainer.num_nodes={nodes}"])
    assert (cfg.data.batch_size, cfg.trainer.accumulate_grad_batches) == (per_device, accumulation)
    processes = cfg.trainer.device_count() * nodes
    assert cfg.data.batch_size * processes * cfg.trainer.accumulate_grad_batches == 128
    assert "data.batch_size=32 lowered to" in cfg.trainer.effective_batch_text(cfg.data.batch_size)


@pytest.mark.parametrize("overrides, per_device, accumulation", [
    (["trainer.devices=1", "data.batch_size=48"], 32, 4),  # 48 does not divide 128: the largest that does, <= 48
    (["trainer.devices=2", "data.batch_size=64"], 64, 1),
    (["trainer.devices=8", "trainer.effective_batch=256", "data.batch_size=8"], 8, 4),
])
def test_the_per_device_batch_is_the_largest_exact_split_up_to_data_batch_size(overrides, per_device, accumulation):
    cfg = load_config("prosqa_coconut", overrides)
    assert (cfg.data.batch_size, cfg.trainer.accumulate_grad_batches) == (per_device, accumulation)


def test_the_derived_batch_is_derived_once_and_reloads_the_same():
    """config.yaml holds the derived per-device batch: loading it again derives nothing new."""
    from coconut.experiment import to_yaml

    cfg = load_config("prosqa_coconut", ["trainer.devices=8"])
    again = load_config(None, [f"{k}={v}" for k, v in (("data.batch_size", cfg.data.batch_size),
                                                         ("trainer.devices", 8), ("trainer.effective_batch", 128))])
    assert (again.data.batch_size, again.trainer.accumulate_grad_batches) == (16, 1)
    assert "batch_size: 16" in to_yaml(cfg)


@pytest.mark.parametrize("overrides, message", [
    (["trainer.devices=3"], "effective_batch=128 cannot be shared equally by .* 3 x 1 = 3 processes"),
    (["trainer.devices=8", "trainer.effective_batch=100"], "effective_batch=100 cannot be shared equally by .* = 8"),
    (["trainer.devices=auto"], "needs trainer.devices as a number"),
    (["trainer.devices=1", "trainer.accumulate_grad_batches=2"], "contradicts trainer.effective_batch"),
])
def test_an_effective_batch_that_cannot_be_reached_is_refused(overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_config("prosqa_coconut", overrides)


def test_the_effective_batch_may_be_switched_off():
    cfg = load_config("prosqa_coconut", ["trainer.devices=3", "trainer.effective_batch=null"])
    assert cfg.trainer.accumulate_grad_batches == 1


def test_the_analysis_presets_offer_both_mixing_probabilities():
    assert load_config("prosqa_coconut_analysis").method.uniform_prob == 0.3  # the paper's text, the release README
    assert load_config("prosqa_coconut_analysis_p005").method.uniform_prob == 0.05  # what the authors recalled


def test_a_value_yaml_cannot_read_stays_a_string():
    assert load_config("prosqa_coconut", ["model.init_token=<<"]).model.init_token == "<<"
