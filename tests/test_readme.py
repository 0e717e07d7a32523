"""The README's library example runs as written and gives a sensible image."""
import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_example_runs():
    text = README.read_text()
    block = re.search(r"```python\n(.*?)```", text, re.S).group(1)
    r = subprocess.run([sys.executable, "-c", block], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    shape, psnr = r.stdout.strip().rsplit(" ", 1)
    assert "torch.Size([1, 65536])" in shape  # k = H * W * C / 128 = 512 * 512 * 32 / 128
    assert 10.0 < float(psnr) < 60.0


def test_readme_starts_with_the_two_commands():
    text = README.read_text()
    cmds = re.findall(r"^    (bash scripts/\S+)$", text, re.M)
    assert cmds[:2] == ["bash scripts/quickstart.sh", "bash scripts/test.sh"]
    ci = (README.parent / ".ci" / "run").read_text()
    assert "bash scripts/test.sh" in ci
