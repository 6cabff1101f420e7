"""Options more than one verb takes."""

from __future__ import annotations

import argparse


def auth_options(parser: argparse.ArgumentParser) -> None:
    """`--as` and `--token`: who a command to an operator API acts as."""
    parser.add_argument(
        "--as",
        dest="subject",
        metavar="SUBJECT",
        help="subject of the development token (default operator:<login name>)",
    )
    parser.add_argument("--token", help="a bearer token (default: AWOOOP_TOKEN, else minted)")
