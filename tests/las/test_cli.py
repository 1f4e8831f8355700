"""``landseg las build`` and ``landseg las info``: results, card, map, one-line errors."""
from __future__ import annotations

from landsegmenter.cli import main


def test_build_then_info_writes_card_and_map(shared_data, tmp_path, write_manifest, dw_subset, capsys):
    manifest = write_manifest(
        {"name": "cli-test", "description": "A tiny store.", "subsets": {"dw": dw_subset(shared_data, samples=2)}}
    )
    out = tmp_path / "store"
    assert main(["las", "build", str(manifest), "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "dw: built, 4 samples written" in printed
    assert main(["las", "build", str(manifest), "-o", str(out)]) == 0
    assert "dw: already complete, 0 samples written" in capsys.readouterr().out

    card_path, png = tmp_path / "docs" / "card.md", tmp_path / "docs" / "map.png"
    card_path.parent.mkdir()
    assert main(["las", "info", str(out), "--markdown", str(card_path), "--png", str(png)]) == 0
    card = capsys.readouterr().out
    assert card.rstrip("\n") == card_path.read_text(encoding="utf-8").rstrip("\n")
    assert card.startswith("# cli-test\n\nA tiny store.")
    assert "| dw | sentinel2_l1c | 4 | 64 | 10 | dynamic_world | weak | 4 | 2 | 2 | 0 |" in card
    assert "![sample locations](map.png)" in card
    assert "### dynamic_world (dw)" in card and "label gap 0 d" in card
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(["las", "info", str(out)]) == 0
    assert (out / "sample_locations.png").is_file()


def test_errors_are_one_line(shared_data, tmp_path, write_manifest, dw_subset, capsys):
    subset = dw_subset(shared_data)
    subset["sampling"]["balance"] = True
    manifest = write_manifest({"subsets": {"dw": subset}})
    assert main(["las", "build", str(manifest), "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("landseg: error: ") and err.count("\n") == 1
    assert "unknown key(s) 'balance'" in err
    assert main(["las", "info", str(tmp_path)]) == 2
    assert "is not a LAS store" in capsys.readouterr().err
