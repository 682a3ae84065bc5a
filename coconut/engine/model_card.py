"""The model card (README.md) of an exported folder: what was trained on what, how well, and how to ask it.

A Hugging Face model card: YAML metadata, then Markdown, so the folder can be uploaded as it is
(`hf upload USER/NAME runs/NAME/export`). Everything in it comes from coconut.json and the run's results
(results.json's fields: name, test metrics, test split and stage, data provenance); what is unknown is left out.
"""

from __future__ import annotations

from pathlib import Path

CARD_FILE = "README.md"
METRICS = (("acc", "accuracy"), ("tokens", "tokens (language + thoughts)"), ("language_tokens", "language tokens"),
           ("thoughts", "thoughts"), ("cot_match", "CoT match"))


def _method_line(method: str | None) -> str:
    from coconut.methods import METHODS

    info = METHODS.get(method or "")
    if info is None:
        return f"Method: `{method}`." if method else "Method: not recorded."
    return f"Method: **{info.label}** (`{method}`): {info.description}."


def _data_lines(results: dict) -> list[str]:
    data = results.get("data") or {}
    lines = []
    for split, entry in data.items():
        if not isinstance(entry, dict) or entry.get("origin") == "missing":
            continue
        origin = entry.get("dataset") or entry.get("generator") or entry.get("origin", "")
        name = Path(entry.get("path", "")).name
        lines.append(f"- {split}: `{name}`, {entry.get('records', '?')} records ({origin}"
                     + (f", sha256 `{entry['sha256'][:12]}`" if entry.get("sha256") else "") + ")")
    return lines


def _results_lines(results: dict) -> list[str]:
    # results.json names them as Lightning logged them: "test/acc"
    test = {key.rsplit("/", 1)[-1]: value for key, value in (results.get("test") or {}).items()}
    shown = [(label, test[key]) for key, label in METRICS if key in test]
    if not shown:
        return ["No test results were recorded with this export."]
    where = f"on the {results.get('test_split', 'test')} split"
    if results.get("test_stage") is not None:
        where += f" at curriculum stage {results['test_stage']}"
    rows = [f"Tested {where} (means per question):", "", "| metric | value |", "| --- | --- |"]
    return rows + [f"| {label} | {value} |" for label, value in shown]


def _runs(tokens: list[str]) -> str:
    """`<|start-latent|>` + 3 x `<|latent|>` + `<|end-latent|>`: repeated tokens counted."""
    parts, i = [], 0
    while i < len(tokens):
        j = i
        while j < len(tokens) and tokens[j] == tokens[i]:
            j += 1
        parts.append(f"`{tokens[i]}`" if j - i == 1 else f"{j - i} x `{tokens[i]}`")
        i = j
    return " + ".join(parts)


def _prompt_lines(prompt) -> list[str]:
    if prompt is None:
        return ["The prompt format is not recorded: build the prompt as the run's evaluation did and call "
                "`generate`."]
    template = prompt.question_template.replace("\n", "\\n")
    block = _runs(prompt.block()) or "nothing (the question alone)"
    stop = (f"; the stop head decides the thoughts (at most {prompt.max_thoughts}): the prompt ends at "
            f"`{prompt.special_tokens['start']}`" if prompt.learned_stop else "")
    return [f"- question: `{template}` with the question's text in place of `{{question}}` (the tokenizer adds its "
            "own special tokens, such as a BOS)",
            f"- then, at stage {prompt.stage}: {block}{stop}",
            f"- the model then writes any remaining steps and `{prompt.answer_marker}` followed by the answer "
            f"(at most {prompt.max_new_tokens} tokens, decoding `{prompt.decode.get('name', 'greedy')}`); the answer "
            f"is read by the `{prompt.scoring}` rule",
            "",
            "All of it is recorded in `coconut.json` (its `prompt` object); `answer` builds it for you."]


def model_card(settings, prompt=None, results: dict | None = None) -> str:
    """The card's text; `settings` an ExportSettings, `prompt` a PromptFormat or None, `results` results.json's."""
    results = results or {}
    name = results.get("name") or "A COCONUT model"
    question = "your question"
    lines = ["---", "library_name: transformers", "tags:", "- coconut", "- latent-reasoning",
             "- continuous-thoughts", "---", "", f"# {name}", "",
             "A causal language model trained with [coconut](https://arxiv.org/abs/2412.06769)'s curriculum to reason "
             "in continuous thoughts: at each `<|latent|>` position its own last hidden state is fed back as the "
             "next input.", "", _method_line(settings.method)]
    if settings.thoughts_per_step is not None:
        lines.append(f"Thoughts per step: {settings.thoughts_per_step}; last latent stage: "
                     f"{settings.max_latent_stage}.")
    data = _data_lines(results)
    if data:
        lines += ["", "## Data", ""] + data
    lines += ["", "## Results", ""] + _results_lines(results)
    lines += ["", "## Ask it", "", "```python", "from coconut import LatentReasoner", "",
              'model = LatentReasoner.from_pretrained("path/to/this/folder")  # a local copy of this folder',
              f'reply = model.answer("{question}")  # a list of questions is answered in batches',
              "print(reply.answer, reply.generated_tokens, reply.thoughts)  # reply.text: all that was generated",
              "```", "",
              "`LatentReasoner` comes with `coconut-latent`, the framework that trained this model (import name "
              "`coconut`; PyPI's `coconut` is an unrelated project). The folder also loads with plain "
              "`transformers.AutoModelForCausalLM`, but that model does not feed its thoughts back: ask it through "
              "`LatentReasoner`.", "", "## Prompt format", ""] + _prompt_lines(prompt)
    return "\n".join(lines) + "\n"


def write_model_card(folder, settings, prompt=None, results: dict | None = None) -> None:
    (Path(folder) / CARD_FILE).write_text(model_card(settings, prompt, results))
