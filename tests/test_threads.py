"""Thread count: explicit option, then ICHSEG_THREADS, then OMP_NUM_THREADS left to torch, then half the cores."""

import pytest
import torch

from ich_infer.errors import IchsegError
from ich_infer.threads import apply_threads, default_threads, resolve_threads


def test_default_is_half_the_cores_at_least_one():
    assert [default_threads(n) for n in (1, 2, 4, 16, 64)] == [1, 1, 2, 8, 8]


def test_precedence():
    assert resolve_threads(3, {"ICHSEG_THREADS": "2", "OMP_NUM_THREADS": "4"}) == 3
    assert resolve_threads(None, {"ICHSEG_THREADS": "2", "OMP_NUM_THREADS": "4"}) == 2
    assert resolve_threads(None, {"OMP_NUM_THREADS": "4"}) is None  # torch already read it
    assert resolve_threads(None, {}) == default_threads()


@pytest.mark.parametrize("value", ["0", "two", "-1"])
def test_a_bad_thread_count_is_one_line_naming_its_source(value):
    with pytest.raises(IchsegError, match=f"ICHSEG_THREADS must be a whole number of threads >= 1, got '{value}'"):
        resolve_threads(None, {"ICHSEG_THREADS": value})


def test_apply_sets_torch_threads():
    before = torch.get_num_threads()
    try:
        assert apply_threads(1, {}) == 1 == torch.get_num_threads()
    finally:
        torch.set_num_threads(before)


def test_cli_threads_option_sets_torch_threads_and_refuses_nonsense(tmp_path):
    from typer.testing import CliRunner

    from ich_infer.cli import app

    before = torch.get_num_threads()
    runner = CliRunner()
    try:
        result = runner.invoke(app, ["--threads", "1", "evaluate", str(tmp_path), str(tmp_path)])
        assert torch.get_num_threads() == 1, result.output
        bad = runner.invoke(app, ["--threads", "0", "evaluate", str(tmp_path), str(tmp_path)])
        assert bad.exit_code != 0
    finally:
        torch.set_num_threads(before)
