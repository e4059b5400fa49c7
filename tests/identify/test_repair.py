"""Identify by repair (rlint/identify/repair.py): a scripted repairer (the policy is the part not under test)."""

from __future__ import annotations


import pytest

from rlint.config import ConfigError, MineConfig, Params, SamplingConfig, with_changes
from rlint.engine import Sample
from rlint.policy import build_char_tokenizer
from rlint.identify.repair import check_repair_chat, identify_by_oracle_repair, identify_by_repair, repair_metrics, repair_prompt_ids
from rlint.tasks import load_task
from rlint.tasks.arithmetic import REPAIR_MARKER
from rlint.tasks.base import Problem

TASK = load_task(Params().task)
PROBLEM = Problem("p", "Q:12,+7,*3,-5\n", "52")
WRONG = "12+7=19\n19*3=56\n56-5=51\nA:51\n"  # first error in step 2
RIGHT = "12+7=19\n19*3=57\n57-5=52\nA:52\n"


class ScriptedEngine:
    """Answers every repair prompt with the given attempts (texts), in order; records the prompts."""

    def __init__(self, attempts: list[str], max_model_len: int = 128):
        self.tokenizer = build_char_tokenizer()
        self.max_model_len, self.attempts, self.prompts = max_model_len, attempts, []

    def encode(self, text):
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def decode(self, ids):
        return self.tokenizer.decode(ids, skip_special_tokens=True)

    def generate(self, request, desc=""):
        self.prompts.extend(self.decode(p) for p in request.prompts)
        out = []
        for _ in request.prompts:
            texts = (self.attempts * request.n)[:request.n]
            out.append([Sample(self.encode(t) + [self.tokenizer.eos_token_id], [-0.5] * (len(t) + 1), "stop") for t in texts])
        return out


def rollout_row(engine, completion: str, finish_reason: str = "stop", rollout_id: str = "r1-p-s0") -> dict:
    ids = engine.encode(completion) + ([engine.tokenizer.eos_token_id] if finish_reason == "stop" else [])
    ends = [i + 1 for i, c in enumerate(completion) if c == "\n"]
    return {"rollout_id": rollout_id, "problem_id": "p", "prompt": PROBLEM.prompt, "answer": PROBLEM.answer,
            "prompt_token_ids": engine.encode(PROBLEM.prompt), "token_ids": ids, "step_ends": ends, "finish_reason": finish_reason,
            "archived_prefix_token_count": 0, "true_first_error_step": TASK.first_error_step(PROBLEM, completion)}


def params(**mine) -> Params:
    base = Params(credit=with_changes(Params().credit, estimator="repair_diff"))
    return with_changes(base, mine=MineConfig(**{"repair_samples": 3, **mine}), sampling=SamplingConfig(engine="transformers"))


def test_a_verified_small_repair_locates_the_first_error():
    # attempts: wrong again, a rewrite of everything (right, but a big edit), the minimal repair
    rewrite = "12*3=36\n36+7=43\n43+9=52\nA:52\n"
    engine = ScriptedEngine([WRONG.replace("51", "50"), rewrite, RIGHT])
    (row,) = identify_by_repair([rollout_row(engine, WRONG)], engine, TASK, params(repair_max_edit=0.5), seed=0, round_id=1).failures
    assert engine.prompts == [PROBLEM.prompt + WRONG + REPAIR_MARKER]
    assert row["decided_by"] == "repair" and row["first_error_step"] == 2 == row["true_first_error_step"]
    assert row["repair_completion"] == RIGHT and row["repair_reward"] == 1.0 and row["repair_verified"] == 2 and row["repair_attempts"] == 3
    changed = "".join(WRONG[row["changed_spans"][i]:row["changed_spans"][i + 1]] for i in range(0, len(row["changed_spans"]), 2))
    assert changed == "6611"
    assert row["edit_size"] == pytest.approx(4 / (len(WRONG) + 1))
    assert row["tokens_spent"] == sum(len(t) + 1 for t in engine.attempts) and row["continuations_spent"] == 3
    assert len(row["repair_logprobs"]) == len(row["repair_token_ids"])
    assert repair_metrics([row]) == {"repair_tokens": row["tokens_spent"], "repair_attempted": 1, "repair_success": 1.0}


