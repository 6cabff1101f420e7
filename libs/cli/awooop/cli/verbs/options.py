"""Options more than one verb takes."""

from __future__ import annotations

import argparse


def auth_options(parser: argparse.ArgumentParser, role: str = "") -> None:
    """`--as` and `--token`: who a command to an operator API acts as (`role`: what
    that subject does, in its help)."""
    parser.add_argument(
        "--as",
        dest="subject",
        metavar="SUBJECT",
        help=f"subject of the development token{role} (default operator:<login name>)",
    )
    parser.add_argument("--token", help="a bearer token (default: AWOOOP_TOKEN, else minted)")
