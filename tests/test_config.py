"""Configuration (coconut.config, coconut.experiment): every shipped file loads against the schema and its
values land in the config; bad keys and values fail with the key named."""

import pytest
from omegaconf import OmegaConf

from coconut.config import ConfigError
from coconut.experiment import CONF_DIR, EXPERIMENTS_DIR, GROUPS, group_options, load_config

EXPERIMENTS = sorted(p.stem for p in EXPERIMENTS_DIR.glob("*.yaml"))


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_every_experiment_loads(name):
    cfg = load_config(name)
    assert cfg.name == name
    text = (EXPERIMENTS_DIR / f"{name}.yaml").read_text()
    assert text.startswith("#") and "Run:" in text and "Hardware:" in text, "header: hardware, time, command"


@pytest.mark.parametrize("group, option", [(g, o) for g in GROUPS for o in group_options(g)])
def test_every_group_option_loads(group, option):
    """Each field of the option's file lands in the config, except those the experiment file sets itself."""
    # Another data option may change the batch size, which the experiment's effective batch of 128 refuses.
    extra = ["trainer.effective_batch=null"] if group == "data" else []
    cfg = load_config("prosqa_coconut", [f"{group}={option}", *extra])
    piece = getattr(cfg, group)
    from_file = OmegaConf.to_container(OmegaConf.load(CONF_DIR / group / f"{option}.yaml"))
    experiment = OmegaConf.to_container(OmegaConf.load(EXPERIMENTS_DIR / "prosqa_coconut.yaml"))
    set_by_experiment = experiment.get(group, {})
    checked = [key for key in from_file if key not in set_by_experiment]
    assert checked, f"{group}/{option}.yaml sets nothing of its own"
    for key in checked:
        assert plain(getattr(piece, key)) == from_file[key], f"{group}={option}: {group}.{key}"
    for key, value in set_by_experiment.items():  # the experiment file is merged over the group's
        assert plain(getattr(piece, key)) == value, f"{group}={option}: {group}.{key} of the experiment"


def plain(value):
    return list(value) if isinstance(value, tuple) else value


def test_paper_settings_reach_the_config():
    cfg = load_config("prosqa_coconut")
    assert (cfg.method.name, cfg.method.thoughts_per_step, cfg.method.max_latent_stage) == ("coconut", 1, 6)
    assert (cfg.optim.lr, cfg.optim.weight_decay, cfg.trainer.epochs_per_stage) == (1e-4, 0.01, 5)
    assert cfg.model.name_or_path == "openai-community/gpt2"
    gsm = load_config("gsm8k_coconut")
    assert (gsm.method.thoughts_per_step, gsm.method.max_latent_stage) == (2, 3)


def test_final_stage_per_method():
    assert load_config("prosqa_coconut").final_stage() == 7
    assert load_config("prosqa_cot").final_stage() == 0
    assert load_config("gsm8k_coconut").final_stage() == 4


def test_overrides_and_group_switches():
    cfg = load_config("prosqa_coconut", ["trainer=ddp_cpu", "trainer.devices=2", "optim.lr=0.5", "method=cot"])
    assert (cfg.trainer.strategy, cfg.trainer.devices, cfg.optim.lr, cfg.method.name) == ("ddp_spawn", 2, 0.5, "cot")
    assert cfg.trainer.accumulate_grad_batches == 2, "effective batch 128 = 32 x 2 devices x 2"
    assert cfg.data.data_dir == "data/prosqa", "interpolation resolved"


