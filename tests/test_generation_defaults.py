"""One owner for the generation settings: every function that generates defaults to the config's value."""

import inspect

from coconut.analysis.search import forced_thoughts
from coconut.analysis.thoughts import read_thoughts
from coconut.config import DEFAULT_MAX_NEW_TOKENS, EvalConfig
from coconut.engine.generation import generate
from coconut.engine.reasoner import LatentReasoner
from coconut.train.module import GenerationSettings


def test_every_max_new_tokens_default_is_the_configs():
    defaults = {f.__qualname__: inspect.signature(f).parameters["max_new_tokens"].default
                for f in (generate, LatentReasoner.generate, forced_thoughts, read_thoughts)}
    defaults["GenerationSettings"] = GenerationSettings().max_new_tokens
    assert EvalConfig().max_new_tokens == DEFAULT_MAX_NEW_TOKENS
    assert defaults == dict.fromkeys(defaults, DEFAULT_MAX_NEW_TOKENS)
