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


def fails_at_three(k: int) -> tuple[int, int]:
    if k == 3:
        raise ZeroDivisionError(f"no square for {k}")
    return k, k * k


@pytest.mark.parametrize("n_jobs, backend", [(1, "loky"), (2, "loky")])
def test_a_task_that_raises_stops_nothing_with_errors_keep(n_jobs, backend):
    from labkit.dispatch import Failure

    with pytest.raises(ZeroDivisionError, match="no square for 3"):
        list(dispatch(fails_at_three, [(k,) for k in range(6)], n_jobs=n_jobs, backend=backend))
    out = list(dispatch(fails_at_three, [(k,) for k in range(6)], n_jobs=n_jobs, backend=backend,
                        errors="keep"))
    failed = [o for o in out if isinstance(o, Failure)]
    assert sorted(o for o in out if o) == [(k, k * k) for k in range(6) if k != 3]
    assert len(failed) == 1 and failed[0].arguments == (3,) and not failed[0]
    assert failed[0].error == "ZeroDivisionError: no square for 3"
    assert "fails_at_three" in failed[0].traceback
    with pytest.raises(ValueError, match="errors must be 'raise' or 'keep'"):
        dispatch(square, [(1,)], errors="ignore")
