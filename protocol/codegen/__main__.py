"""``python -m protocol.codegen``: regenerate the committed codecs."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from protocol.codegen import REPO, default_input, generate, write


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m protocol.codegen", description=__doc__)
    ap.add_argument("--input", type=Path, default=default_input(),
                    help="the kafka-protocol folder (default: %(default)s)")
    ap.add_argument("--output", type=Path, default=REPO / "protocol",
                    help="output root; modules go to messages/ and coordinator/ below it")
    args = ap.parse_args(argv)
    if not (args.input / "messages").is_dir():
        print(f"no specs at {args.input}", file=sys.stderr)
        return 2
    files = generate(args.input, args.output)
    write(files)
    print(f"generated {len(files)} files under {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
