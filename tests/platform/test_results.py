import json

import numpy as np
import pytest
import torch

from diffctrl.atomic import atomic_write_text
from diffctrl.repro import Record, to_jsonable
from diffctrl.repro import record as results


def test_to_jsonable_converts_numeric_types():
    out = to_jsonable(
        {
            "a": np.float32(1.5),
            "b": torch.tensor([1, 2]),
            "c": np.array(3.0),
            "d": float("nan"),
            "e": (1, 2),
        }
    )
    assert out == {"a": 1.5, "b": [1, 2], "c": 3.0, "d": "nan", "e": [1, 2]}
    with pytest.raises(TypeError, match="cannot record"):
        to_jsonable(object())


def test_record_roundtrip(tmp_path, monkeypatch):
    monkeypatch.setenv(results.RESULTS_ENV, str(tmp_path))
    rec = Record("demo", "smoke", seed=3, params={"n": 5})
    assert rec("kl", torch.tensor(0.25), glue=False) == torch.tensor(0.25)
    path = rec.save()
    assert path == tmp_path / "demo.json"
    data = results.load("demo")
    assert data["values"] == {"kl": 0.25}
    assert (
        data["profile"] == "smoke" and data["seed"] == 3 and data["params"] == {"n": 5}
    )
    assert data["environment"]["torch"] == torch.__version__
    assert not [
        p for p in tmp_path.iterdir() if p.name.startswith(".")
    ]  # no temp files left


def test_bad_keys_and_names():
    with pytest.raises(ValueError, match="bare name"):
        Record("a/b", "smoke")
    with pytest.raises(ValueError, match="result key"):
        Record("ok", "smoke")("bad key", 1, glue=False)


def test_atomic_write_keeps_old_file_on_failure(tmp_path, monkeypatch):
    path = tmp_path / "r.json"
    atomic_write_text(path, json.dumps({"v": 1}))

    class Boom(Exception):
        pass

    def failing_replace(src, dst):
        raise Boom

    monkeypatch.setattr(results.os, "replace", failing_replace)
    with pytest.raises(Boom):
        atomic_write_text(path, json.dumps({"v": 2}))
    assert json.loads(path.read_text()) == {"v": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]


def test_records_are_readable_by_others(tmp_path):
    import os
    import stat

    old = os.umask(0o022)
    try:
        path = atomic_write_text(tmp_path / "r.json", "{}")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644  # mkstemp alone would give 0600
