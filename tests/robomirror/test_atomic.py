import numpy as np
import pytest

from robomirror.atomic import load_npz_bytes, npz_bytes, publish_bytes, sweep_temp_files


def test_npz_bytes_deterministic_and_round_trip():
    arrays = {"b": np.arange(6, dtype=np.float32).reshape(2, 3), "a": np.array(["x", "yz"]), "s": np.float32(30)}
    assert npz_bytes(arrays) == npz_bytes(dict(reversed(list(arrays.items()))))
    back = load_npz_bytes(npz_bytes(arrays))
    np.testing.assert_array_equal(back["b"], arrays["b"])
    np.testing.assert_array_equal(back["a"], arrays["a"])
    assert back["s"].shape == () and float(back["s"]) == 30.0  # scalars stay 0-d


def test_npz_refuses_object_arrays():
    with pytest.raises(TypeError, match="object"):
        npz_bytes({"x": np.array([{"a": 1}], dtype=object)})


def test_publish_leaves_no_temp_on_failure(tmp_path):
    target = tmp_path / "f.bin"
    publish_bytes(target, b"old")

    class Boom(Exception):
        pass

    from robomirror.atomic import publish_with

    def bad(f):
        f.write(b"partial")
        raise Boom

    with pytest.raises(Boom):
        publish_with(target, bad)
    assert target.read_bytes() == b"old"  # the previous complete file is still there
    assert sweep_temp_files(tmp_path) == 0
