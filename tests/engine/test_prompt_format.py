"""An exported model asks a question as the run's test did: the prompt `answer` builds from coconut.json is the data
pipeline's prompt, its reading of the answer is the scoring's, batches answer as single questions do, and a folder
exported before the prompt format was recorded says what is missing."""

import json
from itertools import product

import pytest
import torch
from tokenizers import processors

from coconut.config import ConfigError, MethodConfig
from coconut.data.curriculum import build_sample, icot_sample
from coconut.data.scoring import extract_answer
from coconut.data.tokenize import TEXT_FORMATS, as_tokenized_record, tokenize_record
from coconut.data.word_tokenizer import build_word_tokenizer
from coconut.engine.models import tiny_causal_lm
from coconut.engine.prompt_format import KNOWN_METHODS, QUESTION, PromptFormat
from coconut.engine.reasoner import LatentReasoner
from coconut.engine.special_tokens import SpecialIds
from coconut.methods import METHODS

RECORDS = [  # 0 to 4 steps: fewer, as many and more than the stages ask for
    {"question": f"Is tom{n} a wumpus ?", "steps": [f"tom{n} is a cat{k} ." for k in range(n)], "answer": f"yes{n}"}
    for n in range(5)
]


def word_tokenizer(bos: bool):
    tokenizer = build_word_tokenizer(RECORDS, extra_texts=["###", "=", "#"])
    if bos:  # a tokenizer that adds its own special token (as Llama's BOS): the question carries it, the block not
        tokenizer.add_special_tokens({"bos_token": "<bos>"})
        tokenizer._tokenizer.post_processor = processors.TemplateProcessing(
            single="<bos> $A", special_tokens=[("<bos>", tokenizer.bos_token_id)])
    return tokenizer


def format_for(method: MethodConfig, stage: int, text_format: str, **generation) -> PromptFormat:
    fmt = TEXT_FORMATS[text_format]
    return PromptFormat(method=method.name, stage=stage, question_template=QUESTION + fmt.question_suffix,
                        answer_marker=fmt.answer_prefix,
                        options={key: getattr(method, key) for key in METHODS[method.name].prompt_fields},
                        max_new_tokens=generation.pop("max_new_tokens", 8), scoring="release", **generation)


def test_every_method_is_known_to_the_prompt_format():
    assert set(KNOWN_METHODS) == set(METHODS)


@pytest.mark.parametrize("text_format, bos", [("paper", True), ("compact", False)])
@pytest.mark.parametrize("method_name", sorted(METHODS))
def test_the_prompt_answer_builds_is_the_data_pipelines_at_every_stage(method_name, text_format, bos):
    """The key check of the export: for every method, stage (before, at and past max_latent_stage), number of steps,
    padding rule and stage-0 form, the prompt from the recorded settings is evaluation's prompt token for token;
    without a step count it is the prompt of a question with at least the stage's steps."""
    tokenizer = word_tokenizer(bos)
    ids = SpecialIds.from_tokenizer(tokenizer)
    checked = 0
    for pad, eot, stage in product((False, True), (False, True), range(5)):
        method = MethodConfig(name=method_name, thoughts_per_step=2, max_latent_stage=2, pad_latent_to_max=pad,
                              eot_at_stage0=eot, num_pause=3)
        fmt = format_for(method, stage, text_format)
        for record in RECORDS:
            tokenized = as_tokenized_record(tokenize_record(record, tokenizer, TEXT_FORMATS[text_format]))
            sample = (icot_sample(tokenized, 5.0, ids, stage) if method_name == "icot"
                      else build_sample(tokenized, method, stage, ids))
            assert fmt.prompt_ids(tokenizer, record["question"], len(record["steps"])) == sample.prompt, \
                (pad, eot, stage, len(record["steps"]))
            trained_at = method.max_latent_stage + 1 if method_name == "no_curriculum" else stage
            if pad or len(record["steps"]) >= trained_at:
                assert fmt.prompt_ids(tokenizer, record["question"]) == sample.prompt
            checked += 1
    assert checked == 2 * 2 * 5 * len(RECORDS)
    assert (tokenizer.bos_token_id in fmt.prompt_ids(tokenizer, "Is tom1 a wumpus ?")) == bos