@pytest.mark.parametrize("overrides, message", [
    (["bogus=1"], "Key 'bogus' not in 'RunConfig'"),
    (["optim.lrr=1"], "Key 'lrr' not in 'OptimConfig'"),
    (["optim.lr=fast"], "key: optim.lr"),
    (["trainer.max_epochs=1.5"], "key: trainer.max_epochs"),
    (["model=gpt5"], "model=gpt5: no file"),
    (["method.name=latent"], "unknown method 'latent'"),
    (["optim.schedule=linear"], "optim.schedule"),
    (["model.hidden=65"], "divisible by model.heads"),
    (["lr"], "not key=value"),
    (["decode.name=beam"], "decode.name must be one of greedy, soft_thinking, mixture_of_inputs"),
    (["decode=nucleus"], "decode=nucleus: no file"),
    (["eval.thoughts=learned"], "needs a model trained with latent.stop_classifier=true"),
    (["eval.thoughts=some"], "eval.thoughts must be fixed or learned"),
    (["trainer=fsdp"], "latent.auto_thought_scale measures the model outside its forward pass"),
    # Values that used to pass and fail later (or never): each refused with its key.
    (["optim.lr=1e400"], "optim.lr must be a finite number > 0, got inf"),
    (["optim.lr=-1"], "optim.lr must be a finite number > 0"),
    (["optim.lr=0"], "optim.lr must be a finite number > 0"),
    (["optim.betas=[0.9,1.5]"], "optim.betas must be two numbers in [0, 1)"),
    (["optim.grad_clip=0"], "optim.grad_clip must be"),
    (["trainer.accumulate_grad_batches=0"], "trainer.accumulate_grad_batches must be >= 1"),
    (["eval.max_new_tokens=-1"], "eval.max_new_tokens must be >= 1"),
    (["eval.max_new_tokens=0"], "eval.max_new_tokens must be >= 1"),
    (["trainer.max_epochs=-1"], "trainer.max_epochs must be >= 1, got -1"),
    (["trainer.max_epochs=0"], "trainer.max_epochs must be >= 1, got 0"),
    (["trainer.precision=bogus"], "trainer.precision=bogus is not one Lightning accepts"),
    (["trainer.precision=fp16"], "trainer.precision=fp16 is not one Lightning accepts"),
    (["trainer.devices=abc"], "trainer.devices=abc"),
    (["trainer.devices=0"], "trainer.devices=0: must be >= 1, or -1"),
    (["trainer.devices=-2"], "trainer.devices=-2"),
    (["trainer.devices=[0,0]"], "distinct device indices"),
    (["trainer.devices=[]"], "distinct device indices"),
    (["trainer.devices=true"], "trainer.devices=True"),
    (["method.thoughts_per_step=0"], "method.thoughts_per_step must be >= 1 for method coconut"),
    (["method.name=no_curriculum", "method.thoughts_per_step=0"], "for method no_curriculum"),
    (["method.name=pause_as_thought", "method.thoughts_per_step=0"], "for method pause_as_thought"),
    (["model.lora_rank=-1"], "model.lora_rank must be >= 0"),
    (["model.lora_rank=4", "model.lora_dropout=1.5"], "model.lora_dropout is a probability"),
    (["model.heads=0"], "model.heads must be >= 1"),
    (["model.layers=0"], "model.layers must be >= 1"),
    (["eval.stop_threshold=7"], "eval.stop_threshold is a probability, must be in [0, 1], got 7.0"),
    (["eval.stop_threshold=-0.1"], "eval.stop_threshold is a probability"),
    (["decode.top_p=1.5"], "decode.top_p in (0, 1]"),
    (["data.train_size=-5"], "data.train_size must be in [1, 10,000,000]"),
    (["data.val_size=0"], "data.val_size must be in [1,"),
    (["data.test_size=100000000000"], "data.test_size must be in [1,"),
    (["name=../../x"], "name='../../x' must be a plain folder name"),
    (["name=a/b"], "must be a plain folder name"),
    (["name=.."], "must be a plain folder name"),
    (["name=''"], "must be a plain folder name"),
    (["output_dir=''"], "output_dir must not be empty"),
    (["eval.checkpoint=middle"], "eval.checkpoint must be best or last, got 'middle'"),
    (["data.render=pictures"], "data.render must be words, compact, phrase or null, got 'pictures'"),
    (["data.generator=prontoqa", "data.render=phrase"], "data.render=phrase applies to the ProsQA generators"),
])
def test_bad_settings_name_the_key(overrides, message):
    with pytest.raises(ConfigError) as err:
        load_config("demo_coconut", overrides)
    assert message in str(err.value)


