"""Which token count is the paper's? Mean gold-answer lengths, with and without the final EOS, per data set.

    python tools/paper_token_counts.py --tokenizer PATH FILE [FILE ...]

PATH: a GPT-2 tokenizer folder (for example `openai-community/gpt2` downloaded once). Each FILE is a records
file (.json, or iCoT .txt). For each file it prints the mean length of "### answer" (what No-CoT generates)
and of "steps\\n... ### answer" (CoT), each without and with the EOS, in the paper format. Compare with the
paper's Table 1: ProsQA No-CoT 8.2, ProntoQA CoT 92.5, GSM8k No-CoT 2.2, ProntoQA No-CoT 3.0.
"""

from __future__ import annotations

import argparse
from statistics import mean


def main() -> None:
    from transformers import AutoTokenizer

    from coconut.data.records import load_records
    from coconut.data.tokenize import PAPER_FORMAT, tokenize_record

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokenizer", required=True)
    parser.add_argument("files", nargs="+")
    args = parser.parse_args()
    tokenizer = AutoTokenizer.from_pretrained(args.tokenizer)
    print("| file | records | No-CoT w/o EOS | with EOS | CoT w/o EOS | with EOS |")
    print("|---|---|---|---|---|---|")
    for path in args.files:
        rows = [tokenize_record(r, tokenizer, PAPER_FORMAT) for r in load_records(path)]
        answer = mean(len(r["answer_ids"]) for r in rows)
        cot = mean(len(r["answer_ids"]) + sum(map(len, r["step_ids"])) for r in rows)
        print(f"| {path} | {len(rows)} | {answer:.2f} | {answer + 1:.2f} | {cot:.2f} | {cot + 1:.2f} |")


if __name__ == "__main__":
    main()
