"""Hand-checked samples of every method at stages 0, 1 and past the maximum."""

import random
from collections import Counter

import pytest

from coconut.config import METHODS, MethodConfig, StageSchedule
from coconut.data.curriculum import TokenizedRecord, build_sample, icot_sample, latent_plan, longest_sample_length
from coconut.engine.special_tokens import SpecialIds

IDS = SpecialIds(start=2, latent=3, end=4, eos=1, pad=0, pause=5)
REC = TokenizedRecord(question=[10, 11], steps=[[20, 21], [22], [23, 24]], answer=[30])
M = -100


def sample(name, stage, **kw):
    kw.setdefault("max_latent_stage", 2)
    return build_sample(REC, MethodConfig(name=name, **kw), stage, IDS)


def check(s, tokens, hidden, thoughts=0):
    """tokens; the first `hidden` are unlabelled; labels equal tokens after."""
    assert s.input_ids == tokens
    assert s.labels == [M] * hidden + tokens[hidden:]
    assert s.prompt == tokens[:hidden] and s.target == tokens[hidden:]
    assert s.num_thoughts == thoughts


@pytest.mark.parametrize("stage, tokens, hidden, thoughts", [
    (0, [10, 11, 2, 4, 20, 21, 22, 23, 24, 30, 1], 4, 0),
    (1, [10, 11, 2, 3, 4, 22, 23, 24, 30, 1], 5, 1),
    (2, [10, 11, 2, 3, 3, 4, 23, 24, 30, 1], 6, 2),
    (3, [10, 11, 2, 3, 3, 4, 30, 1], 6, 2),  # past the maximum: every step removed, thoughts stay at 2
    (9, [10, 11, 2, 3, 3, 4, 30, 1], 6, 2),
])
def test_coconut(stage, tokens, hidden, thoughts):
    check(sample("coconut", stage), tokens, hidden, thoughts)


def test_stage0_without_the_closing_marker():
    check(sample("coconut", 0, eot_at_stage0=False), [10, 11, 2, 20, 21, 22, 23, 24, 30, 1], 3, 0)
    check(sample("coconut", 1, eot_at_stage0=False), [10, 11, 2, 3, 4, 22, 23, 24, 30, 1], 5, 1)


def test_coconut_two_thoughts_per_step():
    check(sample("coconut", 1, thoughts_per_step=2), [10, 11, 2, 3, 3, 4, 22, 23, 24, 30, 1], 6, 2)
    check(sample("coconut", 3, thoughts_per_step=2), [10, 11, 2, 3, 3, 3, 3, 4, 30, 1], 8, 4)


def test_coconut_pad_latent_to_max_and_short_records():
    padded = dict(pad_latent_to_max=True)
    check(sample("coconut", 0, **padded), [10, 11, 2, 4, 20, 21, 22, 23, 24, 30, 1], 4, 0)  # stage 0 stays CoT
    check(sample("coconut", 1, **padded), [10, 11, 2, 3, 4, 22, 23, 24, 30, 1], 5, 1)
    check(sample("coconut", 3, **padded), [10, 11, 2, 3, 3, 4, 30, 1], 6, 2)
    short = TokenizedRecord(question=[10], steps=[[20]], answer=[30])
    s = build_sample(short, MethodConfig(max_latent_stage=3), 2, IDS)  # more stages than steps: one thought
    check(s, [10, 2, 3, 4, 30, 1], 4, 1)
    s = build_sample(short, MethodConfig(max_latent_stage=3, pad_latent_to_max=True), 2, IDS)  # padded: two
    check(s, [10, 2, 3, 3, 4, 30, 1], 5, 2)
    s = build_sample(short, MethodConfig(max_latent_stage=3, pad_latent_to_max=True), 5, IDS)  # final: three
    check(s, [10, 2, 3, 3, 3, 4, 30, 1], 6, 3)
    assert latent_plan(num_steps=1, stage=2, method=MethodConfig(max_latent_stage=3)) == (1, 1)