def test_every_attempt_is_kept_as_a_continuation_of_the_repair_prompt():
    engine = ScriptedEngine([WRONG.replace("51", "50"), RIGHT])
    repaired = identify_by_repair([rollout_row(engine, WRONG)], engine, TASK, params(repair_samples=2), seed=0, round_id=1)
    (failure,) = repaired.failures
    assert engine.decode(failure["repair_prompt_token_ids"]) == PROBLEM.prompt + WRONG + REPAIR_MARKER
    assert [a["continuation_id"] for a in repaired.continuations] == ["r1-p-s0-repair0", "r1-p-s0-repair1"]
    assert [(a["stage"], a["failure_id"], a["reward"], a["completion"]) for a in repaired.continuations] == [
        ("repair", "r1-p-s0", 0.0, WRONG.replace("51", "50")), ("repair", "r1-p-s0", 1.0, RIGHT)]
    assert all(len(a["logprobs"]) == len(a["token_ids"]) for a in repaired.continuations)
    assert sum(len(a["token_ids"]) for a in repaired.continuations) == failure["tokens_spent"]


def test_gates_refuse_rewrites_unverified_attempts_and_truncated_failures():
    rewrite = "12*3=36\n36+7=43\n43+9=52\nA:52\n"
    engine = ScriptedEngine([rewrite])
    rows = [rollout_row(engine, WRONG), rollout_row(engine, WRONG[:20], "length", "r1-p-s1")]
    located, truncated = identify_by_repair(rows, engine, TASK, params(repair_max_edit=0.3), seed=0, round_id=1).failures
    assert located["decided_by"] == "repair_rewrite" and located["first_error_step"] is None and located["repair_token_ids"] is None
    assert truncated["decided_by"] == "repair_truncated" and truncated["repair_attempts"] == 0 and truncated["tokens_spent"] == 0
    assert len(engine.prompts) == 1  # the truncated failure was not sent
    engine = ScriptedEngine([WRONG])
    (row,) = identify_by_repair([rollout_row(engine, WRONG)], engine, TASK, params(), seed=0, round_id=1).failures
    assert row["decided_by"] == "repair_unverified" and row["repair_verified"] == 0
    assert repair_metrics([row, truncated])["repair_success"] == 0.0


def test_a_replayed_failure_is_repaired_whole_and_diffed_after_its_prefix():
    engine = ScriptedEngine([RIGHT])
    row = rollout_row(engine, WRONG)
    cut = len("12+7=19\n")  # the archived prefix: the first step
    row["prompt_token_ids"] = row["prompt_token_ids"] + row["token_ids"][:cut]
    row["token_ids"], row["archived_prefix_token_count"] = row["token_ids"][cut:], cut
    row["step_ends"] = [e - cut for e in row["step_ends"][1:]]
    (out,) = identify_by_repair([row], engine, TASK, params(), seed=0, round_id=1).failures
    assert engine.prompts == [PROBLEM.prompt + WRONG + REPAIR_MARKER]  # the whole attempt is shown
    assert out["decided_by"] == "repair" and out["first_error_step"] == 1  # counted after the prefix
    assert out["changed_spans"][0] == len("19*3=5")


def test_a_repair_prompt_longer_than_the_context_is_refused_before_sampling():
    engine = ScriptedEngine([RIGHT], max_model_len=30)
    n = len(PROBLEM.prompt + WRONG + REPAIR_MARKER)  # one token per character
    with pytest.raises(ConfigError, match=rf"^sampling.max_new_tokens: the repair prompt of failure r1-p-s0 has {n} tokens, the model's context is 30$"):
        identify_by_repair([rollout_row(engine, WRONG)], engine, TASK, params(), seed=0, round_id=1).failures
    assert engine.prompts == []


def test_the_chat_template_is_required_when_asked_for_and_used():
    class Chat:
        repair_chat, name = True, "dataset"

        def repair_prompt(self, problem_id, prompt, attempt):
            return f"fix {attempt}"

    tokenizer = build_char_tokenizer("fix 0123456789<>|\n")
    with pytest.raises(ConfigError, match="task.repair_chat: true, but the tokenizer of ckpt has no chat template"):
        check_repair_chat(Chat(), tokenizer, "ckpt")
    tokenizer.chat_template = "{% for m in messages %}<|{{ m['content'] }}|>{% endfor %}{% if add_generation_prompt %}<>{% endif %}"
    check_repair_chat(Chat(), tokenizer, "ckpt")
    assert tokenizer.decode(repair_prompt_ids(Chat(), tokenizer, "p", "q", "12")) == "<|fix 12|><>"


