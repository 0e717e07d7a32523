"""Splice re-run rows into a committed `sccdm eval` result when one model's weights change.

    python scripts/update_eval_rows.py benchmarks/results/photos/kodak_awgn.json NEW.json --replace sc-cdm \
        --check nsf --why "sc-cdm-paper-photo's refiner was replaced" --command "sccdm eval ..."

A photo evaluation of every scheme takes an hour on one thread; when only a refiner changes, the rows of the
schemes it touches (``--replace``) are re-run with the same seeds, hence the same channel draws, and spliced in.
``--check`` names schemes present in both files that must agree to 1e-6 dB (the codec's own output, NSF, when only
the refiner changed): the proof that the draws are the same. The meta file gets the update appended to its
``updates`` list and the Markdown is re-rendered with one line per update.
"""
from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from sccdm.evaluate import format_table  # noqa: E402


def _key(r: dict) -> tuple:
    return r["scheme"], r["channel"], r["snr_db"], r.get("cbr_target")


def splice(old: list[dict], new: list[dict], replace: list[str], check: list[str]) -> list[dict]:
    """old rows with those of the ``replace`` schemes taken from ``new``; raises on a ``check`` mismatch."""
    fresh = {_key(r): r for r in new}
    for r in old:
        if r["scheme"] in check:
            n = fresh.get(_key(r))
            if n is None or abs(n["psnr_db"] - r["psnr_db"]) > 1e-6:
                raise SystemExit(f"{_key(r)}: {r['psnr_db']} here, {n and n['psnr_db']} in the new run: "
                                 "not the same channel draws (or the codec changed)")
    out = []
    for r in old:
        if r["scheme"] in replace:
            if _key(r) not in fresh:
                raise SystemExit(f"{_key(r)} is missing from the new run")
            r = fresh[_key(r)]
        out.append(r)
    return out


def _updates(meta: dict) -> list[dict]:
    ups = list(meta.get("updates", []))
    if "update" in meta:  # the one-update form written by hand before this script
        ups.insert(0, meta.pop("update"))
    return ups


def render(meta: dict, rows: list[dict]) -> str:
    lines = [f"# sccdm eval\n\n`{meta['command']}`\n\n{meta['date']}, {meta['machine']}, {meta['wall_s']} s\n"]
    for u in meta.get("updates", []):
        lines.append(f"Updated {u['date'][:10]}: the {u['rows']} rows re-run on the same channel draws "
                     f"({u['why']}; `{u['command']}`, {u['wall_s']} s).\n")
    return "\n".join(lines) + "\n" + format_table(rows) + "\n" + meta.get("caveat", "") + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="update_eval_rows.py", description=__doc__.split("\n\n")[0])
    p.add_argument("result", help="committed eval JSON (its .meta.json and .md beside it are updated too)")
    p.add_argument("new", nargs="+", help="eval JSON(s) of the re-run (several: one per SNR group)")
    p.add_argument("--replace", nargs="+", required=True, help="schemes whose rows are taken from the re-run")
    p.add_argument("--check", nargs="*", default=[], help="schemes that must agree between the two")
    p.add_argument("--why", required=True)
    p.add_argument("--command", required=True, help="the re-run's command line")
    a = p.parse_args(argv)
    result = Path(a.result)
    old = json.loads(result.read_text())
    new = [r for f in a.new for r in json.loads(Path(f).read_text())]
    rows = splice(old, new, a.replace, a.check)
    meta_path = result.with_suffix(".meta.json")
    meta = json.loads(meta_path.read_text())
    ups = _updates(meta)
    new_metas = [json.loads(Path(f).with_suffix(".meta.json").read_text()) for f in a.new]
    ups.append({"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "rows": ", ".join(a.replace),
                "why": a.why, "command": a.command, "machine": new_metas[0]["machine"],
                "wall_s": round(sum(m["wall_s"] for m in new_metas), 1),
                "models": {k: v for m in new_metas for k, v in m["models"].items()}})
    meta["updates"] = ups
    for m in new_metas:
        meta["models"].update(m["models"])
    result.write_text(json.dumps(rows, indent=1) + "\n")
    meta_path.write_text(json.dumps(meta, indent=1) + "\n")
    md = result.with_suffix(".md")
    md.write_text(render(meta, rows))
    print(f"updated {result}, {meta_path.name}, {md.name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