@pytest.mark.parametrize("name, stage, tokens, hidden", [
    ("cot", 0, [10, 11, 20, 21, 22, 23, 24, 30, 1], 2),
    ("cot", 5, [10, 11, 20, 21, 22, 23, 24, 30, 1], 2),
    ("no_cot", 0, [10, 11, 30, 1], 2),
    ("no_cot", 3, [10, 11, 30, 1], 2),
    ("pause", 0, [10, 11, 5, 5, 30, 1], 4),
    ("pause", 3, [10, 11, 5, 5, 30, 1], 4),
    ("pause_as_thought", 0, [10, 11, 20, 21, 22, 23, 24, 30, 1], 2),
    ("pause_as_thought", 1, [10, 11, 5, 22, 23, 24, 30, 1], 3),
    ("pause_as_thought", 3, [10, 11, 5, 5, 30, 1], 4),
    # w/o thought: the curriculum's steps removed, and no <bot><eot> markers (the release writes none).
    ("no_thought", 0, [10, 11, 20, 21, 22, 23, 24, 30, 1], 2),
    ("no_thought", 1, [10, 11, 22, 23, 24, 30, 1], 2),
    ("no_thought", 3, [10, 11, 30, 1], 2),
])
def test_baselines_and_ablations(name, stage, tokens, hidden):
    check(sample(name, stage, num_pause=2), tokens, hidden)


@pytest.mark.parametrize("removed, tokens", [
    (0, [10, 11, 20, 21, 22, 23, 24, 30, 1]),
    (2, [10, 11, 22, 23, 24, 30, 1]),  # from the left: the first step's two tokens go
    (3, [10, 11, 23, 24, 30, 1]),  # the removal cuts through steps, it counts tokens
    (5, [10, 11, 30, 1]),
    (6, [10, 11, 30, 1]),  # 6 to remove, 5 exist: the whole CoT goes, the answer stays
    (float("inf"), [10, 11, 30, 1]),  # past the remove-all threshold
])
def test_icot_removes_cot_tokens_from_the_left(removed, tokens):
    s = icot_sample(REC, removed, IDS, stage=4)
    check(s, tokens, 2)
    assert s.stage == 4


def test_icot_samples_are_not_built_from_the_stage():
    with pytest.raises(ValueError, match="icot_sample"):
        sample("icot", 1)


@pytest.mark.parametrize("stage", [0, 1, 3])
def test_no_curriculum_is_the_final_stage_from_the_start(stage):
    check(sample("no_curriculum", stage), [10, 11, 2, 3, 3, 4, 30, 1], 6, 2)


@pytest.mark.parametrize("stage", [0, 2])
def test_codi_pairs_the_student_with_its_teacher(stage):
    # The answer's prefix is [31, 32] ("The answer is:"), the answer itself 30: the token before it, 32, is where the
    # student's and the teacher's hidden states are compared.
    rec = TokenizedRecord(question=[10, 11], steps=[[20, 21], [22], [23, 24]], answer=[31, 32, 30], answer_start=2)
    s = build_sample(rec, MethodConfig(name="codi", num_latent=2), stage, IDS)  # CODI has no curriculum
    check(s, [10, 11, 2, 3, 3, 4, 31, 32, 30, 1], 6, 2)
    assert s.input_ids[s.distill] == 32
    assert s.teacher_ids == [10, 11, 20, 21, 22, 31, 32, 30, 1]  # the last step left out, as the release
    assert (s.teacher_labelled_from, s.teacher_ids[s.teacher_distill]) == (2, 32)
    whole = build_sample(rec, MethodConfig(name="codi", num_latent=2, include_last_cot=True), stage, IDS)
    assert whole.teacher_ids == [10, 11, 20, 21, 22, 23, 24, 31, 32, 30, 1]
    assert whole.teacher_ids[whole.teacher_distill] == 32


def test_every_method_has_a_test_above():
    tested = {"coconut", "cot", "no_cot", "icot", "pause", "pause_as_thought", "no_thought", "no_curriculum", "codi"}
    assert tested == set(METHODS)


def test_uniform_mixing_trains_other_stages_at_the_given_rate():
    rng = random.Random(0)
    method = MethodConfig(uniform_prob=0.3, max_latent_stage=6)
    stages = Counter(build_sample(REC, method, 2, IDS, rng).stage for _ in range(4000))
    mixed = 1 - stages[2] / 4000
    # a mixed sample lands on one of the 4 stages 0..3 uniformly, so 2 stays 2 a quarter of the time
    assert abs(mixed - 0.3 * 0.75) < 0.03
    assert set(stages) == {0, 1, 2, 3}
    assert build_sample(REC, method, 2, IDS).stage == 2, "no mixing without rng (evaluation)"


