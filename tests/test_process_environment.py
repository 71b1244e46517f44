"""Importing serpentir leaves the process as it was; huge pages are an explicit call that still works."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _run(code: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "THP_MEM_ALLOC_ENABLE"}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + [p for p in [env.get("PYTHONPATH")] if p])
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_import_changes_no_environment_variable():
    result = _run("import json, os\nbefore = dict(os.environ)\nimport serpentir, serpentir.cli\n"
                  "import serpentir.serve, serpentir.metrics, serpentir.image_io\n"
                  "print(json.dumps({'changed': sorted(k for k in set(before) | set(os.environ) "
                  "if before.get(k) != os.environ.get(k))}))")
    assert result == {"changed": []}


def _thp_mode() -> str:
    try:
        text = Path("/sys/kernel/mm/transparent_hugepage/enabled").read_text()
    except OSError:
        return "absent"
    return text.split("[")[1].split("]")[0]


@pytest.mark.skipif(_thp_mode() not in ("madvise", "always"), reason="transparent huge pages are off in this kernel")
def test_enable_huge_pages_backs_large_tensors_and_leaves_the_environment():
    probe = ("import json, os\nimport serpentir.cli, torch\n{call}before = dict(os.environ)\n"
             "x = torch.ones(64 * 2**20, dtype=torch.uint8)\n"
             "huge = [int(l.split()[1]) for l in open('/proc/self/smaps_rollup') if l.startswith('AnonHugePages')][0]\n"
             "print(json.dumps({{'huge_kb': huge, 'env_same': before == dict(os.environ), "
             "'thp_env': os.environ.get('THP_MEM_ALLOC_ENABLE')}}))")
    on = _run(probe.format(call="serpentir.enable_huge_pages()\n"))
    assert on["huge_kb"] >= 32 * 1024 and on["thp_env"] is None  # in effect, and no child inherits it
    if _thp_mode() == "madvise":  # without the call torch does not ask for huge pages
        off = _run(probe.format(call=""))
        assert off["huge_kb"] < on["huge_kb"]
