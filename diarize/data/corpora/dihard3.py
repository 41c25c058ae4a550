"""DIHARD III: the development (LDC2020E12) and evaluation (LDC2021E02) releases of the Third
DIHARD Challenge, each laid out as LDC ships it::

    data/flac/<uri>.flac                  16 kHz mono
    data/rttm/<uri>.rttm                  the reference
    data/uem_scoring/core/all.uem         scoring regions of the CORE set (+ one .uem per domain)
    data/uem_scoring/full/all.uem         scoring regions of the FULL set
    docs/recordings.tbl                   one row per recording: uri, in_core, lang, domain, source...

SOURCE is one release. Partitions ``<name>_full`` and ``<name>_core`` (``name``: ``dev`` or
``eval``, from the DH_DEV_/DH_EVAL_ recording ids unless given), each with the release's
scoring UEM: the core set is the recordings of ``core/all.uem``. From the recordings table,
each partition also gets ``reco2domain`` (``<uri> <domain>``) and ``domains/<domain>.list``
(the recordings of each domain), for per-domain scoring.
"""

from __future__ import annotations

from pathlib import Path

from pyannote.core import Annotation

from diarize.data.prepare import Candidate, Partition, read_reference
from diarize.rttm import read_uem
from diarize.utils import DiarizeError

PREFIXES = {"DH_DEV_": "dev", "DH_EVAL_": "eval"}


def partitions(source: Path, name: str | None = None) -> list[Partition]:
    """``<name>_full`` and ``<name>_core`` of one DIHARD III release."""
    data = source / "data"
    for needed in ("rttm", "uem_scoring/full/all.uem", "uem_scoring/core/all.uem"):
        if not (data / needed).exists():
            raise DiarizeError(f"{source}: no data/{needed} (not a DIHARD III release?)")
    references = {p.stem: read_reference(p, p.stem) for p in sorted((data / "rttm").glob("*.rttm"))}
    if not references:
        raise DiarizeError(f"{data / 'rttm'}: holds no .rttm file")
    name = name or _release_name(sorted(references))
    domains = read_domains(_table_path(source))
    out = []
    for scoring in ("full", "core"):
        uems = read_uem(data / "uem_scoring" / scoring / "all.uem")
        unknown = sorted(set(uems) - set(references))
        if unknown:
            raise DiarizeError(
                f"{data / 'uem_scoring' / scoring / 'all.uem'}: recordings without a reference "
                f"RTTM: {', '.join(unknown[:5])}"
            )
        cands = tuple(_candidate(data, uri, references[uri], uems[uri]) for uri in sorted(uems))
        out.append(Partition(f"{name}_{scoring}", cands, _domain_tables(sorted(uems), domains)))
    return out


def _release_name(uris: list[str]) -> str:
    names = {next((n for p, n in PREFIXES.items() if u.startswith(p)), None) for u in uris}
    if len(names) != 1 or None in names:
        raise DiarizeError(
            "cannot tell a dev from an eval release by the recording ids: pass --name dev|eval"
        )
    return names.pop()


def _candidate(data: Path, uri: str, reference, uem) -> Candidate:
    flac = data / "flac" / f"{uri}.flac"
    annotation = reference if reference is not None else Annotation(uri=uri)
    return Candidate(uri, flac if flac.is_file() else None, annotation, uem, missing=str(flac))


def _table_path(source: Path) -> Path:
    for name in ("recordings.tbl", "recordings.tsv"):
        if (source / "docs" / name).is_file():
            return source / "docs" / name
    raise DiarizeError(f"{source}: no docs/recordings.tbl (the recordings table)")


def read_domains(path: Path) -> dict[str, str]:
    """``{uri: domain}`` from the recordings table: whitespace-separated, a header row naming
    the columns (``uri`` ... ``domain``), else lhotse's reading of it (uri first, domain
    fourth)."""
    rows = [line.split() for line in path.read_text().splitlines() if line.strip()]
    if not rows:
        raise DiarizeError(f"{path}: empty recordings table")
    header = [h.lower() for h in rows[0]]
    if "uri" in header and "domain" in header:
        uri_col, domain_col, rows = header.index("uri"), header.index("domain"), rows[1:]
    else:
        uri_col, domain_col, rows = 0, 3, rows[1:]
    out = {}
    for lineno, row in enumerate(rows, start=2):
        if len(row) <= max(uri_col, domain_col):
            raise DiarizeError(f"{path}:{lineno}: expected a uri and a domain column")
        out[row[uri_col]] = row[domain_col]
    return out


def _domain_tables(uris: list[str], domains: dict[str, str]) -> dict[str, str]:
    """``reco2domain`` and ``domains/<domain>.list`` for the recordings ``uris``."""
    known = [u for u in uris if u in domains]
    tables = {"reco2domain": "".join(f"{u} {domains[u]}\n" for u in known)}
    for domain in sorted({domains[u] for u in known}):
        members = [u for u in known if domains[u] == domain]
        tables[f"domains/{domain}.list"] = "".join(f"{u}\n" for u in members)
    return tables
