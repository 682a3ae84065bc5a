"""`coconut data ...`: generate data sets, convert formats, print statistics. No torch import here."""

from __future__ import annotations

import argparse
import os
import sys

from coconut.bench.settings import at_least
from coconut.config.data import MAX_GENERATED
from coconut.data.generators import GENERATORS
from coconut.data.prosqa import DISTRACTORS, RENDERS
from coconut.data.release import DATASETS


def count(least: int, most: int | None = None):
    """An integer in [least, most]; the upper bound of record counts says why it exists."""
    return at_least(least, most, " (records are made and held in memory before they are written, about 1 KB each; "
                                 "generate a large set in several files with different --seed)")


def seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, got {text}")
    return value


def base_url(text: str) -> str:
    """A mirror's address: http(s)://host[/folder] (or file:///folder), so that BASE_URL/<file name> is a URL."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 -- reading it checks it (ValueError: not a number, out of range)
        ok = ((parts.scheme in ("http", "https") and bool(parts.hostname)) or (parts.scheme == "file" and bool(parts.path)))
    except ValueError:  # an invalid port, a malformed IPv6 address
        ok = False
    if not ok or any(c.isspace() for c in text):
        raise argparse.ArgumentTypeError(f"expected a URL such as https://mirror.example/coconut (http, https or "
                                         f"file://), got {text!r}")
    return text


def add_data_commands(parser: argparse.ArgumentParser) -> None:
    commands = parser.add_subparsers(dest="data_command", metavar="NAME", required=True)
    for name, text in (
        ("prosqa", "ProsQA-style DAG questions matching the released statistics"),
        ("prosqa-mini", "small ProsQA graphs a tiny model learns on a CPU (the demo's data)"),
        ("prosqa-deep", "ProsQA-style trees whose answer is several edges deep behind side branches (a search)"),
        ("prontoqa", "5-hop fictional-ontology true/false questions"),
    ):
        gen = commands.add_parser(name, help=text, description=text)
        gen.add_argument("--n", type=count(1, MAX_GENERATED), required=True,
                         help=f"number of records (1 to {MAX_GENERATED:,})")
        gen.add_argument("--seed", type=int, default=0, help="random seed: the same seed makes the same records")
        gen.add_argument("--out", required=True,
                         help="output file (.json, the official format, .jsonl, or iCoT .txt)")
        if name.startswith("prosqa"):
            gen.add_argument("--render", choices=RENDERS, default=None,
                             help="sentence form (default: words for prosqa, compact for prosqa-mini, phrase for prosqa-deep; "
                                  "phrase: a compact question, steps as short sentences)")
        if name in ("prosqa", "prosqa-mini"):
            gen.add_argument("--distractor", choices=DISTRACTORS, default=None,
                             help="the wrong option: any leaf of the other person (default) or "
                                  "matched: as deep below its person as the answer, with as many parents")
        if name == "prosqa-deep":
            gen.add_argument("--depth", type=at_least(1, 7), default=None,
                             help="edges from the subject to the answer (default 4)")
    stats = commands.add_parser("stats", help="statistics of a records file, optionally beside a reference")
    stats.add_argument("file", help="a records file (.json, .jsonl or iCoT .txt)")
    stats.add_argument("--against", help="a reference records file to compare with")
    convert = commands.add_parser("convert", help="convert records between formats (.json, .jsonl, iCoT .txt)")
    convert.add_argument("source", help="the records file to read")
    convert.add_argument("out", help="the file to write; its suffix (.json, .jsonl, .txt) says the format")
    download = commands.add_parser(
        "download", help="fetch a released data set (prosqa, gsm8k; prontoqa: how to make it), checksums checked",
        description="Fetch the released files into DIR (default data/NAME, where conf/data/NAME.yaml looks); a "
                    "file appears only once its pinned sha256 matches, files already right are kept.")
    download.add_argument("name", choices=DATASETS)
    download.add_argument("--to", metavar="DIR", help="destination folder (default: data/NAME)")
    download.add_argument("--base-url", type=base_url, help="fetch every file from BASE_URL/<file name> instead (a mirror)")
    download.add_argument("--timeout", type=seconds, default=60.0, help="seconds without an answer before giving up")
    pronto = commands.add_parser(
        "prontoqa-convert", help="ProntoQA's raw 5hop_0shot_random.json -> prontoqa_{train,valid,test}.json",
        description="Records as the release's preprocessing/prontoqa.py makes them: question + ' ' + query, "
                    "chain-of-thought sentences joined in pairs, the answer; the first 9000 train, 200 valid, "
                    "the rest test.")
    pronto.add_argument("raw", help="the file run_experiment.py wrote (5hop_0shot_random.json)")
    pronto.add_argument("--to", metavar="DIR", default="data/prontoqa",
                        help="destination folder (default: %(default)s)")
    pronto.add_argument("--train-size", type=count(1), default=9000, help="train records (default: %(default)s)")
    pronto.add_argument("--valid-size", type=count(1), default=200, help="valid records (default: %(default)s)")


def check_out(out: str, flag: str) -> None:
    """The file to write can be written: a known suffix, and a folder (or a place to make one) that is not a file.
    Checked before generating or reading anything, so a large set is not made only to be refused."""
    from pathlib import Path

    from coconut.config import ConfigError
    from coconut.data.records import FORMATS

    path = Path(out)
    if path.suffix.lower() not in FORMATS:
        raise ConfigError(f"{flag} {out}: unknown format {path.suffix or '(no suffix)'!r}; records are written as "
                          f"{', '.join(FORMATS)} (.txt: iCoT text)")
    if path.is_dir():
        raise ConfigError(f"{flag} {out}: is a folder; name a file in it")
    parent = path.parent
    while not parent.exists() and parent != parent.parent:  # the nearest folder that exists, to be written in
        parent = parent.parent
    if not parent.is_dir():
        raise ConfigError(f"{flag} {out}: {parent} is a file, not a folder; choose another {flag}")
    if not os.access(parent, os.W_OK):
        raise ConfigError(f"{flag} {out}: {parent} is not writable; choose another {flag}")


def check_not_a_release_name(out: str) -> None:
    """Generated data is never written under a released file's name, where it would pass for the release."""
    from pathlib import Path

    from coconut.config import ConfigError
    from coconut.data.release import RELEASE_NAMES

    name = Path(out).name
    if name in RELEASE_NAMES:
        raise ConfigError(f"--out {out}: {name} is a released file's name; generated data is never written under "
                          f"it (it would pass for the release): choose another name, such as train.json")


