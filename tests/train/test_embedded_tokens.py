"""New tokens as the release adds them: only the methods that use them embed them, in the release's order, copied
from `model.init_token`; a CoT checkpoint (no new rows) starts a COCONUT run whose new rows copy that token."""

import pytest
import torch

from coconut.engine.special_tokens import END_LATENT, LATENT, PAUSE, START_LATENT
from coconut.experiment import load_config
from tests.integration.tiny_run import tiny_overrides


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    """A tiny GPT-2 and a tokenizer without any latent token, saved like a hub download."""
    from transformers import PreTrainedTokenizerFast
    from tokenizers import Tokenizer, models, pre_tokenizers

    from tests.helpers import tiny_model

    folder = tmp_path_factory.mktemp("gpt2")
    words = ["<eos>", "<unk>", "<<", "###", "=", ";", "?", ":", "|"] + [f"p{i}" for i in range(10)] + \
        [f"c{i}" for i in range(40)]
    core = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, eos_token="<eos>", unk_token="<unk>")
    torch.manual_seed(0)
    model = tiny_model("gpt2", vocab_size=len(words))
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder, len(words)


def engine_of(tmp_path, folder, method, *extra):
    from coconut.train.build import build_engine, load_or_build_tokenizer
    from coconut.run_dir import RunDir

    cfg = load_config("demo_coconut", tiny_overrides(tmp_path, f"model.name_or_path={folder}", "data.tokenizer=model",
                                                     "model.init_token=<<", f"method={method}", f"name={method}",
                                                     *extra))
    tokenizer = load_or_build_tokenizer(cfg, RunDir(cfg.run_dir))
    return cfg, build_engine(cfg, tokenizer), tokenizer


@pytest.mark.parametrize("method, added", [
    ("cot", 0), ("no_cot", 0), ("no_thought", 0), ("icot", 0),
    ("coconut", 3), ("no_curriculum", 3), ("pause", 1), ("pause_as_thought", 1),
])
def test_only_the_methods_that_use_new_tokens_embed_them(tmp_path, pretrained, method, added):
    folder, vocab = pretrained
    _, engine, tokenizer = engine_of(tmp_path, folder, method)
    table = engine.model.get_input_embeddings().weight
    assert table.shape[0] == vocab + added, "one softmax class per new token the method uses, no more"
    ids = [tokenizer.convert_tokens_to_ids(t) for t in (START_LATENT, END_LATENT, LATENT, PAUSE)]
    if added == 3:  # the release's order: start 50257, end 50258, latent 50259 on GPT-2
        assert ids[:3] == [vocab, vocab + 1, vocab + 2]
    if added == 1:
        assert ids[3] == vocab, "the pause token right after the vocabulary"
    source = table[tokenizer.convert_tokens_to_ids("<<")]
    for row in range(vocab, vocab + added):
        assert torch.equal(table[row], source), "new rows start as the embedding of model.init_token"


def test_a_cot_checkpoint_starts_coconut_with_new_rows_from_the_loaded_init_token(tmp_path, pretrained):
    from coconut.train.checkpoints import init_weights
    from coconut.train.module import CoconutModule, GenerationSettings

    folder, vocab = pretrained
    cot_cfg, cot_engine, cot_tok = engine_of(tmp_path, folder, "cot")
    with torch.no_grad():  # as if CoT training had moved the embeddings
        cot_engine.model.get_input_embeddings().weight.add_(torch.randn_like(cot_engine.model.get_input_embeddings().weight))
    cot = CoconutModule(cot_engine, cot_tok, cot_cfg.optim, cot_cfg.trainer.schedule, GenerationSettings())
    path = tmp_path / "cot.ckpt"
    torch.save({"state_dict": cot.state_dict()}, path)

    cfg, engine, tokenizer = engine_of(tmp_path, folder, "coconut")
    module = CoconutModule(engine, tokenizer, cfg.optim, cfg.trainer.schedule, GenerationSettings())
    init = tokenizer.convert_tokens_to_ids("<<")
    init_weights(module, path, init_id=init)
    loaded, trained = engine.model.get_input_embeddings().weight, cot_engine.model.get_input_embeddings().weight
    assert torch.equal(loaded[:vocab], trained), "the CoT rows as trained"
    for row in range(vocab, vocab + 3):
        assert torch.equal(loaded[row], trained[init]), "new rows from the trained '<<', not the pretrained one"
    assert torch.equal(engine.model.get_output_embeddings().weight, loaded), "GPT-2's head stays tied"
