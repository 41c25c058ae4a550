"""diarize prepare voxconverse on a fake tree as distributed: the annotations repository
(dev/*.rttm, test/*.rttm, 6-decimal times) with the two audio archives unpacked beside
them (voxconverse_dev_wav.zip -> audio/, voxconverse_test_wav.zip -> voxconverse_test_wav/)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from diarize.cli import main
from diarize.data import load_diarization_set

SR = 16000
SPLITS = {"dev": ["abjxc", "afjiv"], "test": ["aepyx", "aiqwk"]}
AUDIO = {"dev": "audio", "test": "voxconverse_test_wav"}


def voxconverse(root: Path, missing: str = "aiqwk") -> Path:
    for split, uris in SPLITS.items():
        (root / split).mkdir(parents=True)
        (root / AUDIO[split]).mkdir(parents=True)
        for i, uri in enumerate(uris):
            (root / split / f"{uri}.rttm").write_text(
                f"SPEAKER {uri} 1 0.400000 1.640000 <NA> <NA> spk00 <NA> <NA>\n"
                f"SPEAKER {uri} 1 1.960000 1.234567 <NA> <NA> spk01 <NA> <NA>\n"
                f"SPEAKER {uri} 1 2.500000 0.300000 <NA> <NA> spk00 <NA> <NA>\n"
            )
            if uri != missing:
                noise = 0.05 * np.random.default_rng(i).standard_normal(int(3.5 * SR))
                sf.write(str(root / AUDIO[split] / f"{uri}.wav"), noise.astype(np.float32), SR)
    (root / "README.md").write_text("## VoxConverse speaker diarisation dataset\n")
    return root


def test_prepare_voxconverse_dev_and_test(tmp_path: Path, capsys):
    src, out = voxconverse(tmp_path / "voxconverse"), tmp_path / "data"
    assert main(["prepare", "voxconverse", str(src), str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["dev", "test"]
    dev = out / "dev"
    assert (dev / "wav.scp").read_text() == "".join(
        f"{u} {(src / 'audio' / f'{u}.wav').resolve()}\n" for u in SPLITS["dev"]
    )
    assert (dev / "rttm").read_text().splitlines()[:2] == [  # times as given, not rounded
        "SPEAKER abjxc 1 0.4 1.64 <NA> <NA> spk00 <NA> <NA>",
        "SPEAKER abjxc 1 1.96 1.234567 <NA> <NA> spk01 <NA> <NA>",
    ]
    assert (dev / "uem").read_text() == "abjxc 1 0.4 3.194567\nafjiv 1 0.4 3.194567\n"
    assert (dev / "reco2dur").read_text() == "abjxc 3.5\nafjiv 3.5\n"
    assert (out / "test" / "skipped").read_text().startswith("aiqwk audio file missing (")
    assert "test: skipped aiqwk" in capsys.readouterr().err
    data = load_diarization_set(dev)
    turns = sorted((s.start, s.end) for s in data["abjxc"].annotation.itersegments())
    assert turns[1] == (1.96, 1.96 + 1.234567)


def test_audio_folders_given_or_beside_the_rttms(tmp_path: Path):
    src = voxconverse(tmp_path / "repo", missing="")
    moved = tmp_path / "elsewhere"
    (src / "audio").rename(moved)
    for wav in (src / "voxconverse_test_wav").iterdir():  # lhotse's layout: beside the RTTMs
        wav.rename(src / "test" / wav.name)
    (src / "voxconverse_test_wav").rmdir()
    out = tmp_path / "data"
    assert main(["prepare", "voxconverse", str(src), str(out), "--dev-audio", str(moved)]) == 0
    assert str(moved.resolve()) in (out / "dev" / "wav.scp").read_text()
    assert (out / "test" / "reco2dur").read_text() == "aepyx 3.5\naiqwk 3.5\n"
