"""`sccdm eval` as main(argv), against golden outputs made with the shipped weights.

Regenerate the golden file after re-training (and say so in the commit):
    sccdm eval --scheme sc-cdm --scheme nsf --scheme deepjscc --channel awgn --snr 3 12 \
        --limit 16 --batch 8 --out tests/golden/eval_awgn_16.json
"""
import json
from pathlib import Path

import pytest

from sccdm.evaluate import main

GOLDEN = Path(__file__).parent / "golden" / "eval_awgn_16.json"
ARGS = ["--scheme", "sc-cdm", "--scheme", "nsf", "--scheme", "deepjscc", "--channel", "awgn",
        "--snr", "3", "12", "--limit", "16", "--batch", "8"]


def test_eval_matches_golden(tmp_path, capsys):
    out = tmp_path / "rows.json"
    assert main(ARGS + ["--out", str(out)]) == 0
    rows = json.loads(out.read_text())
    gold = json.loads(GOLDEN.read_text())
    assert len(rows) == len(gold) == 6
    for r, g in zip(rows, gold):
        for key in ("scheme", "channel", "snr_db", "n_images", "channel_uses"):
            assert r[key] == g[key]
        assert r["psnr_db"] == pytest.approx(g["psnr_db"], abs=0.02)
        assert r["ssim"] == pytest.approx(g["ssim"], abs=1e-3)
    table = capsys.readouterr().out
    assert "| sc-cdm |" in table and "12 dB" in table


def test_eval_rows_are_consistent(tmp_path):
    gold = json.loads(GOLDEN.read_text())
    by = {(r["scheme"], r["snr_db"]): r for r in gold}
    for s in ("sc-cdm", "nsf", "deepjscc"):
        assert by[(s, 12.0)]["psnr_db"] > by[(s, 3.0)]["psnr_db"]  # more SNR, better image
        assert by[(s, 3.0)]["cbr"] == pytest.approx(1 / 12)
