"""The CLI refuses bad input with exit code 2 and one line naming the file or field, writing nothing."""

import shutil

from rlint.cli import main
from tests.conftest import REPO


def _ws(tmp_path, extra=""):
    shutil.copy(REPO / "params.yaml", tmp_path / "params.yaml")
    if extra:
        with open(tmp_path / "params.yaml", "a") as f:
            f.write(extra)
    return tmp_path


def test_missing_checkpoint(tmp_path, capsys):
    ws = _ws(tmp_path)
    assert main(["--root", str(ws), "rollout", "--round", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "checkpoints/round=0: model directory not found" in err[0]
    assert not (ws / "data").exists()


def test_missing_stage_input(tmp_path, capsys):
    ws = _ws(tmp_path)
    assert main(["--root", str(ws), "credit", "--round", "1"]) == 2
    assert "data/rollouts/round=1/part-0.parquet: missing" in capsys.readouterr().err


def test_unknown_param_key(tmp_path, capsys):
    ws = _ws(tmp_path, "extra_key: 1\n")
    assert main(["--root", str(ws), "mine", "--round", "1"]) == 2
    assert "unknown key(s) extra_key" in capsys.readouterr().err


def test_round_zero_is_refused(tmp_path, capsys):
    assert main(["--root", str(_ws(tmp_path)), "evaluate", "--round", "0"]) == 2
    assert "rounds start at 1" in capsys.readouterr().err


def test_checkpoint_without_safetensors(tmp_path, capsys, tiny_checkpoint):
    ws = _ws(tmp_path)
    target = ws / "checkpoints" / "round=0"
    shutil.copytree(tiny_checkpoint, target)
    (target / "model.safetensors").unlink()
    assert main(["--root", str(ws), "rollout", "--round", "1"]) == 2
    assert "no *.safetensors weights" in capsys.readouterr().err


def test_report_prints_a_row_per_round(tmp_path, capsys):
    metrics = tmp_path / "metrics"
    (metrics / "evaluate").mkdir(parents=True)
    (metrics / "rollout").mkdir()
    (metrics / "evaluate" / "round=0.json").write_text('{"heldout_accuracy": 0.25}')
    (metrics / "evaluate" / "round=1.json").write_text('{"heldout_accuracy": 0.5, "sound_accuracy": 0.375}')
    (metrics / "rollout" / "round=1.json").write_text('{"train_accuracy": 0.4}')
    assert main(["--root", str(tmp_path), "report"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].split()[:3] == ["round", "heldout_acc", "sound_acc"]
    assert lines[1].split()[:4] == ["0", "0.250", "-", "-"]
    assert lines[2].split()[:5] == ["1", "0.500", "0.375", "0.400", "0.600"]


def test_third_party_noise_is_quiet_unless_verbose():
    import subprocess
    import sys

    from tests.conftest import REPO

    probe = ("import logging, os, sys, warnings\n"
             "from rlint.cli import quiet_third_party\n"
             "if sys.argv[1] == 'quiet': quiet_third_party()\n"
             "warnings.warn_explicit('third', FutureWarning, 'x.py', 1, module='vllm.utils')\n"
             "warnings.warn_explicit('ours', FutureWarning, 'y.py', 1, module='rlint.steps')\n"
             "print(logging.getLogger('vllm').getEffectiveLevel(), os.environ.get('VLLM_LOGGING_LEVEL'))\n")
    env = {k: v for k, v in __import__("os").environ.items() if k not in ("VLLM_LOGGING_LEVEL", "PYTHONWARNINGS")}
    quiet = subprocess.run([sys.executable, "-c", probe, "quiet"], capture_output=True, text=True, cwd=REPO, env=env)
    loud = subprocess.run([sys.executable, "-c", probe, "verbose"], capture_output=True, text=True, cwd=REPO, env=env)
    assert quiet.stdout.split() == ["40", "ERROR"] and "third" not in quiet.stderr and "ours" in quiet.stderr
    assert "third" in loud.stderr and "ours" in loud.stderr and loud.stdout.split()[1] == "None"


def test_the_vocabulary_bound_of_one_command_does_not_outlive_it(tmp_path, tiny_checkpoint):
    """rlint.data.VOCAB_SIZE is set from the model a stage loads; after the command it is cleared again."""
    import shutil

    from rlint import data
    from rlint.cli import main
    from tests.conftest import make_workspace

    root = make_workspace(tmp_path / "ws")
    shutil.copytree(tiny_checkpoint, root / "checkpoints" / "round=0")
    assert main(["--root", str(root), "archive", "--round", "0"]) == 0
    assert main(["--root", str(root), "rollout", "--round", "1"]) == 0
    assert data.VOCAB_SIZE is None