# -- the oracle repair (mode oracle): the reference chain from the true first error, nothing sampled -----------------------
def test_the_oracle_repair_is_diffed_like_a_self_repair():
    engine = ScriptedEngine([RIGHT])
    (self_repaired,) = identify_by_repair([rollout_row(engine, WRONG)], engine, TASK, params(repair_samples=1), seed=0, round_id=1).failures
    (oracle,) = identify_by_oracle_repair([rollout_row(engine, WRONG)], TASK, engine.tokenizer, round_id=1)
    assert oracle["decided_by"] == "oracle_repair" and oracle["first_error_step"] == 2 == oracle["true_first_error_step"]
    # the minimal repair is the reference chain: the same ids, spans, edit size and located step as the policy's
    for key in ("repair_token_ids", "repair_completion", "repair_reward", "changed_spans", "repair_changed_spans", "edit_size", "first_error_step"):
        assert oracle[key] == self_repaired[key], key
    assert oracle["repair_token_ids"] == engine.encode(RIGHT) + [engine.tokenizer.eos_token_id]
    assert oracle["repair_logprobs"] == [0.0] * len(oracle["repair_token_ids"])  # placeholders: credit recomputes them
    assert oracle["tokens_spent"] == oracle["continuations_spent"] == oracle["repair_attempts"] == 0
    assert repair_metrics([oracle]) == {"repair_tokens": 0, "repair_attempted": 0, "repair_success": None}


def test_the_oracle_repair_is_not_gated_by_edit_size_and_refuses_what_it_cannot_repair():
    engine = ScriptedEngine([])
    early = "12*7=84\n84*3=252\n252-5=247\nA:247\n"  # wrong from step 1: a rewrite by the self-repair gate
    rows = [rollout_row(engine, early), rollout_row(engine, RIGHT.replace("52", "50"), rollout_id="r1-p-s1"),
            rollout_row(engine, WRONG[:20], "length", "r1-p-s2"), rollout_row(engine, "", rollout_id="r1-p-s3")]
    rows[1]["true_first_error_step"] = None  # the step checker found no wrong line
    located, none, truncated, empty = identify_by_oracle_repair(rows, TASK, engine.tokenizer, round_id=1)
    assert located["decided_by"] == "oracle_repair" and located["first_error_step"] == 1 and located["edit_size"] > params(repair_max_edit=0.5).mine.repair_max_edit
    assert (none["decided_by"], truncated["decided_by"], empty["decided_by"]) == ("oracle_none", "oracle_truncated", "no_steps")
    assert all(r["first_error_step"] is None and r["repair_token_ids"] is None for r in (none, truncated, empty))
    assert engine.prompts == []  # nothing was sampled


def test_the_oracle_repair_of_a_replayed_failure_keeps_its_archived_prefix():
    engine = ScriptedEngine([])
    row = rollout_row(engine, WRONG)
    cut = len("12+7=19\n")  # the archived prefix: the first step
    row["prompt"] = PROBLEM.prompt + WRONG[:cut]
    row["prompt_token_ids"] = row["prompt_token_ids"] + row["token_ids"][:cut]
    row["token_ids"], row["archived_prefix_token_count"] = row["token_ids"][cut:], cut
    row["step_ends"], row["true_first_error_step"] = [e - cut for e in row["step_ends"][1:]], 1
    (out,) = identify_by_oracle_repair([row], TASK, engine.tokenizer, round_id=1)
    assert out["decided_by"] == "oracle_repair" and out["first_error_step"] == 1  # counted after the prefix
    assert out["repair_token_ids"] == engine.encode(RIGHT) + [engine.tokenizer.eos_token_id]  # a completion of the problem's own prompt
    assert out["changed_spans"][0] == len("19*3=5")
    row["true_first_error_step"] = 0  # the error is inside the archived prefix: context, not trained
    assert identify_by_oracle_repair([row], TASK, engine.tokenizer, round_id=1)[0]["decided_by"] == "oracle_in_prefix"


def test_the_oracle_repair_of_a_missing_line_rewrites_an_unfinished_last_line():
    engine = ScriptedEngine([])
    row = dict(rollout_row(engine, "12+7=19\n19*3=57"), step_ends=[8, 15])  # the unfinished line is a step (rlint/steps.py)
    (out,) = identify_by_oracle_repair([row], TASK, engine.tokenizer, round_id=1)
    assert out["true_first_error_step"] == 3 and out["decided_by"] == "oracle_repair"
    assert out["repair_completion"] == RIGHT  # not "...=5757-5=52": the unfinished line is taken from the reference
    assert out["first_error_step"] == 2  # the first change is the failure's eos, which belongs to its last step