def run(args: argparse.Namespace) -> int:
    """One data command; its failures (DataError, DownloadError, OSError) go up to the one error path (exit 2)."""
    from coconut.data.records import load_records, write_records

    if args.data_command in GENERATORS:
        from coconut.data.generators import generate

        check_out(args.out, "--out")
        check_not_a_release_name(args.out)
        records = generate(args.data_command, args.n, args.seed, getattr(args, "render", None), progress=True,
                           depth=getattr(args, "depth", None), distractor=getattr(args, "distractor", None))
        write_records(records, args.out)
        print(f"wrote {len(records)} {args.data_command} records to {args.out}")
    elif args.data_command == "stats":
        from coconut.data.stats import format_stats

        reference = load_records(args.against) if args.against else None
        print(format_stats(load_records(args.file), args.file, reference, args.against or ""))
    elif args.data_command == "convert":
        check_out(args.out, "OUT")
        records = load_records(args.source)
        write_records(records, args.out)
        print(f"wrote {len(records)} records to {args.out}")
    elif args.data_command == "download":
        return download(args)
    elif args.data_command == "prontoqa-convert":
        from coconut.data.prontoqa_release import convert_prontoqa

        for path, n in convert_prontoqa(args.raw, args.to, args.train_size, args.valid_size).items():
            print(f"wrote {n} records to {path}")
    return 0


def download(args: argparse.Namespace) -> int:
    from coconut.data.download import download_release
    from coconut.data.errors import DataError
    from coconut.data.release import PRONTOQA_RECIPE, split_file

    to = args.to or f"data/{args.name}"
    if args.name == "prontoqa":  # nothing to download: say how the release makes it, and that nothing was fetched
        print(f"coconut data download: {PRONTOQA_RECIPE.format(to=to)}", file=sys.stderr)
        return 2
    download_release(args.name, to, base_url=args.base_url, timeout=args.timeout)
    for split in ("train", "val", "test"):  # a generated train.json beside prosqa_train.json would be ambiguous
        try:
            split_file(to, split)
        except DataError as err:
            print(f"coconut data download: note: {err}", file=sys.stderr)
    return 0
