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


def test_deferred_publish_names_nothing_before_commit_and_leaves_nothing_on_error(tmp_path, monkeypatch):
    from robomirror import atomic
    from robomirror.atomic import DeferredPublish

    publish_bytes(tmp_path / "a.bin", b"old")
    synced: list[int] = []
    real_fsync = atomic.os.fsync
    monkeypatch.setattr(atomic.os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd))[1])
    pub = DeferredPublish()
    pub.write(tmp_path / "a.bin", lambda f: f.write(b"new a"))
    pub.write(tmp_path / "sub" / "b.bin", lambda f: f.write(b"new b"))
    # written, writeback started, but neither final name shows the new bytes yet
    assert (tmp_path / "a.bin").read_bytes() == b"old" and not (tmp_path / "sub" / "b.bin").exists()
    assert not synced
    pub.commit()
    assert (tmp_path / "a.bin").read_bytes() == b"new a" and (tmp_path / "sub" / "b.bin").read_bytes() == b"new b"
    assert len(synced) == 2 + 2  # each file, then each directory once
    assert sweep_temp_files(tmp_path) == 0

    class Boom(Exception):
        pass

    with pytest.raises(Boom), DeferredPublish() as pub:
        pub.write(tmp_path / "a.bin", lambda f: f.write(b"newer"))
        pub.write(tmp_path / "c.bin", lambda f: f.write(b"c"))
        raise Boom
    assert (tmp_path / "a.bin").read_bytes() == b"new a" and not (tmp_path / "c.bin").exists()
    assert sweep_temp_files(tmp_path) == 0  # the with block removed its temps
