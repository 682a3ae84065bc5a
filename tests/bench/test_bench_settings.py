"""`coconut bench` refuses a shape that cannot be allocated when its arguments are parsed, naming the sizes; the
shapes the docs run pass."""

import pytest

from coconut.bench import settings
from coconut.bench.settings import check_bench_args, least_bytes
from coconut.cli.main import build_parser, parse

GIB = 2**30


def bench_args(*argv: str):
    return build_parser().parse_args(["bench", *argv])


def test_the_least_memory_counts_weights_optimizer_state_and_logits():
    args = bench_args("--vocab", "1000", "--width", "8", "--layers", "2", "--batch", "3", "--question", "4",
                      "--thoughts", "1", "--after", "2")
    parameters, needed = least_bytes(args)
    assert parameters == 1000 * 8 + 2 * 12 * 8**2
    tokens = 3 * (4 + 1 + 2 + 2)  # the two latent markers around the thoughts
    assert needed == 16 * parameters + 8 * tokens * 1000
    ranks = bench_args("--vocab", "1000", "--width", "8", "--fsdp-ranks", "64")
    assert least_bytes(ranks)[1] >= 64 * 4 * least_bytes(ranks)[0], "each rank builds the whole model"


def test_a_shape_beyond_the_devices_memory_is_one_usage_line(monkeypatch, capsys):
    monkeypatch.setattr(settings, "device_memory", lambda device: 4 * GIB)
    problem = check_bench_args(bench_args("--vocab", "200000", "--batch", "256"))
    assert problem.startswith("--vocab 200,000 --width 256 --layers 4 --batch 256") and "4.0 GiB of cpu memory" in problem
    with pytest.raises(SystemExit) as stop:
        parse(build_parser(), ["bench", "--vocab", "200000", "--batch", "256"])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("coconut bench: --vocab 200,000")


@pytest.mark.parametrize("argv", [[], ["--vocab", "512"], ["--vocab", "64"], ["--fsdp-ranks", "2", "--arch", "llama",
                                                                              "--layers", "8", "--vocab", "1000"]])
def test_the_documented_shapes_fit_in_4_gib(monkeypatch, argv):
    monkeypatch.setattr(settings, "device_memory", lambda device: 4 * GIB)
    assert check_bench_args(bench_args(*argv)) is None


def test_unknown_memory_refuses_nothing(monkeypatch):
    monkeypatch.setattr(settings, "device_memory", lambda device: None)
    assert check_bench_args(bench_args("--vocab", "1000000000000")) is None


def test_this_machines_memory_is_read():
    assert settings.device_memory("cpu") > 0
