"""`sccdm eval` as main(argv), against golden outputs made with the shipped weights.

The golden rows pin the shipped weights' numbers; the consistency test checks relations that must
hold for any trained weights (and fail for random ones) on rows computed in this run.
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


@pytest.fixture(scope="module")
def fresh_rows(tmp_path_factory):
    """Rows computed now by main(argv) with the shipped weights (not read back from a committed file)."""
    out = tmp_path_factory.mktemp("eval") / "rows.json"
    assert main(ARGS + ["--out", str(out)]) == 0
    return json.loads(out.read_text())


def test_eval_matches_golden(fresh_rows):
    rows = fresh_rows
    gold = json.loads(GOLDEN.read_text())
    assert len(rows) == len(gold) == 6
    for r, g in zip(rows, gold):
        for key in ("scheme", "channel", "snr_db", "n_images", "channel_uses"):
            assert r[key] == g[key]
        assert r["psnr_db"] == pytest.approx(g["psnr_db"], abs=0.02)
        assert r["ssim"] == pytest.approx(g["ssim"], abs=1e-3)


def test_eval_rows_are_consistent(fresh_rows):
    by = {(r["scheme"], r["snr_db"]): r for r in fresh_rows}
    for s in ("sc-cdm", "nsf", "deepjscc"):
        assert by[(s, 12.0)]["psnr_db"] > by[(s, 3.0)]["psnr_db"]  # more SNR, better image
        assert by[(s, 3.0)]["cbr"] == pytest.approx(1 / 12)
    for snr in (3.0, 12.0):  # the refiner helps, and SC-CDM beats the trained baseline
        assert by[("sc-cdm", snr)]["psnr_db"] > by[("nsf", snr)]["psnr_db"] > by[("deepjscc", snr)]["psnr_db"]
    assert by[("sc-cdm", 3.0)]["model"] == "sc-cdm-cpu" and by[("deepjscc", 3.0)]["model"] == "deepjscc-paper-awgn"


def test_eval_table_and_unknown_model(capsys):
    assert main(["--scheme", "nsf", "--snr", "6", "--limit", "4", "--model", "sc-cdm-paper-awgn"]) == 0
    assert "| nsf |" in capsys.readouterr().out
    assert main(["--scheme", "nsf", "--limit", "4", "--model", "no-such-model"]) == 2
    assert "unknown model 'no-such-model'" in capsys.readouterr().err


def test_eval_takes_a_training_run_folder(fresh_rows, tmp_path):
    """A candidate is measured by the same command before it is published: a run folder holding the served
    codec gives the served model's NSF rows, and the result names the folder's sha256."""
    import sccdm.zoo as zoo
    from sccdm.weights import save_model_dir
    spec = zoo.entry("sc-cdm-cpu")["parts"]["codec"]
    cfg = json.loads((zoo.WEIGHTS_DIR / "sc-cdm-cpu" / spec["config"]).read_text())
    run = tmp_path / "run"
    save_model_dir(zoo.load("sc-cdm-cpu").codec, {k: v for k, v in cfg.items() if k not in ("sha256", "training")}, run)
    out = tmp_path / "rows.json"
    assert main(["--scheme", "nsf", "--channel", "awgn", "--snr", "3", "12", "--limit", "16", "--batch", "8",
                 "--model", str(run), "--out", str(out)]) == 0
    served = {r["snr_db"]: r["psnr_db"] for r in fresh_rows if r["scheme"] == "nsf"}
    for r in json.loads(out.read_text()):
        assert r["model"] == str(run) and r["psnr_db"] == pytest.approx(served[r["snr_db"]], abs=1e-3)
    meta = json.loads(out.with_suffix(".meta.json").read_text())
    assert meta["models"][str(run)] == {"codec": zoo.checksums(run)["codec"]}
    assert main(["--scheme", "sc-cdm", "--limit", "4", "--model", str(run)]) == 2  # no refiner to run
