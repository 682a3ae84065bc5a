"""The released data sets, pinned: where each file comes from and the checksum it must have.

ProsQA is the COCONUT release's `data/prosqa_*.json`; GSM8k is the iCoT release's augmented text files,
fetched as the COCONUT release's `preprocessing/gsm_icot.bash` fetches them (train.txt is a Git LFS file,
so it comes from media.githubusercontent.com). ProntoQA has no released file: it is made with the ProntoQA
code (`PRONTOQA_RECIPE`) and converted by `coconut data prontoqa-convert`. The split files' names and their lookup
(`SPLIT_FILE_NAMES`, `RELEASE_NAMES`, `split_file`) are the config layer's (`coconut.config.split_files`),
re-exported here. Standard library only, besides.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from coconut.config.split_files import OUR_NAMES, RELEASE_NAMES, SPLIT_FILE_NAMES, split_file

__all__ = ["COCONUT_COMMIT", "ICOT_COMMIT", "PRONTOQA_COMMIT", "ReleaseFile", "RELEASES", "DATASETS", "PRONTOQA_RECIPE",
           "SPLIT_FILE_NAMES", "OUR_NAMES", "RELEASE_NAMES", "release_of", "split_file", "file_digests", "mismatch",
           "released_file"]

COCONUT_COMMIT = "27273cb8cca4bb763c041a63b036d0c3b7cbbb48"  # facebookresearch/coconut, the release checked
ICOT_COMMIT = "e06a32ee5e4cd117171daeb4755d2a97ece62761"  # da03/Internalize_CoT_Step_by_Step, as gsm_icot.bash pins
PRONTOQA_COMMIT = "f0145b867b3c106285ec9ea1941a3f6eb7c6162d"  # asaparov/prontoqa, as the COCONUT README pins

_COCONUT_RAW = f"https://raw.githubusercontent.com/facebookresearch/coconut/{COCONUT_COMMIT}/data"
_ICOT_RAW = f"https://raw.githubusercontent.com/da03/Internalize_CoT_Step_by_Step/{ICOT_COMMIT}/data/gsm8k"
_ICOT_LFS = f"https://media.githubusercontent.com/media/da03/Internalize_CoT_Step_by_Step/{ICOT_COMMIT}/data/gsm8k"


@dataclass(frozen=True)
class ReleaseFile:
    """One released file: saved as `name`, fetched from `url`, accepted only with these checksums."""

    name: str
    url: str
    sha256: str
    git_blob: str | None = None  # the git object id of the file in the release's tree, checked too when given
    size: int | None = None  # bytes, when known: a larger answer is cut off early

    @property
    def remote_name(self) -> str:
        return self.url.rsplit("/", 1)[1]


# The sha256 of prosqa_valid/test.json and of gsm8k valid/test.txt are those of the releases' files; train.txt's
# is the one its Git LFS pointer names. prosqa_train.json (over 4 MiB) was not in the copy of the release read
# here: its git blob id comes from the release's tree, its sha256 from a public script that pins the same
# commit (and the same prosqa_valid.json sha256 as computed here). Where a git blob id is known it decides (it
# is read from the release's own tree); the sha256 decides for the files without one (GSM8k train.txt, LFS).
RELEASES: dict[str, tuple[ReleaseFile, ...]] = {
    "prosqa": (
        ReleaseFile("prosqa_train.json", f"{_COCONUT_RAW}/prosqa_train.json",
                    "99e40ce7e9107fd02e35bcd78a7a4479bd57f415bab0a6efd37cc11a72e594f6",
                    git_blob="cf26632b9d3f4e812966563eed769b1cfe40c624"),
        ReleaseFile("prosqa_valid.json", f"{_COCONUT_RAW}/prosqa_valid.json",
                    "c74e0de24f1e90ec48b1a993e6458a7be4caeef3928f5104e3c2e45d689a5249",
                    git_blob="8df0c62fd6a6c55bfc31345181f505185c4efbd7", size=518208),
        ReleaseFile("prosqa_test.json", f"{_COCONUT_RAW}/prosqa_test.json",
                    "82ddc0afe6ee30eb31bb16fa208e293e55278a20fa987098d48519cae7e12680",
                    git_blob="73ff837a94b1f10e604a6d31a4c2fa6c131b687f", size=856611),
    ),
    "gsm8k": (
        ReleaseFile("train.txt", f"{_ICOT_LFS}/train.txt",
                    "0a3909a9e7d8d2f7ad6b8c7b5608aa744988d835f9bf874d4cf06ca77df6bf8c", size=87805358),
        ReleaseFile("valid.txt", f"{_ICOT_RAW}/valid.txt",
                    "04f9bddfe8ac4846571b1e2b612b289c95770b5012fdb34cc36a597b041afb87",
                    git_blob="b762e4a06211443abe3a679ca638075c8bc8b0bf", size=143419),
        ReleaseFile("test.txt", f"{_ICOT_RAW}/test.txt",
                    "e464efa2713fbcf423bdbfb482c543a6a086188c3d97c294b1d19a70c2a515e8",
                    git_blob="da2a48e8970dad9c65b9a8b3cbde35c8feb7cb11", size=388019),
    ),
}

DATASETS = ("prosqa", "prontoqa", "gsm8k")  # what `coconut data download` knows

PRONTOQA_RECIPE = (
    "ProntoQA has no released data file; make it as the COCONUT release does: "
    f"git clone https://github.com/asaparov/prontoqa && cd prontoqa && git checkout {PRONTOQA_COMMIT} && "
    "python run_experiment.py --model-name json --model-size dummy --ordering random --num-trials 10000 "
    "--few-shot-examples 0 --ontology fictional --min-hops 5 --max-hops 5 --hops-skip 1; "
    "then, back in the folder you train from: "
    "coconut data prontoqa-convert /path/to/prontoqa/5hop_0shot_random.json --to {to}"
)


def release_of(name: str) -> str | None:
    """The data set whose release names its files `name` (prosqa_*, prontoqa_*, gsm_* or iCoT's *.txt)."""
    if name not in RELEASE_NAMES:
        return None
    return "gsm8k" if name.startswith("gsm_") or name.endswith(".txt") else name.split("_", 1)[0]


def file_digests(path) -> tuple[str, str]:
    """(sha256, git blob id) of a file, read once in 1 MiB chunks."""
    path = Path(path)
    sha256, blob = hashlib.sha256(), hashlib.sha1()
    blob.update(f"blob {path.stat().st_size}\0".encode())
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            sha256.update(chunk)
            blob.update(chunk)
    return sha256.hexdigest(), blob.hexdigest()


def mismatch(path, release: ReleaseFile, digests: tuple[str, str] | None = None) -> str | None:
    """None when the file is the released one, else what differs (one phrase)."""
    sha256, blob = digests or file_digests(path)
    if release.git_blob:
        return None if blob == release.git_blob else f"git blob id {blob} is not the release's {release.git_blob}"
    if sha256 != release.sha256:
        return f"sha256 {sha256} is not the release's {release.sha256}"
    return None


def released_file(sha256: str, blob: str | None = None) -> tuple[str, ReleaseFile] | None:
    """(data set, file) of the release whose checksum this is, if any (see `mismatch` for which decides)."""
    for name, files in RELEASES.items():
        for release in files:
            if (release.git_blob and release.git_blob == blob) or (not release.git_blob and release.sha256 == sha256):
                return name, release
    return None
