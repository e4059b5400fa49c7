import pyarrow.parquet as pq
import pytest

from rlint.data import DataError, dataset_path, read_rows, write_rows
from rlint.schemas import SCHEMA_VERSION, SCHEMAS


def _rollout(i: int, reward):
    return {
        "rollout_id": f"r1-train-{i:06d}-s0", "round": 1, "policy_version": 0, "problem_id": f"train-{i:06d}",
        "sample_index": 0, "prompt": "Q:1,+2\n", "answer": "3", "prompt_token_ids": [1, 2], "token_ids": [3, 4, 5],
        "logprobs": [-0.5, -0.25, -1.0], "step_ends": [2, 3], "completion": "1+", "finish_reason": "stop",
        "reward": reward, "true_first_error_step": None,
    }


def test_round_trip_sorted_zstd_with_version(tmp_path):
    rows = [_rollout(3, 1.0), _rollout(1, None), _rollout(2, 0.0)]
    path = write_rows(tmp_path, "rollouts", 1, rows)
    assert path == dataset_path(tmp_path, "rollouts", 1)
    back = read_rows(tmp_path, "rollouts", 1)
    assert [r["rollout_id"] for r in back] == sorted(r["rollout_id"] for r in rows)
    assert back[0]["reward"] is None and back[0]["logprobs"] == [-0.5, -0.25, -1.0]
    meta = pq.read_metadata(path)
    assert meta.row_group(0).column(0).compression == "ZSTD"
    assert pq.read_schema(path).metadata[b"rlint.schema_version"] == SCHEMA_VERSION.encode()
    assert not list(path.parent.glob(".*tmp*"))


def test_same_rows_give_identical_bytes(tmp_path):
    rows = [_rollout(i, 1.0) for i in range(20)]
    a = write_rows(tmp_path / "a", "rollouts", 1, rows).read_bytes()
    b = write_rows(tmp_path / "b", "rollouts", 1, list(reversed(rows))).read_bytes()
    assert a == b


def test_missing_and_mismatched_inputs_name_the_file(tmp_path):
    with pytest.raises(DataError, match="rollouts/round=1/part-0.parquet: missing"):
        read_rows(tmp_path, "rollouts", 1)
    write_rows(tmp_path, "corrections", 1, [])
    path = dataset_path(tmp_path, "corrections", 1)
    target = dataset_path(tmp_path, "rollouts", 1)
    target.parent.parent.mkdir(parents=True)
    path.parent.rename(target.parent)
    with pytest.raises(DataError, match="schema differs"):
        read_rows(tmp_path, "rollouts", 1)


def test_wrong_type_is_refused_before_anything_is_written(tmp_path):
    bad = _rollout(1, 1.0)
    bad["token_ids"] = ["x"]
    with pytest.raises(Exception):
        write_rows(tmp_path, "rollouts", 1, [bad])
    assert not dataset_path(tmp_path, "rollouts", 1).exists()


def test_every_dataset_has_a_sort_key_column():
    from rlint.schemas import SORT_KEYS

    for name, schema in SCHEMAS.items():
        assert SORT_KEYS[name] in schema.names
