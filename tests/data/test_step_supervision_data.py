"""Step supervision's sample fields: which thought reads which step (coconut.methods.step_supervision), and how the
collator batches them; the methods without continuous thoughts refuse the option."""

import pytest

from coconut.config import MethodConfig
from coconut.data.collate import LatentCollator
from coconut.data.curriculum import TokenizedRecord, build_sample
from coconut.markers import IGNORE_INDEX, SpecialIds
from coconut.methods.codi import supervised_steps
from coconut.methods.step_supervision import curriculum_targets

IDS = SpecialIds(start=90, latent=91, end=92, eos=99, pad=99)
NL = 9  # the steps' newline


def test_the_curriculum_mapping_merges_the_tail_and_pads_with_the_rest():
    steps = [[1, NL], [2, NL], [3, NL], [4, NL]]
    ends = [1, 1, 1, 1]
    assert curriculum_targets(steps, ends, removed=2, thoughts=2, max_latent_stage=3, rest=[7]) == [[1], [2]]
    # Past max_latent_stage 3: the third thought reads steps 3 and 4, joined by their newline.
    assert curriculum_targets(steps, ends, removed=4, thoughts=3, max_latent_stage=3, rest=[7]) == [[1], [2], [3, NL, 4]]
    # Fewer steps than thoughts: the rest of the sample (the answer) fills in.
    assert curriculum_targets(steps[:1], ends[:1], removed=1, thoughts=3, max_latent_stage=3, rest=[7, 8]) == [
        [1], [7, 8], [7, 8]]


def test_codis_mapping_supervises_num_latent_plus_one_vectors():
    assert supervised_steps([[1], [2], [3], [4]], num_latent=2) == [[1], [2], [3, 4]]
    assert supervised_steps([[1]], num_latent=2) == [[1], [], []]


def test_samples_carry_sources_and_targets_and_the_collator_pads_them():
    method = MethodConfig(name="coconut", thoughts_per_step=2, max_latent_stage=3, step_supervision=True)
    long = TokenizedRecord(question=[10, 11], steps=[[1, NL], [2, NL]], answer=[5, 6], step_ends=[1, 1])
    short = TokenizedRecord(question=[12], steps=[[3, NL]], answer=[5, 7], step_ends=[1])
    a, b = build_sample(long, method, 2, IDS), build_sample(short, method, 2, IDS)
    # question, <bot>, 4 thoughts: thought group t reads the states before latents 2t and 2t+1.
    assert a.step_sources == [[2, 3], [4, 5]] and a.step_targets == [[1, 99], [2, 99]]
    assert b.step_sources == [[1, 2]] and b.step_targets == [[3, 99]]  # one step: 2 thoughts, one group
    batch = LatentCollator(IDS.pad, IDS.latent)([a, b])
    left = 1  # b is left-padded by one so the first latents line up
    assert batch["step_sources"].tolist() == [[[2, 3], [4, 5]], [[1 + left, 2 + left], [-1, -1]]]
    assert batch["step_targets"].tolist() == [[[1, 99], [2, 99]], [[3, 99], [IGNORE_INDEX, IGNORE_INDEX]]]
    for row, sources in enumerate(batch["step_sources"].tolist()):
        for group in sources:
            for s in group:
                if s >= 0:  # each source is the column before a <|latent|>
                    assert batch["input_ids"][row, s + 1] == IDS.latent


@pytest.mark.parametrize("name", ["cot", "no_cot", "icot", "pause", "no_thought", "pause_as_thought"])
def test_methods_without_thoughts_refuse_the_option(name):
    with pytest.raises(ValueError, match=f"method {name} has no continuous thoughts to supervise; it applies to "
                                          "coconut, no_curriculum, codi"):
        MethodConfig(name=name, step_supervision=True)


def test_a_bad_setting_is_named():
    with pytest.raises(ValueError, match="method.step_loss_per must be one of sequence, token, got 'tokens'"):
        MethodConfig(step_loss_per="tokens")
