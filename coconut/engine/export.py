"""The exported model: a plain Hugging Face folder plus `coconut.json`, the latent settings.

    runs/NAME/export/
      config.json, model.safetensors, tokenizer files   loadable with plain transformers
      coconut.json                                       ExportSettings below, with the prompt format
      README.md                                          the model card (coconut.engine.model_card)
      latent_projection.pt, stop_classifier.pt          when the engine has them

`LatentReasoner.save_pretrained(folder)` writes it and `LatentReasoner.from_pretrained(folder)` reads it; with the
prompt format recorded (coconut.engine.prompt_format), `.answer("question")` asks it as the run's test did.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Optional

SETTINGS_FILE = "coconut.json"
PROJECTION_FILE = "latent_projection.pt"
STOP_HEAD_FILE = "stop_classifier.pt"


@dataclass
class ExportSettings:
    """What `LatentReasoner` needs beyond the Hugging Face model, and how the model was trained."""

    latent_id: int
    start_id: int
    end_id: int
    eos_id: int
    pad_id: int
    latent_projection: bool = False
    thought_scale: float = 1.0
    stop_classifier: bool = False
    jacobi_iterations: Optional[int] = None
    projection_dim: Optional[int] = None  # the projection is CODI's MLP through this many units (else linear)
    projection_dropout: float = 0.0
    projection_norm: bool = True
    method: Optional[str] = None  # the training method, for people reading the folder
    thoughts_per_step: Optional[int] = None
    max_latent_stage: Optional[int] = None
    prompt: Optional[dict] = None  # PromptFormat.to_dict(); None in folders exported before it was recorded

    def write(self, folder: Path) -> None:
        (Path(folder) / SETTINGS_FILE).write_text(json.dumps(asdict(self), indent=2) + "\n")

    @classmethod
    def read(cls, folder: Path) -> "ExportSettings":
        path = Path(folder) / SETTINGS_FILE
        if not path.exists():
            raise FileNotFoundError(f"{path}: no such file; is {folder} a folder written by coconut's export?")
        data = json.loads(path.read_text())
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def engine_kwargs(self) -> dict:
        """The `LatentReasoner` constructor arguments these settings give."""
        return {"latent_id": self.latent_id, "start_id": self.start_id, "end_id": self.end_id, "eos_id": self.eos_id,
                "pad_id": self.pad_id, "latent_projection": self.latent_projection,
                "thought_scale": self.thought_scale, "stop_classifier": self.stop_classifier,
                "jacobi_iterations": self.jacobi_iterations, "projection_dim": self.projection_dim,
                "projection_dropout": self.projection_dropout, "projection_norm": self.projection_norm}


def settings_of(engine, **training) -> ExportSettings:
    return ExportSettings(latent_id=engine.latent_id, start_id=engine.start_id, end_id=engine.end_id,
                          eos_id=engine.eos_id, pad_id=engine.pad_id, latent_projection=engine.projection is not None,
                          thought_scale=float(engine.thought_scale), stop_classifier=engine.stop_head is not None,
                          jacobi_iterations=engine.jacobi_iterations, **engine.projection_settings, **training)


def save_engine(engine, folder, tokenizer=None, prompt=None, results: Optional[dict] = None, **training) -> None:
    """Write `engine` (LoRA adapters folded into plain weights), `tokenizer`, the prompt format (a `PromptFormat`;
    default: the one the engine was loaded with) and a model card (with the run's `results` when given) into
    `folder`."""
    import torch

    from coconut.engine.lora import is_lora, merged
    from coconut.engine.model_card import write_model_card

    folder = Path(folder)
    prompt = prompt if prompt is not None else engine.prompt_format
    loaded_from = engine.exported_from
    if tokenizer is None and (engine.tokenizer is not None or
                              (loaded_from is not None and (loaded_from / "tokenizer_config.json").exists())):
        from coconut.engine.answering import tokenizer_of

        tokenizer = tokenizer_of(engine)  # a loaded engine saved again keeps its tokenizer
    folder.mkdir(parents=True, exist_ok=True)
    if is_lora(engine.model):  # the adapters alone, then folded into plain weights for plain transformers
        engine.model.save_pretrained(folder / "lora_adapter")
        engine.model = merged(engine.model)
    engine.model.save_pretrained(folder)
    if tokenizer is not None:
        tokenizer.save_pretrained(folder)
    if prompt is not None:  # a loaded engine saved again keeps what its format says of the training
        training = {"method": prompt.method, "thoughts_per_step": getattr(prompt, "thoughts_per_step", None),
                    "max_latent_stage": getattr(prompt, "max_latent_stage", None), **training}
    settings = settings_of(engine, prompt=prompt.to_dict() if prompt is not None else None, **training)
    settings.write(folder)
    write_model_card(folder, settings, prompt, results)
    if engine.projection is not None:
        torch.save(engine.projection.state_dict(), folder / PROJECTION_FILE)
    if engine.stop_head is not None:
        torch.save(engine.stop_head.state_dict(), folder / STOP_HEAD_FILE)


def load_engine(cls, folder, **model_kwargs):
    """An engine of class `cls` from an exported folder, with its prompt format when the folder records one."""
    import torch
    from transformers import AutoModelForCausalLM

    from coconut.engine.prompt_format import PromptFormat

    folder = Path(folder)
    settings = ExportSettings.read(folder)
    model = AutoModelForCausalLM.from_pretrained(folder, **model_kwargs)
    engine = cls(model, **settings.engine_kwargs())
    engine.exported_from = folder
    if settings.prompt:
        engine.prompt_format = PromptFormat.from_dict(settings.prompt, folder / SETTINGS_FILE)
    if engine.projection is not None:
        engine.projection.load_state_dict(torch.load(folder / PROJECTION_FILE, weights_only=True))
    if engine.stop_head is not None:
        engine.stop_head.load_state_dict(torch.load(folder / STOP_HEAD_FILE, weights_only=True))
    return engine
