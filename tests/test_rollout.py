from rlint.config import SamplingConfig
from rlint.engine import SamplingRequest, load_engine
from rlint.identify.search import build_pools, failure_searches
from rlint.rollout import rollout_rows
from rlint.tasks.arithmetic import ArithmeticTask


def test_rollout_rows_tie_ids_rewards_and_steps(tiny_checkpoint):
    engine = load_engine(str(tiny_checkpoint), SamplingConfig(engine="transformers"))
    task = ArithmeticTask()
    problems = task.problems("train", 0, 3)
    samples = engine.generate(SamplingRequest([engine.encode(p.prompt) for p in problems], n=2, max_new_tokens=20, seed=0))
    rows = rollout_rows(engine, task, problems, samples, round_id=2)
    assert [r["rollout_id"] for r in rows] == [f"r2-{p.problem_id}-s{j}" for p in problems for j in range(2)]
    for row in rows:
        assert row["policy_version"] == 1 and row["reward"] == task.reward(row["completion"], row["answer"])
        assert len(row["token_ids"]) == len(row["logprobs"])
        assert all(0 < e <= len(row["token_ids"]) for e in row["step_ends"])
        assert row["step_ends"] == sorted(row["step_ends"])
    # the mining inputs: every failed rollout is a search, every rollout is in its problem's pool
    searches = failure_searches([r for r in rows if r["reward"] != 1.0])
    assert {s.failure_id for s in searches} == {r["rollout_id"] for r in rows if r["reward"] != 1.0}
    pools = build_pools(rows)
    assert sum(len(p.sequences) for p in pools.values()) == len(rows)
