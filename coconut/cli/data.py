"""`coconut data ...`: generate data sets, convert formats, print statistics. No torch import here."""

from __future__ import annotations

import argparse
import sys

from coconut.data.generators import GENERATORS


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
    except DataError as err:
        print(f"coconut data: {err}", file=sys.stderr)
        return 1
    return 0
