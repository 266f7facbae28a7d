"""``ibntrack info``: the machine report a user pastes into a bug report (text and --json)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from ibntrack.cli import main
from ibntrack.runtime import isa


def test_info_json_reports_this_machine_and_the_auto_choice(capsys):
    assert main(["info", "--json", "--no-probe"]) == 0
    info = json.loads(capsys.readouterr().out)
    cpu = isa.read_cpu()
    assert info["cpu"]["model"] == cpu.model
    assert set(info["cpu"]["flags_found"]) == set(isa.RELEVANT_FLAGS) & cpu.flags
    assert set(info["cpu"]["flags_found"]) | set(info["cpu"]["flags_missing"]) == set(isa.RELEVANT_FLAGS)
    assert info["cpu"]["isa_class"] == isa.isa_class(cpu.flags)
    expected = isa.choose_precision(cpu.flags, isa.onednn_cap())
    assert info["defaults"]["precision_auto"] == {"choice": expected.precision, "why": expected.reason}
    assert info["defaults"]["precision_auto_int8_export"]["choice"] == "int8"
    assert info["defaults"]["int8_reduce_range"] is True
    assert info["torch"]["onednn_isa"] == "not probed" and info["torch"]["onednn_version"]
    assert "CPUExecutionProvider" in info["onnxruntime"]["providers"]


def test_info_text_under_the_avx2_cap_names_the_cap_and_onednn_isa():
    """With ONEDNN_MAX_CPU_ISA=AVX2 (any x86-64 machine this project runs on has AVX2) the report shows
    the cap, the torch class it leaves, oneDNN's own ISA line, and auto = fp32 with its reason."""
    env = {**os.environ, "ONEDNN_MAX_CPU_ISA": "AVX2", "OMP_NUM_THREADS": "1"}
    out = subprocess.run(
        [sys.executable, "-c", "import sys; from ibntrack.cli import main; sys.exit(main(['info']))"],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    text = out.stdout
    assert "ONEDNN_MAX_CPU_ISA: AVX2 -> torch ISA class avx2" in text
    assert "oneDNN dispatches to: Intel AVX2" in text
    assert "--precision auto (torch checkpoint): fp32 — " in text and "no native bfloat16" in text