# -- correct and credit: the repair becomes a branch, trained as a completion of the original prompt ---------------------
import numpy as np  # noqa: E402
import torch  # noqa: E402

from rlint.policy import load_policy  # noqa: E402
from rlint.scoring import target_logprobs, target_token_logprobs  # noqa: E402
from rlint.correct import repair_branch  # noqa: E402
from rlint.credit_scores import repair_old_logprobs  # noqa: E402
from rlint.train_set import build_train_set  # noqa: E402


def test_per_token_scores_sum_to_the_sequence_score(tiny_checkpoint):
    model, tokenizer = load_policy(tiny_checkpoint)
    rng = np.random.default_rng(0)
    contexts = [rng.integers(4, 20, int(rng.integers(1, 9))).tolist() for _ in range(7)]
    targets = [rng.integers(4, 20, int(rng.integers(1, 9))).tolist() for _ in range(7)]
    per_token = target_token_logprobs(model, contexts, targets, tokenizer.pad_token_id, batch_size=3, temperature=0.7)
    assert [len(p) for p in per_token] == [len(t) for t in targets]
    np.testing.assert_allclose([p.sum() for p in per_token], target_logprobs(model, contexts, targets, tokenizer.pad_token_id, 3, 0.7), rtol=1e-5)


def test_a_repair_is_trained_under_the_original_prompt_with_old_logprobs_recomputed_there(tiny_checkpoint):
    model, tokenizer = load_policy(tiny_checkpoint)
    engine = ScriptedEngine([RIGHT])
    right = dict(rollout_row(engine, RIGHT, rollout_id="r1-p-s0"), reward=1.0)
    wrong = dict(rollout_row(engine, WRONG, rollout_id="r1-p-s1"), reward=0.0)
    for i, row in enumerate((right, wrong)):
        row.update(round=1, policy_version=0, sample_index=i, logprobs=[-1.0] * len(row["token_ids"]),
                   completion=engine.decode(row["token_ids"]))
    (failure,) = identify_by_repair([wrong], engine, TASK, params(repair_samples=1), seed=0, round_id=1).failures
    branch = repair_branch(failure, wrong)
    assert branch["parent_rollout_id"] == "r1-p-s1" and branch["kind"] == "repair" and branch["branch_id"] == "r1-p-s1-repair"
    old = repair_old_logprobs([branch], {"r1-p-s1": wrong}, model, tokenizer.pad_token_id, batch_size=4, temperature=1.0)[branch["branch_id"]]
    # by hand: one forward pass over prompt + repair
    ids = torch.tensor([wrong["prompt_token_ids"] + branch["token_ids"]])
    logp = torch.log_softmax(model(input_ids=ids).logits[0, :-1].float(), dim=-1)
    n = len(wrong["prompt_token_ids"])
    by_hand = [logp[n - 1 + t, tok].item() for t, tok in enumerate(branch["token_ids"])]
    np.testing.assert_allclose(old, by_hand, rtol=1e-4, atol=1e-5)
    assert not np.allclose(old, branch["logprobs"])  # not the repair prompt's (here: the scripted -0.5)
    under_repair_prompt = target_token_logprobs(model, [engine.encode(PROBLEM.prompt + WRONG + REPAIR_MARKER)], [branch["token_ids"]],
                                                tokenizer.pad_token_id, 1, 1.0)[0]
    assert not np.allclose(old, under_repair_prompt, atol=1e-3)  # the context matters: the choice is not a no-op
    p = params()
    rows = build_train_set([right, wrong], [failure], [branch], p, task=TASK, repair_logprobs={branch["branch_id"]: old})
    by_kind = {r["example_id"]: r for r in rows}
    repair = by_kind["r1-p-s1-repair"]
    assert repair["kind"] == "repair" and repair["context_token_ids"] == wrong["prompt_token_ids"] and repair["logprobs"] == pytest.approx(old)
    assert repair["advantages"] == [1.0] * len(branch["token_ids"]) and repair["sft"]
    failed = by_kind["r1-p-s1"]
    marked = [i for i, w in enumerate(failed["loss_weights"]) if w > 0]
    assert [WRONG[i] for i in marked] == ["6"] and failed["advantages"][marked[0]] == -1.0  # only the wrong digit of step 2
    assert by_kind["r1-p-s0"]["advantages"][0] == pytest.approx(1.0, abs=1e-4)  # the success keeps GRPO


