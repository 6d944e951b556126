"""Bad arguments fail at construction with a message that names the fix."""

import math

import pytest

from storinfer.errors import ConfigError, StoreError, validate_threshold
from storinfer.store.locks import check_local_path as _check_local_path


@pytest.mark.parametrize("bad", [math.nan, -0.1, 1.5, "high", None, math.inf])
def test_threshold_outside_unit_interval_is_refused(bad):
    with pytest.raises(ConfigError, match=r"\[0, 1\]"):
        validate_threshold(bad)


@pytest.mark.parametrize("good", [0, 0.85, 1, "0.9"])
def test_threshold_in_unit_interval(good):
    assert 0.0 <= validate_threshold(good) <= 1.0


def test_store_path_that_is_a_file(tmp_path):
    f = tmp_path / "file.txt"
    f.write_text("x")
    with pytest.raises(StoreError, match="is a file"):
        _check_local_path(str(f))
    assert f.read_text() == "x"  # untouched


def test_store_path_is_created(tmp_path):
    p = tmp_path / "a" / "b"
    assert _check_local_path(str(p)) == str(p)
    assert p.is_dir()
