"""What every benchmark result records: the command, the machine, the date, the commit, and the JSON +
Markdown pair written side by side."""
from __future__ import annotations

import json
import platform
import shlex
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent


def meta(script: str, argv, t0: float, **extra) -> dict:
    """script: the path from the repository root; argv: the arguments (None: sys.argv[1:]); t0: time.time()
    at the start."""
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True,
                            text=True).stdout.strip()
    # quoted so that the recorded command can be pasted back into a shell (arguments with spaces)
    return {"command": f"python {script} " + shlex.join(argv if argv is not None else sys.argv[1:]),
            "machine": f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads",
            "date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "wall_s": round(time.time() - t0),
            "commit": commit, **extra}


def head(title: str, meta_: dict, detail: str) -> list[str]:
    """The Markdown's first lines: title, command, then machine, date, wall time and commit with detail."""
    return [f"# {title}", "", f"Command: `{meta_['command']}`  ",
            f"Machine: {meta_['machine']}; {meta_['date']}; {meta_['wall_s']} s; commit {meta_['commit']}; {detail}", ""]


def write(out: str | Path, meta_: dict, rows: list, markdown: str) -> Path:
    """out.json ({"meta", "rows"}) and out.md; returns out."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps({"meta": meta_, "rows": rows}, indent=1))
    out.with_suffix(".md").write_text(markdown)
    print(f"wrote {out}.json/.md")
    return out