# -- one round through the stages, in process: mine (scripted repairer) -> correct -> credit -> optimize ---------------
import shutil  # noqa: E402

from rlint.data import read_rows, write_rows  # noqa: E402
from rlint.stages import correct, credit, mine, optimize  # noqa: E402


def test_one_round_with_the_repair_strategy_runs_through_the_stages(tiny_checkpoint, tmp_path, monkeypatch):
    root = tmp_path / "ws"
    shutil.copytree(tiny_checkpoint, root / "checkpoints" / "round=0")
    engine = ScriptedEngine([WRONG, RIGHT])  # per failure: one unverified attempt, one minimal repair
    rows = []
    for i, completion in enumerate([RIGHT, WRONG, WRONG.replace("51", "50")]):
        row = rollout_row(engine, completion, rollout_id=f"r1-p-s{i}")
        row.update(round=1, policy_version=0, sample_index=i, logprobs=[-1.0] * len(row["token_ids"]), completion=completion,
                   reward=TASK.reward(completion, PROBLEM.answer), archive_id=None)
        rows.append(row)
    write_rows(root, "rollouts", 1, rows)
    import rlint.engine

    monkeypatch.setattr(rlint.engine, "load_engine", lambda checkpoint, sampling: engine)  # the mine stage's LazyEngine loads through it
    p = with_changes(params(strategy="repair", repair_samples=2, failures_per_problem=None, repair_temperature=1.0),
                     optimize=with_changes(Params().optimize, epochs=1, minibatch_size=8))
    p = with_changes(p, credit=with_changes(p.credit, repairer_weight=1.0))  # the repairer is trained too
    metrics = mine.run(p, 1, root)
    assert metrics["failures"] == 2 and metrics["failures_located"] == 2 and metrics["localization_accuracy"] == 1.0
    assert metrics["repair_success"] == 1.0 and metrics["repair_tokens"] == metrics["mining_tokens"] == 2 * 2 * (len(WRONG) + 1)
    attempts = read_rows(root, "continuations", 1)  # every repair attempt, for the repairer's own credit
    assert [(a["continuation_id"], a["stage"], a["reward"]) for a in attempts] == [
        ("r1-p-s1-repair0", "repair", 0.0), ("r1-p-s1-repair1", "repair", 1.0), ("r1-p-s2-repair0", "repair", 0.0), ("r1-p-s2-repair1", "repair", 1.0)]
    correct_metrics = correct.run(p, 1, root)
    assert correct_metrics["failures_corrected"] == 2 and correct_metrics["correction_samples"] == 0
    branches = read_rows(root, "branches", 1)
    assert {b["branch_id"] for b in branches} == {"r1-p-s1-repair", "r1-p-s2-repair"} and {b["kind"] for b in branches} == {"repair"}
    credit_metrics = credit.run(p, 1, root)
    assert credit_metrics["repair_examples"] == 2 and credit_metrics["repair_attempt_examples"] == 4
    examples = {e["example_id"]: e for e in read_rows(root, "train_set", 1)}
    repair = examples["r1-p-s1-repair"]
    assert repair["context_token_ids"] == rows[1]["prompt_token_ids"] and repair["rollout_id"] == "r1-p-s1"
    assert all(lp < 0 for lp in repair["logprobs"]) and repair["logprobs"] != pytest.approx([-0.5] * len(repair["logprobs"]))
    assert examples["r1-p-s2"]["negative_tokens"] >= 1  # "50" vs "52": only the changed tokens are penalised
    verified, unverified = examples["r1-p-s1-repair1"], examples["r1-p-s1-repair0"]
    assert engine.decode(verified["context_token_ids"]) == PROBLEM.prompt + WRONG + REPAIR_MARKER and verified["kind"] == "repair_attempt"
    assert verified["advantages"][0] == pytest.approx(1.0, abs=1e-4) and unverified["advantages"][0] == pytest.approx(-1.0, abs=1e-4)
    optimize.run(p, 1, root)
    assert (root / "checkpoints" / "round=1" / "model.safetensors").is_file()
