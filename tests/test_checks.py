"""Tests for labkit._checks: the argument checks shared by the public entry points."""

import pytest
import torch

from labkit import _checks


def test_device_names_what_this_torch_build_can_use():
    """Issue 12 item 4: ``--device cuda`` without CUDA gave a raw AssertionError deep inside torch."""
    assert _checks.device("cpu", "device") == torch.device("cpu")
    assert _checks.device(torch.device("cpu"), "device") == torch.device("cpu")
    with pytest.raises(ValueError, match=r"device must be a torch device .*got 'gpu'"):
        _checks.device("gpu", "device")
    with pytest.raises(ValueError, match="device must be"):
        _checks.device(3.5, "device")
    if not torch.backends.cuda.is_built():
        with pytest.raises(ValueError, match=r"--device cuda requested but this torch build has no CUDA"):
            _checks.device("cuda", "--device")
    elif not torch.cuda.is_available():
        with pytest.raises(ValueError, match=r"--device cuda requested but no CUDA device is visible"):
            _checks.device("cuda", "--device")
    else:
        assert _checks.device("cuda", "--device").type == "cuda"
        with pytest.raises(ValueError, match="CUDA device"):
            _checks.device(f"cuda:{torch.cuda.device_count()}", "--device")