def test_the_recorded_thought_count_is_the_stages():
    method = MethodConfig(name="coconut", thoughts_per_step=2, max_latent_stage=3)
    assert [format_for(method, stage, "compact").thoughts for stage in range(6)] == [0, 2, 4, 6, 6, 6]
    assert format_for(MethodConfig(name="no_curriculum", max_latent_stage=3), 0, "compact").thoughts == 3
    assert format_for(MethodConfig(name="pause", num_pause=6), 0, "compact").thoughts == 0  # pauses are no thoughts


@pytest.mark.parametrize("rule", ["release", "lenient"])
@pytest.mark.parametrize("text", ["= yes", "c1 ; = no = yes ", "no marker", "### 5,000", "# 12", "a ### b #",
                                  "### ## x", ""])
@pytest.mark.parametrize("marker", ["### ", "= "])
def test_the_answer_is_read_as_scoring_reads_it(text, marker, rule):
    fmt = PromptFormat(method="cot", stage=0, question_template=QUESTION, answer_marker=marker, max_new_tokens=8,
                       scoring=rule)
    found = extract_answer(text, marker, rule)
    assert fmt.read_answer(text) == (None if found is None else found.strip())


def test_the_format_survives_coconut_json():
    fmt = format_for(MethodConfig(name="coconut", max_latent_stage=2), 3, "paper", learned_stop=True, max_thoughts=4,
                     decode={"name": "soft_thinking", "temperature": 0.5})
    written = json.loads(json.dumps(fmt.to_dict()))
    assert written["thoughts"] == 2 and written["question_template"] == "{question}\n"
    assert PromptFormat.from_dict(written, "coconut.json") == fmt


def test_coconut_json_holds_the_methods_own_settings_flat():
    codi = format_for(MethodConfig(name="codi", num_latent=4), 0, "paper").to_dict()
    assert codi["num_latent"] == 4 and codi["thoughts"] == 4 and "thoughts_per_step" not in codi
    coconut = format_for(MethodConfig(name="coconut", thoughts_per_step=2, max_latent_stage=3), 2, "paper").to_dict()
    assert (coconut["thoughts_per_step"], coconut["max_latent_stage"], coconut["thoughts"]) == (2, 3, 4)
    assert "num_latent" not in coconut and "num_pause" not in coconut
    # A file written when every method's setting was stored for every method still reads (the others ignored).
    older = {**coconut, "num_pause": 0, "num_latent": 0}
    assert PromptFormat.from_dict(older, "coconut.json").to_dict() == coconut


def test_a_missing_or_foreign_method_setting_is_named():
    written = format_for(MethodConfig(name="coconut"), 1, "paper").to_dict()
    with pytest.raises(ConfigError, match=r"coconut.json: the \"prompt\" object lacks max_latent_stage, settings "
                                          r"of method coconut"):
        PromptFormat.from_dict({k: v for k, v in written.items() if k != "max_latent_stage"}, "coconut.json")
    with pytest.raises(ConfigError, match="num_latent is no setting of method coconut"):
        PromptFormat(method="coconut", stage=0, question_template=QUESTION, answer_marker="= ", max_new_tokens=8,
                     scoring="release", options={"num_latent": 3})
    with pytest.raises(AttributeError, match="of method cot has no 'thoughts_per_step'"):
        PromptFormat(method="cot", stage=0, question_template=QUESTION, answer_marker="= ", max_new_tokens=8,
                     scoring="release").thoughts_per_step


# -- asking an exported model -------------------------------------------------------------------------------------


def export(tmp_path, method="coconut", stage=2, **generation):
    tokenizer = word_tokenizer(bos=False)
    torch.manual_seed(0)
    model = tiny_causal_lm("llama", vocab_size=len(tokenizer), layers=1, hidden=32, heads=2, intermediate=64,
                           max_positions=128, eos_id=tokenizer.eos_token_id, pad_id=tokenizer.pad_token_id,
                           init_std=0.5)  # large weights: random but varied texts
    engine = LatentReasoner.from_tokenizer(model.eval(), tokenizer)
    method_config = MethodConfig(name=method, thoughts_per_step=1, max_latent_stage=2)
    fmt = format_for(method_config, stage, "compact", **generation)
    engine.save_pretrained(tmp_path, tokenizer, prompt=fmt, results={"name": "tiny", "test/acc": 0.5})
    return tmp_path, tokenizer, fmt


