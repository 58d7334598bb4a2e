"""A short seeded run of bench/fuzz_decode_cost.py: coverage-guided mutations of photos of every
format and mode (and of the crafted kinds of issue 27), each decoded as the match path does,
failing on any input that the header readers let through and that costs more than the decode's
bound (CPU or peak memory), not only on crashes. The same seed and run count each time; the
bench runs it longer (BENCHMARKS.md, Upload cost)."""

import re
import subprocess
import sys

from .conftest import ROOT

RUNS = 20_000


def test_no_input_the_readers_let_through_costs_more_than_the_bound(tmp_path):
    found = tmp_path / "found"
    found.mkdir()
    result = subprocess.run([sys.executable, str(ROOT / "bench" / "fuzz_decode_cost.py"), "-seed=1", f"-runs={RUNS}",
                             f"-artifact_prefix={tmp_path}/", str(found)], capture_output=True, text=True,
                            timeout=600, cwd=tmp_path)
    output = result.stdout + result.stderr
    report = "\n".join(line for line in output.splitlines() if "fuzz_decode_cost" in line or "CostOverBound" in line
                       or line.startswith(("==", "Done", "#")))[-4000:]
    assert result.returncode == 0, report
    assert f"Done {RUNS} runs" in output, report
    stats = re.findall(r"fuzz_decode_cost: (\{.*\})", output)[-1]
    assert "'refused'" in stats and "'decoded'" in stats, report