def test_stage_schedule_and_length_bound():
    assert [StageSchedule(3).stage(e) for e in range(7)] == [0, 0, 0, 1, 1, 1, 2]
    gsm8k = StageSchedule(epochs_per_stage=3, first_stage_epochs=6)  # the paper's GSM8k schedule
    assert [gsm8k.stage(e) for e in range(13)] == [0] * 6 + [1] * 3 + [2] * 3 + [3]
    assert (gsm8k.start(2), gsm8k.length(0), gsm8k.length(2)) == (9, 6, 3)
    assert [e for e in range(12) if gsm8k.ends_stage(e)] == [5, 8, 11]
    with pytest.raises(ValueError):
        StageSchedule(0)
    method = MethodConfig(max_latent_stage=2)
    bound = longest_sample_length(REC, method)
    assert all(len(build_sample(REC, method, k, IDS).input_ids) <= bound for k in range(5))


def test_bad_method_settings():
    with pytest.raises(ValueError, match="unknown method 'latent'.*coconut"):
        MethodConfig(name="latent")
    with pytest.raises(ValueError, match="uniform_prob"):
        MethodConfig(uniform_prob=1.5)
    with pytest.raises(ValueError, match="<\\|pause\\|>"):
        build_sample(REC, MethodConfig(name="pause"), 0, SpecialIds(2, 3, 4, 1, 0))


def test_start_epoch_skips_stage_0_as_the_release_does_for_gsm8k():
    # The release's gsm_coconut.yaml: epochs_per_stage 3, resume 3, num_epochs 25. Trained epoch e is the
    # schedule's epoch e + 3: stage 1 in epochs 3-5, 2 in 6-8, 3 in 9-11, then stages 4-8 from 12 to 24 (all
    # past max_latent_stage 3: the final stage's samples).
    schedule = StageSchedule(epochs_per_stage=3, start_epoch=3)
    stages = [schedule.stage(e) for e in range(22)]
    assert stages == [1] * 3 + [2] * 3 + [3] * 3 + [4] * 3 + [5] * 3 + [6] * 3 + [7] * 3 + [8]
    assert [schedule.start(k) for k in (1, 2, 3, 4)] == [0, 3, 6, 9]
    assert [schedule.length(k) for k in (0, 1, 2)] == [0, 3, 3]
    assert [e for e in range(21) if schedule.ends_stage(e)] == [2, 5, 8, 11, 14, 17, 20]
    partly = StageSchedule(epochs_per_stage=3, first_stage_epochs=6, start_epoch=4)
    assert (partly.stage(0), partly.stage(1), partly.stage(2), partly.length(0), partly.start(1)) == (0, 0, 1, 2, 2)


@pytest.mark.parametrize("name, kw, counts, settled", [
    ("coconut", {"pad_latent_to_max": True}, [2, 3], 3),  # every step removed and 3 thoughts from stage 3 on
    ("coconut", {"pad_latent_to_max": True}, [2, 3, 4], 4),  # a 4-step record keeps a step until stage 4
    ("coconut", {"pad_latent_to_max": False}, [1, 2], 2),  # unpadded: a record settles once its steps are gone
    ("coconut", {"pad_latent_to_max": False}, [3], 3),
    ("no_curriculum", {}, [1, 2, 3], 0),
])
def test_samples_settle_before_the_final_stage_on_records_of_few_steps(name, kw, counts, settled):
    from coconut.methods import method

    cfg = MethodConfig(name=name, max_latent_stage=3, **kw)
    m = method(name)
    final = m.final_stage(cfg, last_stage=4)
    assert m.settled_stage(cfg, final, counts) == settled
    # The rule the stage stands for: from it on, every record's sample is the final stage's, and not before.
    for stage in range(final + 1):
        same = all(m.block(cfg, stage, n) == m.block(cfg, final, n) for n in counts)
        assert same == (stage >= settled)
