import shutil

from rlint.config import load_params
from rlint.data import read_rows, write_rows
from rlint.engine import load_engine
from rlint.stages import archive, rollout
from rlint.tasks import load_task
from tests.conftest import make_workspace


def test_rollout_restarts_a_share_of_the_batch_from_the_archive(tmp_path, tiny_checkpoint):
    root = make_workspace(tmp_path / "ws", {"archive": {"replay_share": 0.5, "max_replays": 2}})
    shutil.copytree(tiny_checkpoint, root / "checkpoints" / "round=1")
    params = load_params(root / "params.yaml")
    task = load_task(params.task)
    engine = load_engine(str(tiny_checkpoint), params.sampling)
    problem = task.problems("train", 500, 1)[0]
    prefix = task.solution(problem).split("\n")[0] + "\n"  # the reference first step: a good prefix
    prompt_ids = engine.encode(problem.prompt)
    entry = {
        "archive_id": "r0-x", "round": 1, "origin_round": 1, "problem_id": problem.problem_id, "failure_id": "r0-x",
        "prompt": problem.prompt, "answer": problem.answer, "context_token_ids": prompt_ids + engine.encode(prefix),
        "archived_prefix_token_count": len(engine.encode(prefix)), "prefix_steps": 1, "reason": "uncorrected", "status": "open",
        "replays": 0, "solved_round": None, "true_first_error_step": 2,
    }
    write_rows(root, "archive", 1, [entry])
    metrics = rollout.run(params, 2, root)
    rows = read_rows(root, "rollouts", 2)
    assert metrics["replayed_prompts"] == 1 and len(rows) == 4 * 4  # 2 replays wanted, 1 open entry: 3 fresh + 1 replay
    replays = [r for r in rows if r["archive_id"] is not None]
    assert len(replays) == 4 and {r["problem_id"] for r in replays} == {problem.problem_id}
    for row in replays:
        assert row["prompt_token_ids"] == entry["context_token_ids"] and row["archived_prefix_token_count"] == entry["archived_prefix_token_count"]
        assert row["prompt"] == problem.prompt + prefix
        assert row["reward"] == task.reward(prefix + row["completion"], problem.answer)
        truth = task.first_error_step(problem, prefix + row["completion"])
        assert row["true_first_error_step"] == (None if truth is None else truth - 1)
    fresh = [r for r in rows if r["archive_id"] is None]
    assert all(r["archived_prefix_token_count"] == 0 and r["prompt"].endswith("\n") and r["prompt"].count("\n") == 1 for r in fresh)
    # the empty base archive, and outcome mode archives nothing
    assert archive.run(params, 0, tmp_path / "other")["archive_size"] == 0
    assert read_rows(tmp_path / "other", "archive", 0) == []
