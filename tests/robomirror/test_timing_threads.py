"""A benchmark or budget run called in-process sets torch's threads for itself only: the caller's count
comes back even when it raises (a leaked count changed a later VAE's weights, hence its model id)."""

from __future__ import annotations

import pytest
import torch

from robomirror.timing import torch_threads


def test_threads_are_restored_after_return_and_raise():
    before = torch.get_num_threads()
    target = 1 if before != 1 else 2
    seen = []

    @torch_threads(target)
    def work(fail: bool) -> int:
        seen.append(torch.get_num_threads())
        if fail:
            raise RuntimeError("boom")
        return 7

    assert work(False) == 7 and torch.get_num_threads() == before
    with pytest.raises(RuntimeError, match="boom"):
        work(True)
    assert torch.get_num_threads() == before and seen == [target, target]
