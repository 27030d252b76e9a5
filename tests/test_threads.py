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
