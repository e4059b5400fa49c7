"""Atomic outputs: a writer killed with SIGKILL at a random point leaves the previous complete output or none.

A child process rewrites the same Parquet file, metrics file and checkpoint-like directory in a
loop, alternating two versions; the test kills it at seeded random moments and checks what is
left on disk each time.
"""

import json
import os
import random
import signal
import subprocess
import sys
import time

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from rlint.atomic import atomic_directory, write_json_atomic
from rlint.data import write_atomic
from tests.conftest import REPO

WRITER = """
import json, sys
from pathlib import Path
import pyarrow as pa
from rlint.data import write_atomic
from rlint.atomic import atomic_directory, write_json_atomic

root = Path(sys.argv[1])
def table(v):
    return pa.table({"id": [f"{v}-{i:07d}" for i in range(200_000)], "v": [v] * 200_000})
tables = [table(0), table(1)]
print("ready", flush=True)
v = 0
while True:
    write_atomic(tables[v], root / "data" / "part-0.parquet")
    write_json_atomic(root / "metrics.json", {"version": v, "pad": "x" * 100_000})
    with atomic_directory(root / "ckpt") as tmp:
        for name in ("config.json", "model.safetensors", "tokenizer.json"):
            (tmp / name).write_bytes(bytes([v]) * 3_000_000)
    v = 1 - v
"""


def _check_left_over(root):
    """What a reader may find: each output complete (one of the two versions) or absent."""
    parquet = root / "data" / "part-0.parquet"
    if parquet.exists():
        table = pq.read_table(parquet)
        assert table.num_rows == 200_000 and len(set(table.column("v").to_pylist())) == 1
    metrics = root / "metrics.json"
    if metrics.exists():
        assert json.loads(metrics.read_text())["version"] in (0, 1)
    ckpt = root / "ckpt"
    if ckpt.exists():
        names = sorted(p.name for p in ckpt.iterdir())
        assert names == ["config.json", "model.safetensors", "tokenizer.json"], names
        contents = {(ckpt / name).read_bytes() for name in names}
        assert len(contents) == 1 and len(next(iter(contents))) == 3_000_000


def test_sigkill_at_random_points_leaves_complete_outputs_or_none(tmp_path):
    rng = random.Random(7)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    kills = 0
    for _ in range(12):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path)], stdout=subprocess.PIPE, env=env)
        assert proc.stdout.readline().strip() == b"ready"
        time.sleep(rng.uniform(0.0, 1.5))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        kills += 1
        _check_left_over(tmp_path)
    assert kills == 12
    # the next writer cleans the hidden temporaries the killed ones left
    write_atomic(pa.table({"id": ["a"] * 200_000, "v": [0] * 200_000}), tmp_path / "data" / "part-0.parquet")
    write_json_atomic(tmp_path / "metrics.json", {"version": 0})
    with atomic_directory(tmp_path / "ckpt") as tmp:
        for name in ("config.json", "model.safetensors", "tokenizer.json"):
            (tmp / name).write_bytes(b"\0" * 3_000_000)
    assert sorted(p.name for p in tmp_path.rglob(".*")) == []
    _check_left_over(tmp_path)


def test_failed_writer_keeps_the_previous_directory(tmp_path):
    target = tmp_path / "ckpt"
    with atomic_directory(target) as tmp:
        (tmp / "model.safetensors").write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with atomic_directory(target) as tmp:
            (tmp / "model.safetensors").write_bytes(b"new, half")
            raise RuntimeError("killed")
    assert (target / "model.safetensors").read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt"]
