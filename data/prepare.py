"""Regenerate data/penguins_v1.csv from the `palmerpenguins` package, byte for byte.

    uv run python data/prepare.py            # writes data/penguins_v1.csv
    uv run python data/prepare.py --check    # exits 1 if the committed file differs

Keeps the 333 complete rows of the 344-row original; `id` is the 1-based row number in
the original. Every column is encoded by the contract (penguin_contract).
"""

import argparse
import sys
from pathlib import Path

import pandas as pd
from palmerpenguins import load_penguins

from penguin_contract import FEATURES, ISLANDS, SEXES, SPECIES, TARGET, atomic_write_bytes

CSV_PATH = Path(__file__).with_name("penguins_v1.csv")
COLUMNS = ("id", TARGET, *FEATURES)
INTEGER_COLUMNS = ("flipper_length_mm", "body_mass_g", "year")


def _codes(mapping) -> dict[str, int]:
    return {name: code for code, name in mapping.items()}


def build_dataset() -> pd.DataFrame:
    """The encoded 333-row dataset, in the original's row order."""
    raw = load_penguins()
    raw.insert(0, "id", range(1, len(raw) + 1))
    df = raw.dropna().copy()
    df[TARGET] = df[TARGET].map(_codes(SPECIES))
    df["island"] = df["island"].map(_codes(ISLANDS))
    df["sex"] = df["sex"].map(_codes(SEXES))
    if df[[TARGET, "island", "sex"]].isna().any().any():
        raise ValueError("palmerpenguins holds a label the contract does not know")
    for column in (TARGET, "island", "sex", *INTEGER_COLUMNS):
        df[column] = df[column].astype("int64")
    return df.loc[:, list(COLUMNS)].reset_index(drop=True)


def render_csv(df: pd.DataFrame) -> bytes:
    return df.to_csv(index=False, lineterminator="\n").encode("utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    parser.add_argument("--output", type=Path, default=CSV_PATH)
    args = parser.parse_args(argv)

    content = render_csv(build_dataset())
    if args.check:
        same = args.output.exists() and args.output.read_bytes() == content
        print(f"{args.output}: {'up to date' if same else 'DIFFERS from palmerpenguins'}")
        return 0 if same else 1
    atomic_write_bytes(args.output, content)
    rows = len(content.splitlines()) - 1
    print(f"wrote {args.output} ({rows} rows)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
