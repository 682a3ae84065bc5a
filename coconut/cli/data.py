"""`coconut data ...`: generate data sets, convert formats, print statistics. No torch import here."""

from __future__ import annotations

import argparse
import sys

from coconut.data.generators import GENERATORS
from coconut.data.release import DATASETS


def add_data_commands(parser: argparse.ArgumentParser) -> None:
    commands = parser.add_subparsers(dest="data_command", metavar="NAME", required=True)
    for name, text in (
        ("prosqa", "ProsQA-style DAG questions matching the released statistics"),
        ("prosqa-mini", "small ProsQA graphs a tiny model learns on a CPU (the demo's data)"),
        ("prontoqa", "5-hop fictional-ontology true/false questions"),
    ):
        gen = commands.add_parser(name, help=text, description=text)
        gen.add_argument("--n", type=int, required=True, help="number of records")
        gen.add_argument("--seed", type=int, default=0)
        gen.add_argument("--out", required=True, help="output file (.json, the official format, or .jsonl)")
        if name.startswith("prosqa"):
            gen.add_argument("--render", choices=("words", "compact"), default=None,
                             help="sentence form (default: words for prosqa, compact for prosqa-mini)")
    stats = commands.add_parser("stats", help="statistics of a records file, optionally beside a reference")
    stats.add_argument("file")
    stats.add_argument("--against", help="a reference records file to compare with")
    convert = commands.add_parser("convert", help="convert records between formats (.json, .jsonl, iCoT .txt)")
    convert.add_argument("source")
    convert.add_argument("out")
    download = commands.add_parser(
        "download", help="fetch a released data set (prosqa, gsm8k; prontoqa: how to make it), checksums checked",
        description="Fetch the released files into DIR (default data/NAME, where conf/data/NAME.yaml looks); a "
                    "file appears only once its pinned sha256 matches, files already right are kept.")
    download.add_argument("name", choices=DATASETS)
    download.add_argument("--to", metavar="DIR", help="destination folder (default: data/NAME)")
    download.add_argument("--base-url", help="fetch every file from BASE_URL/<file name> instead (a mirror)")
    download.add_argument("--timeout", type=float, default=60.0, help="seconds without an answer before giving up")
    pronto = commands.add_parser(
        "prontoqa-convert", help="ProntoQA's raw 5hop_0shot_random.json -> prontoqa_{train,valid,test}.json",
        description="Records as the release's preprocessing/prontoqa.py makes them: question + ' ' + query, "
                    "chain-of-thought sentences joined in pairs, the answer; the first 9000 train, 200 valid, "
                    "the rest test.")
    pronto.add_argument("raw", help="the file run_experiment.py wrote (5hop_0shot_random.json)")
    pronto.add_argument("--to", metavar="DIR", default="data/prontoqa",
                        help="destination folder (default: %(default)s)")
    pronto.add_argument("--train-size", type=int, default=9000)
    pronto.add_argument("--valid-size", type=int, default=200)


def run(args: argparse.Namespace) -> int:
    from coconut.data.records import DataError, load_records, write_records

    try:
        if args.data_command in GENERATORS:
            from coconut.data.generators import generate

            if args.n < 1:
                print(f"coconut data {args.data_command}: --n must be at least 1, got {args.n}", file=sys.stderr)
                return 1
            records = generate(args.data_command, args.n, args.seed, getattr(args, "render", None), progress=True)
            write_records(records, args.out)
            print(f"wrote {len(records)} {args.data_command} records to {args.out}")
        elif args.data_command == "stats":
            from coconut.data.stats import format_stats

            reference = load_records(args.against) if args.against else None
            print(format_stats(load_records(args.file), args.file, reference, args.against or ""))
        elif args.data_command == "convert":
            records = load_records(args.source)
            write_records(records, args.out)
            print(f"wrote {len(records)} records to {args.out}")
        elif args.data_command == "download":
            return download(args)
        elif args.data_command == "prontoqa-convert":
            from coconut.data.prontoqa_release import convert_prontoqa

            for path, n in convert_prontoqa(args.raw, args.to, args.train_size, args.valid_size).items():
                print(f"wrote {n} records to {path}")
    except DataError as err:
        print(f"coconut data: {err}", file=sys.stderr)
        return 1
    return 0


def download(args: argparse.Namespace) -> int:
    from coconut.data.download import DownloadError, download_release
    from coconut.data.errors import DataError
    from coconut.data.release import PRONTOQA_RECIPE, split_file

    to = args.to or f"data/{args.name}"
    if args.name == "prontoqa":  # nothing to download: say how the release makes it, and that nothing was fetched
        print(f"coconut data download: {PRONTOQA_RECIPE.format(to=to)}", file=sys.stderr)
        return 1
    try:
        download_release(args.name, to, base_url=args.base_url, timeout=args.timeout)
    except DownloadError as err:
        print(f"coconut data download: {err}", file=sys.stderr)
        return 1
    for split in ("train", "val", "test"):  # a generated train.json beside prosqa_train.json would be ambiguous
        try:
            split_file(to, split)
        except DataError as err:
            print(f"coconut data download: note: {err}", file=sys.stderr)
    return 0
