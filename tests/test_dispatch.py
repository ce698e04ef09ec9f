"""labkit.dispatch: the same outputs in-process, in joblib workers and on threads; bad settings
named."""

import pytest

from labkit.dispatch import dispatch


def square(k: int) -> tuple[int, int]:
    return k, k * k


@pytest.mark.parametrize("n_jobs, backend", [(1, "loky"), (1, None), (2, "threading"), (2, "loky")])
def test_every_backend_returns_every_output(n_jobs, backend):
    out = dispatch(square, [(k,) for k in range(6)], n_jobs=n_jobs, backend=backend)
    assert sorted(out) == [(k, k * k) for k in range(6)]


def test_bad_settings_are_named():
    with pytest.raises(ValueError, match="n_jobs must be a non-zero integer"):
        dispatch(square, [(1,)], n_jobs=0)
    with pytest.raises(ValueError, match="needs backend='dask'"):
        dispatch(square, [(1,)], scheduler="tcp://127.0.0.1:1")
    with pytest.raises(ValueError, match="backend must be"):
        dispatch(square, [(1,)], backend=3)
    outputs = dispatch(square, [(1,)], backend="dask", scheduler="not-an-address")
    with pytest.raises(ValueError, match="scheduler must be a dask Client or an address"):
        next(outputs)
