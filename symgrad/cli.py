"""The ``symgrad`` command.

``symgrad demo`` runs PyTorch's autograd tutorial with symgrad and shows the
NumPy code symgrad generated for its gradient.
"""

from __future__ import annotations

import argparse
import sys

import symgrad
from symgrad import tutorial


def _heading(title: str) -> None:
    print(f"\n== {title} " + "=" * max(0, 70 - len(title)))


def demo(args: argparse.Namespace) -> int:
    """Run the tutorial, then print the generated gradient code of its loss."""
    _heading("PyTorch's autograd tutorial, run with symgrad")
    loss = tutorial.run(symgrad)
    _heading("The NumPy code symgrad generated for loss.backward()")
    print(symgrad.backward_source(loss))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="symgrad",
        description="Symbolic-to-numeric differentiation with PyTorch's autograd API.",
        epilog="example: symgrad demo",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    demo_parser = commands.add_parser(
        "demo", help="run the autograd tutorial and show the generated gradient code",
        description="Run PyTorch's autograd tutorial (one linear layer, BCE-with-logits loss) with "
                    "symgrad, then print the NumPy code generated for its gradient.",
        epilog="example: symgrad demo")
    demo_parser.set_defaults(handler=demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``symgrad`` console script and ``python -m symgrad``."""
    parser = build_parser()
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    if args.command is None:
        parser.print_help()
        return 2
    return args.handler(args)
