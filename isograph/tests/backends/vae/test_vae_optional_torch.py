"""IsoGraph without torch: other backends run; asking for vae is one line saying what to install."""

import sys

import pytest

from isograph.bundle import write_bundle
from isograph.cli import main
from isograph.fit import fit_bundle
from isograph.fixtures import make_fixture
from omicsrun import InputError


@pytest.fixture
def no_torch(monkeypatch):
    # A None entry in sys.modules makes `import torch` raise ModuleNotFoundError, as when
    # torch is not installed; find_spec is patched the same way for the contract's check.
    import importlib.util

    for name in [m for m in sys.modules if m == "torch" or m.startswith("torch.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "torch", None)
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n == "torch" else real(n, *a))


def test_vae_without_torch_says_what_to_install(no_torch, tmp_path, capsys):
    bundle = make_fixture("core_v1", "standard", seed=0)
    with pytest.raises(InputError, match=r"needs the Python package 'torch'.*pip install 'isograph\[vae\]'"):
        fit_bundle(bundle, backend="vae")
    # Other backends still run.
    assert fit_bundle(bundle, backend="baseline").modules["module_id"].nunique() > 1
    path = tmp_path / "b"
    write_bundle(bundle, path)
    with pytest.raises(SystemExit) as exc:
        main(["fit", "--bundle", str(path), "--out", str(tmp_path / "f"), "--backend", "vae"])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "pip install" in err[0]
    assert not (tmp_path / "f").exists()


def test_load_vae_without_torch_says_what_to_install(no_torch, tmp_path):
    from isograph.backends.vae import load_vae

    with pytest.raises(InputError, match=r"needs PyTorch.*pip install 'isograph\[vae\]'"):
        load_vae(tmp_path)
