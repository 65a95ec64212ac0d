"""``soloist clock``: shown everywhere, moved only in a rehearsal workspace."""

from __future__ import annotations

import json
from pathlib import Path

from tests_support import soloist


def test_a_rehearsal_clock_moves_forward_and_a_real_one_refuses(tmp_path: Path) -> None:
    real, rehearsal = tmp_path / "real", tmp_path / "rehearsal"
    for folder, extra in ((real, ""), (rehearsal, "test_clock = true\n")):
        folder.mkdir()
        (folder / "soloist.toml").write_text(f'[workspace]\nname = "x"\n{extra}')
    refused = soloist("clock", "advance", "3d", "-w", str(real), check=False)
    assert refused.returncode == 1
    assert "test_clock = true" in refused.stderr and "Traceback" not in refused.stderr
    assert json.loads(soloist("clock", "--json", "-w", str(real)).stdout)["offset_seconds"] == 0
    moved = soloist("clock", "advance", "3d", "-w", str(rehearsal))
    assert "72 h ahead of the real clock" in moved.stdout
    bad = soloist("clock", "advance", "soon", "-w", str(rehearsal), check=False)
    assert bad.returncode == 1 and "not a duration" in bad.stderr
    far = soloist("clock", "advance", "99999999999999d", "-w", str(rehearsal), check=False)
    assert far.returncode == 1 and "at most 3650 days ahead" in far.stderr  # nothing moved
    shown = json.loads(soloist("clock", "--json", "-w", str(rehearsal)).stdout)
    assert shown == {"now": shown["now"], "offset_seconds": 259200.0, "adjustable": True}
