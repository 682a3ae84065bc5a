"""The prompt format a run exports is the one its evaluation uses: for each stage of the tiny curriculum, the prompt
built from the recorded format equals the evaluation prompt of every validation question."""

import pytest

from coconut.train.export import prompt_format


@pytest.mark.parametrize("extra", [(), ("method.pad_latent_to_max=false", "method.eot_at_stage0=true"),
                                   ("data.text_format=paper",)])
def test_the_exported_format_builds_the_evaluation_prompt_at_every_stage(tiny_system, extra):
    from coconut.data.records import load_records

    cfg, module, datamodule, tokenizer = tiny_system(*extra)
    records = load_records(cfg.data.files()["val"])
    for stage in range(cfg.method.max_latent_stage + 2):
        datamodule.freeze_stage(stage)
        fmt = prompt_format(cfg, module.generation, stage)
        assert fmt.answer_marker == module.generation.answer_marker and fmt.max_new_tokens == cfg.eval.max_new_tokens
        for (sample, _), record in zip(datamodule.eval_items("val"), records, strict=True):
            assert fmt.prompt_ids(tokenizer, record["question"], len(record["steps"])) == sample.prompt
