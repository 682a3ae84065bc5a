"""The run's export: the tested checkpoint's engine as a folder that answers questions as the test asked them.

The prompt format is taken from what the test really used: the text format's question suffix and answer
marker, the method's thought block at the tested stage, and the module's generation settings (max_new_tokens,
decoder, learned stop, scoring rule).
"""

from __future__ import annotations

from coconut.data.tokenize import TEXT_FORMATS
from coconut.methods import method as method_named
from coconut.engine.prompt_format import QUESTION, PromptFormat


def used_decode(decode) -> dict:
    """The decoder's name and the fields it reads (coconut.config.DecodeConfig; the rest keep their defaults)."""
    return {key: getattr(decode, key) for key in decode.used_fields()}


def prompt_format(cfg, generation, stage: int) -> PromptFormat:
    """The prompt of the run's evaluation at `stage`; `generation` the module's GenerationSettings."""
    fmt, method = TEXT_FORMATS[cfg.data.text_format], cfg.method
    return PromptFormat(method=method.name, stage=stage, question_template=QUESTION + fmt.question_suffix,
                        answer_marker=generation.answer_marker,
                        options={key: getattr(method, key) for key in method_named(method.name).prompt_fields},
                        max_new_tokens=generation.max_new_tokens, scoring=generation.scoring,
                        learned_stop=generation.learned_stop, max_thoughts=generation.max_thoughts,
                        stop_threshold=generation.stop_threshold, decode=used_decode(generation.decode))


def export_model(cfg, folder, module, tokenizer, stage: int, results: dict) -> None:
    """Write the engine, tokenizer, coconut.json (with the prompt format at `stage`) and the model card into
    `folder`; `results`: what results.json will hold (its test metrics go into the card)."""
    module.engine.save_pretrained(folder, tokenizer, prompt=prompt_format(cfg, module.generation, stage),
                                  results=results, method=cfg.method.name,
                                  thoughts_per_step=cfg.method.thoughts_per_step,
                                  max_latent_stage=cfg.method.max_latent_stage)
