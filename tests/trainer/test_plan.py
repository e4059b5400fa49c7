import pytest

from rlint.trainer.plan import lr_factor, micro_batches, minibatch_plan


def test_micro_batches_partition_each_minibatch_evenly_over_processes():
    for n in range(1, 23):
        for world in (1, 2, 3, 4):
            for size in (1, 2, 5):
                shares = [micro_batches(list(range(n)), rank, world, size) for rank in range(world)]
                assert len({len(s) for s in shares}) == 1  # the same number of forward calls on every process
                assert sorted(i for s in shares for part in s for i in part) == list(range(n))
                assert all(len(part) <= size for s in shares for part in s)


def test_plan_and_schedule():
    plan = minibatch_plan(10, 4, 3, seed=5)
    assert plan == minibatch_plan(10, 4, 3, seed=5) and plan != minibatch_plan(10, 4, 3, seed=6)
    for epoch in range(3):
        assert sorted(i for m in plan[epoch * 3:(epoch + 1) * 3] for i in m) == list(range(10))
    assert [lr_factor(s, 10, 0, "constant") for s in (0, 9)] == [1.0, 1.0]
    assert [lr_factor(s, 10, 4, "constant") for s in range(4)] == [0.25, 0.5, 0.75, 1.0]
    assert lr_factor(3, 4, 0, "linear") == pytest.approx(0.25) and lr_factor(2, 4, 0, "cosine") == pytest.approx(0.5)


# -- the settings matched against TRL's GRPOTrainer (docs/method.md, "Against TRL's GRPOTrainer") ---------
def test_plan_without_reshuffle_repeats_one_order():
    plan = minibatch_plan(10, 4, 3, seed=5, reshuffle=False)
    assert plan[0:3] == plan[3:6] == plan[6:9]
    assert plan[0:3] == minibatch_plan(10, 4, 3, seed=5)[0:3]  # the first epoch is the same either way
    assert sorted(i for m in plan[0:3] for i in m) == list(range(10))
