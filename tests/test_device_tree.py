"""scripts/device_tree.sh: keeps the shipped weights out of what a GPU call sends, and puts them back exactly."""

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]


def _sh(cwd, *args):
    return subprocess.run(list(map(str, args)), cwd=cwd, capture_output=True, text=True, check=False, timeout=120)


@pytest.fixture
def clone(tmp_path):
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("needs git and a git checkout of geoseg")
    dst = tmp_path / "clone"
    r = _sh(tmp_path, "git", "clone", "-q", "--no-hardlinks", "--depth", "1", f"file://{ROOT}", dst)
    if r.returncode != 0:
        pytest.skip(f"cannot clone the checkout: {r.stderr.strip()}")
    shutil.copy(ROOT / "scripts/device_tree.sh", dst / "scripts/device_tree.sh")  # this checkout's, committed or not
    return dst


def _mib(clone, *carry) -> float:
    out = _sh(clone, "bash", "scripts/device_tree.sh", "size", *carry).stdout
    return float(out.split()[0])


def test_hide_keeps_the_weights_on_disk_out_of_the_sent_tree_and_restore_undoes_it(clone):
    weights = sorted(p.name for p in (clone / "models").glob("*.safetensors"))
    assert weights
    exclude_before = (clone / ".git/info/exclude").read_text()
    full = _mib(clone)
    assert _sh(clone, "bash", "scripts/device_tree.sh", "hide").returncode == 0
    hidden = _mib(clone)
    on_disk = sum(p.stat().st_size for p in (clone / "models").glob("*.safetensors")) / 2**20
    assert hidden == pytest.approx(full - on_disk, abs=0.2) and hidden < 64
    assert sorted(p.name for p in (clone / "models").glob("*.safetensors")) == weights, "the files stay on disk"
    (clone / "carried").mkdir()
    (clone / "carried/x.bin").write_bytes(b"\0" * 2**20)
    assert _mib(clone, "carried") == pytest.approx(hidden + 1, abs=0.05)
    shutil.rmtree(clone / "carried")
    assert _sh(clone, "bash", "scripts/device_tree.sh", "restore").returncode == 0
    assert _sh(clone, "git", "status", "--porcelain", "--", "models").stdout == ""
    assert (clone / ".git/info/exclude").read_text() == exclude_before
    assert _mib(clone) == pytest.approx(full, abs=0.05)
