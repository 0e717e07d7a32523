"""The paper suite end to end on 20 test images: every figure's PNG + JSON + Markdown, with the caveat."""
from __future__ import annotations

import json
import math

import pytest

pytest.importorskip("sionna")
pytest.importorskip("matplotlib")

FIGURES = ["psnr_vs_snr_awgn", "psnr_vs_snr_rayleigh", "ablation", "visual_grid_15db", "snr_mismatch",
           "erasure_sweep"]


@pytest.fixture(scope="module")
def suite_dir(tmp_path_factory):
    from sccdm.data import find_cifar
    try:
        find_cifar(None)
    except FileNotFoundError:
        pytest.skip("no CIFAR-10 test data (data/ or ../shared/data)")
    from sccdm import suite
    out = tmp_path_factory.mktemp("paper-suite")
    # 20 images, a reduced SNR grid so the test stays near a minute on 2 busy cores
    rc = suite.main(["--limit", "20", "--side-limit", "10", "--batch", "20", "--snrs", "0,15", "--mismatch-tx", "6",
                     "--erasures", "0,0.3", "--grid", "3", "--out-dir", str(out), "--no-progress"])
    assert rc == 0
    return out


@pytest.mark.parametrize("name", FIGURES + ["summary"])
def test_every_figure_has_png_json_md(suite_dir, name):
    if name != "summary":
        png = (suite_dir / f"{name}.png").read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000
    data = json.loads((suite_dir / f"{name}.json").read_text())
    md = (suite_dir / f"{name}.md").read_text()
    assert "JPEG copy" in data["data_caveat"] and "JPEG copy" in md  # the data caveat on every report
    assert data["n_images"] == 20 and data["k"] == 256 and data["psnr_cap_db"] == 50.0
    assert md.startswith("# ") and "Command: `sccdm eval --suite paper --limit 20" in md


def test_main_figure_numbers_are_consistent(suite_dir):
    d = json.loads((suite_dir / "psnr_vs_snr_awgn.json").read_text())
    assert d["snr_db"] == [0.0, 15.0]
    assert set(d["schemes"]) == {"sc-cdm", "nsf", "deepjscc", "jpeg-ldpc", "separation"}
    for scheme, pts in d["schemes"].items():
        for p in pts:
            assert 5.0 < p["psnr"] <= 50.0 and math.isfinite(p["psnr_ci95"]) and p["n"] == 20
            assert 0.0 <= p["lost_share"] <= 1.0 and 0.0 <= p["channel_uses"] <= 256
            # PSNR of the mean MSE never exceeds the mean PSNR (Jensen)
            assert p["psnr_of_mean_mse"] <= p["psnr"] + 1e-6
    sep, jl = d["schemes"]["separation"], d["schemes"]["jpeg-ldpc"]
    assert sep[1]["psnr"] > sep[0]["psnr"]          # the bound grows with SNR
    assert jl[0]["lost_share"] >= 0.8                # rate-1/2 QPSK at 0 dB: nearly every codeword fails
    assert jl[1]["psnr"] <= sep[1]["psnr"] + 1e-6    # no practical separate scheme beats the bound
    assert d["jpeg_ldpc_budget"]["info_bits"] == 256
    r = json.loads((suite_dir / "psnr_vs_snr_rayleigh.json").read_text())
    assert "separation-csit" in r["schemes"]
    # one SNR-adaptive model per scheme and channel: each channel's own, as served
    from sccdm.zoo import DEFAULTS
    for kind, fig in (("awgn", d), ("rayleigh", r)):
        assert fig["models"] == {t: DEFAULTS[(t, kind)] for t in ("sc-cdm", "deepjscc")}


def test_summary_reports_gain_and_bound(suite_dir):
    s = json.loads((suite_dir / "summary.json").read_text())
    assert s["paper_claim_percent"] == 17.0 and math.isfinite(s["sc_cdm_gain_over_deepjscc_percent"])
    assert len(s["sc_cdm_minus_separation_db"]["awgn"]) == 2
    md = (suite_dir / "summary.md").read_text()
    assert "17 %" in md and "separation reference" in md
    g = json.loads((suite_dir / "visual_grid_15db.json").read_text())
    assert len(g["psnr"]) == 3 and len(g["psnr"][0]) == 4


@pytest.mark.parametrize("bad", [["--snrs", "abc"], ["--snrs", "0,99"], ["--erasures", "1.5"], ["--limit", "0"]])
def test_bad_arguments_exit_with_a_usage_error(bad, capsys):
    from sccdm import suite
    with pytest.raises(SystemExit) as e:
        suite.main(bad)
    assert e.value.code == 2 and "error:" in capsys.readouterr().err
