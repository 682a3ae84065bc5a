"""The paper's methods in one place: their Table 1 labels and row order, what each does, which are stepwise."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MethodInfo:
    label: str  # the row of the paper's Table 1
    description: str
    # New tokens the model embeds: "latent" (the three markers), "pause" (<|pause|>) or None. The release adds
    # no embeddings for CoT, No-CoT and w/o thought (their vocabulary stays GPT-2's 50257).
    embeds: str | None = None

    @property
    def latent_passes(self) -> bool:
        """Its steps feed back continuous thoughts: one decoder call per thought column, not one per step."""
        return self.embeds == "latent"


# The paper's methods, in Table 1's row order (the report and the sweep follow it).
METHODS = {
    "cot": MethodInfo("CoT", "all reasoning steps in language"),
    "no_cot": MethodInfo("No-CoT", "the answer only"),
    "icot": MethodInfo("iCoT", "stepwise internalisation: leading CoT tokens removed gradually, batch by batch"),
    "pause": MethodInfo("Pause token", "a fixed number of <|pause|> tokens between question and answer", "pause"),
    "coconut": MethodInfo("COCONUT", "continuous thoughts replace the first k steps at stage k (c thoughts per step)",
                          "latent"),
    "no_curriculum": MethodInfo("w/o curriculum", "COCONUT's final stage from the start (ablation)", "latent"),
    "no_thought": MethodInfo("w/o thought", "the COCONUT curriculum removing steps without adding thoughts (ablation)"),
    "pause_as_thought": MethodInfo("pause as thought",
                                   "the COCONUT curriculum with <|pause|> tokens in place of thoughts (ablation)",
                                   "pause"),
}
# Methods whose samples change stage by stage, replacing one more language step each time.
STEPWISE_METHODS = ("coconut", "no_thought", "pause_as_thought")