def test_answer_generates_from_the_prompt_the_format_builds(tmp_path):
    folder, tokenizer, fmt = export(tmp_path, max_new_tokens=6)
    engine = LatentReasoner.from_pretrained(folder)
    reply = engine.answer("Is tom2 a wumpus ?")
    prompt = torch.tensor([fmt.prompt_ids(tokenizer, "Is tom2 a wumpus ?")])
    gen = engine.generate(prompt, max_new_tokens=6)
    assert reply.text == tokenizer.decode(gen.sequences[0, : gen.num_generated[0]], skip_special_tokens=True)
    assert reply.generated_tokens == int(gen.language_tokens(engine.eos_id)[0])
    assert reply.thoughts == 2 == fmt.thoughts and reply.tokens == reply.generated_tokens + 2
    assert reply.answer == fmt.read_answer(reply.text)


def test_a_list_is_answered_in_batches_as_one_question_at_a_time(tmp_path):
    folder, _, _ = export(tmp_path, max_new_tokens=8)
    engine = LatentReasoner.from_pretrained(folder)
    questions = [r["question"] for r in RECORDS] + ["tom3 ?", "Is tom4 a cat1 cat2 wumpus ?"]  # ragged lengths
    alone = [engine.answer(q) for q in questions]
    assert engine.answer(questions) == alone
    assert engine.answer(questions, batch_size=3) == alone
    assert len({a.text for a in alone}) > 1, "a random model writes different texts: the comparison means something"
    fewer = engine.answer(questions[:2], steps=[0, 1])  # the run's thoughts for questions with 0 and 1 steps
    assert [a.thoughts for a in fewer] == [0, 1]


def test_a_folder_exported_without_the_prompt_format_loads_and_answer_says_what_is_missing(tmp_path):
    folder, _, _ = export(tmp_path)
    settings = json.loads((folder / "coconut.json").read_text())
    del settings["prompt"]
    (folder / "coconut.json").write_text(json.dumps(settings))
    engine = LatentReasoner.from_pretrained(folder)  # the weights still load
    with pytest.raises(ConfigError) as err:
        engine.answer("Is tom1 a wumpus ?")
    message = str(err.value)
    assert message.startswith(f"{folder / 'coconut.json'}: records no prompt format")
    assert "question_template" in message and "answer_marker" in message and "stage" in message


def test_a_prompt_object_lacking_fields_is_refused_naming_them(tmp_path):
    folder, _, _ = export(tmp_path)
    settings = json.loads((folder / "coconut.json").read_text())
    del settings["prompt"]["stage"], settings["prompt"]["answer_marker"]
    (folder / "coconut.json").write_text(json.dumps(settings))
    with pytest.raises(ConfigError, match=r"coconut.json: the \"prompt\" object lacks stage, answer_marker;"):
        LatentReasoner.from_pretrained(folder)


def test_an_engine_not_loaded_from_an_export_says_how_to_get_a_format():
    tokenizer = word_tokenizer(bos=False)
    model = tiny_causal_lm("gpt2", vocab_size=len(tokenizer), layers=1, hidden=16, heads=2, max_positions=64)
    with pytest.raises(ConfigError, match="LatentReasoner.from_pretrained"):
        LatentReasoner.from_tokenizer(model, tokenizer).answer("Is tom1 a wumpus ?")


def test_the_model_card_says_how_to_load_and_quotes_the_results(tmp_path):
    folder, _, _ = export(tmp_path)
    engine = LatentReasoner.from_pretrained(folder)
    engine.save_pretrained(tmp_path / "again", results={"name": "tiny", "test": {"test/acc": 0.75, "test/tokens": 3.5},
                                                        "test_split": "test", "test_stage": 2})
    card = (tmp_path / "again" / "README.md").read_text()
    assert card.startswith("---\nlibrary_name: transformers\n")
    assert "| accuracy | 0.75 |" in card and "| tokens (language + thoughts) | 3.5 |" in card
    assert "at curriculum stage 2" in card and "Method: **COCONUT** (`coconut`)" in card
    assert 'LatentReasoner.from_pretrained("path/to/this/folder")' in card and "model.answer(" in card
    assert "`<|start-latent|>` + 2 x `<|latent|>` + `<|end-latent|>`" in card
    # Saved again from the loaded engine: the prompt format and tokenizer travel with it.
    assert LatentReasoner.from_pretrained(tmp_path / "again").answer("tom3 ?") == engine.answer("tom3 ?")