def test_unknown_experiment_and_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match="unknown experiment 'nope'; known: .*prosqa_coconut"):
        load_config("nope")
    bad = tmp_path / "bad.yaml"
    bad.write_text("defaults: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(str(bad))
    odd = tmp_path / "odd.yaml"
    odd.write_text("defaults:\n  modle: gpt2\n")
    with pytest.raises(ConfigError, match="unknown group\\(s\\) modle"):
        load_config(str(odd))


@pytest.mark.parametrize("overrides", [
    ["method.name=no_thought", "method.thoughts_per_step=0"],  # the ablation without thoughts may say c = 0
    ["method.name=cot", "method.thoughts_per_step=0"],
    ["trainer.devices=-1"], ["trainer.devices=auto"], ["trainer.devices=0,1"], ["trainer.devices=[0,1]"],
    ["trainer.devices=3"], ["trainer.precision=bf16-mixed"], ["trainer.precision=16"], ["trainer.precision=32"],
    ["trainer.precision=bf16"], ["trainer.precision=16-mixed"], ["trainer.precision=64-true"],
    ["eval.stop_threshold=0"], ["eval.stop_threshold=1"], ["optim.lr=1e-8"], ["name=my run_2"],
])
def test_what_lightning_and_the_methods_accept_still_loads(overrides):
    load_config("demo_coconut", overrides)


def test_the_precisions_are_the_ones_lightning_accepts():
    """Our list follows Lightning's own (its Literal types): a new or dropped value shows here."""
    from typing import get_args

    from lightning.fabric.plugins.precision.precision import (_PRECISION_INPUT_INT, _PRECISION_INPUT_STR,
                                                               _PRECISION_INPUT_STR_ALIAS)
    from coconut.config.training import PRECISIONS

    lightning = {str(v) for t in (_PRECISION_INPUT_INT, _PRECISION_INPUT_STR, _PRECISION_INPUT_STR_ALIAS)
                 for v in get_args(t)}
    assert set(PRECISIONS) == lightning


def test_experiment_files_of_the_wrong_shape_name_the_file_and_the_form(tmp_path):
    listed = tmp_path / "listed.yaml"
    listed.write_text("- model: gpt2\n")
    with pytest.raises(ConfigError, match=r"listed.yaml: an experiment file is a mapping .*; this one is a list"):
        load_config(str(listed))
    hydra = tmp_path / "hydra.yaml"
    hydra.write_text("defaults:\n  - model: gpt2\n")
    with pytest.raises(ConfigError, match=r"hydra.yaml: defaults: must map each group .* not Hydra's list form"):
        load_config(str(hydra))


def test_splits_not_named_are_found_beside_a_named_train_file(tmp_path):
    from coconut.config import DataConfig

    mine, other = tmp_path / "mine", tmp_path / "other"
    for folder in (mine, other):
        folder.mkdir()
        (folder / "test.json").write_text("[]")
    (mine / "prosqa_valid.json").write_text("[]")
    data = DataConfig(generator=None, data_dir=str(other), train_file=str(mine / "train.json"))
    files = data.files()
    assert files["test"] == mine / "test.json", "not the other data set's test.json in data_dir"
    assert files["val"] == mine / "prosqa_valid.json"
    assert DataConfig(generator=None, data_dir=str(other), train_file=str(mine / "train.json"),
                      test_file=str(other / "test.json")).files()["test"] == other / "test.json", "named wins"
    assert DataConfig(data_dir=str(other)).files()["test"] == other / "test.json"


# Lightning's own knobs and the loggers: each value reaches the config as Lightning reads it, bad ones name the key.


@pytest.mark.parametrize("override, key, value", [
    ("trainer.max_steps=5", "max_steps", 5),
    ("trainer.fast_dev_run=true", "fast_dev_run", True),
    ("trainer.fast_dev_run=3", "fast_dev_run", 3),
    ("trainer.val_check_interval=0.25", "val_check_interval", 0.25),  # a fraction of the epoch
    ("trainer.val_check_interval=50", "val_check_interval", 50),  # every 50 training batches
    ("trainer.val_check_interval=50.0", "val_check_interval", 50),  # YAML's float of a count: the count
    ("trainer.limit_test_batches=0.5", "limit_test_batches", 0.5),
    ("trainer.profiler=simple", "profiler", "simple"),
    ("trainer.profiler=pytorch", "profiler", "pytorch"),
])
def test_lightning_knobs_reach_the_config(override, key, value):
    got = getattr(load_config("demo_coconut", [override]).trainer, key)
    assert got == value and type(got) is type(value)


@pytest.mark.parametrize("override, message", [
    ("trainer.max_steps=0", "trainer.max_steps must be >= 1 or null"),
    ("trainer.max_steps=-1", "trainer.max_steps must be >= 1 or null"),
    ("trainer.fast_dev_run=-2", "trainer.fast_dev_run must be true, false or a number of batches"),
    ("trainer.fast_dev_run=maybe", "trainer.fast_dev_run must be true, false or a number of batches"),
    ("trainer.val_check_interval=0", "trainer.val_check_interval must be a fraction of the epoch in (0, 1]"),
    ("trainer.val_check_interval=2.5", "trainer.val_check_interval must be"),
    ("trainer.val_check_interval=often", "trainer.val_check_interval must be"),
    ("trainer.limit_test_batches=0", "trainer.limit_test_batches must be > 0"),
    ("trainer.profiler=fancy", "trainer.profiler='fancy' is not one of Lightning's"),
    ("logger=tensorboard,neptune", "logger=tensorboard,neptune: unknown logger neptune"),
    ("logger=7", "logger=7 must name loggers"),
])
def test_bad_lightning_knobs_are_refused_naming_the_key(override, message):
    with pytest.raises(ConfigError) as err:
        load_config("demo_coconut", [override])
    assert message in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("override, names", [
    (None, ["tensorboard", "csv"]),
    ("logger=csv", ["csv"]),
    ("logger=tensorboard,csv,wandb,mlflow", ["tensorboard", "csv", "wandb", "mlflow"]),
    ("logger=[csv,mlflow]", ["csv", "mlflow"]),
    ("logger= WandB , csv,csv", ["wandb", "csv"]),
    ("logger=null", []),
])
def test_logger_takes_a_list_or_a_comma_string(override, names):
    from coconut.experiment import to_yaml

    cfg = load_config("demo_coconut", [override] if override else [])
    assert cfg.logger == names
    assert OmegaConf.create(to_yaml(cfg)).logger == names, "config.yaml records the loggers"


def test_a_missing_optional_logger_names_its_extra(monkeypatch):
    import sys

    from coconut.config.loggers import check_logger_packages

    monkeypatch.setitem(sys.modules, "wandb", None)  # as if not installed: find_spec finds nothing
    with pytest.raises(ConfigError) as err:
        check_logger_packages(["tensorboard", "csv", "wandb"])
    assert str(err.value) == ("logger=wandb needs the wandb package, which is not installed: pip install "
                              "'coconut-latent[wandb]' (or drop wandb from logger=)")
    monkeypatch.setitem(sys.modules, "mlflow", None)
    with pytest.raises(ConfigError, match=r"pip install 'coconut-latent\[mlflow\]'"):
        check_logger_packages(["mlflow"])
    check_logger_packages(["tensorboard", "csv"])  # the default needs no extra


def test_quickstart_trains_a_visible_curriculum_on_a_cpu_without_downloads():
    cfg = load_config("quickstart")
    assert cfg.model.name_or_path is None and cfg.model.init_from is None, "built locally, from scratch"
    assert cfg.data.generator is not None and cfg.data.tokenizer == "word", "data generated, no hub tokenizer"
    assert cfg.trainer.accelerator == "cpu" and cfg.method.name == "coconut"
    assert cfg.method.max_latent_stage >= 3 and cfg.trainer.last_stage == cfg.final_stage(), "every transition trains"


def test_every_shipped_file_has_a_one_line_description():
    """What `coconut list` prints: the first sentence of each file's leading comment, short enough for one line."""
    from coconut.cli.listing import LONGEST, description

    files = sorted(EXPERIMENTS_DIR.glob("*.yaml")) + sorted(CONF_DIR.glob("*/*.yaml"))
    missing = [p.name for p in files if not description(p)]
    assert not missing, f"no leading comment: {missing}"
    assert all(len(description(p)) <= LONGEST for p in files)
