"""coconut: train language models to reason in a continuous latent space (COCONUT, arXiv 2412.06769).

Heavy modules (torch, transformers) load on first use, so `coconut --help` stays fast.
"""

__version__ = "0.1.0"

_LAZY = {
    "LatentReasoner": "coconut.engine.reasoner",
    "LatentOutput": "coconut.engine.reasoner",
    "LatentInputError": "coconut.engine.alignment",
    "GenerateOutput": "coconut.engine.generation",
    "add_latent_tokens": "coconut.engine.special_tokens",
}

__all__ = list(_LAZY)


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'coconut' has no attribute {name!r}")
