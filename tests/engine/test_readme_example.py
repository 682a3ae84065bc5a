"""The README's engine example runs as written: the code block is read from README.md and executed."""

import contextlib
import io
import re
from pathlib import Path

import torch

README = Path(__file__).resolve().parents[2] / "README.md"
MARKER = "example:engine"


def readme_example() -> str:
    """The python code block between <!-- example:engine --> and <!-- /example:engine --> in README.md."""
    block = re.search(rf"<!-- {MARKER} -->\s*```python\n(.*?)```\s*<!-- /{MARKER} -->", README.read_text(), re.S)
    assert block, f"README.md has no ```python block between <!-- {MARKER} --> markers"
    return block.group(1)


def test_the_readme_engine_example_runs_from_a_record_to_a_decoded_answer():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a tiny model: a second thread only adds contention
    printed = io.StringIO()
    scope: dict = {"__name__": "readme_example"}
    try:
        with contextlib.redirect_stdout(printed):
            exec(compile(readme_example(), str(README), "exec"), scope)
    finally:
        torch.set_num_threads(threads)

    k, out, record = scope["k"], scope["out"], scope["record"]
    assert k == len(record["steps"])
    assert out.num_thoughts.tolist() == [k]  # the prompt's thought block holds k thoughts
    assert isinstance(scope["answer"], str)
    # What the README says it prints: the overfitted record's answer, and language tokens + thoughts.
    assert scope["answer"] == record["answer"]
    # words + thoughts: the final <eos> is not counted, as the release's generate does not return it
    assert out.paper_token_count(scope["engine"].eos_id).tolist() == [len(record["answer"].split()) + k]
    assert out.num_generated.tolist() == [len(record["answer"].split()) + 1]
    assert scope["thoughts"].shape == (k, scope["model"].config.hidden_size)
    lines = printed.getvalue().splitlines()
    assert f"answer: {record['answer']}" in lines
    assert sum(line.startswith("thought ") for line in lines) == k
