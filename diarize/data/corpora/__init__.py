"""The standard diarization benchmarks, as their users hold them. One module per corpus
turns the corpus as distributed into :class:`~diarize.data.prepare.Partition` s; the
checking and writing is shared (:mod:`diarize.data.prepare`); ``diarize prepare CORPUS
SOURCE OUT`` (:mod:`diarize.cli.prepare`) wraps them.

- :mod:`~diarize.data.corpora.ami`: AMI meeting corpus with the AMI-diarization-setup;
- :mod:`~diarize.data.corpora.callhome`: CALLHOME (NIST SRE 2000 disk 8, LDC2001S97);
- :mod:`~diarize.data.corpora.dihard3`: DIHARD III development and evaluation releases;
- :mod:`~diarize.data.corpora.voxconverse`: VoxConverse dev and test.
"""

CORPORA = ("ami", "callhome", "dihard3", "voxconverse")
