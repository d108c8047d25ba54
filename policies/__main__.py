"""Check a policy file, or list what it changes against the shipped policy.

python -m policies check FILE     exit 0 if FILE loads, 1 with file:line: reason if not
python -m policies diff FILE      list every situation FILE decides differently
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from policies.engine import default_engine, load
from policies.policyfile import PolicyFileError
from policies.review import differences


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command in `argv`; return the exit code (0 ok, 1 defect found, 2 usage)."""
    parser = argparse.ArgumentParser(prog="python -m policies", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    for name, text in (("check", "check that FILE loads"), ("diff", "compare FILE to the default")):
        commands.add_parser(name, help=text).add_argument("file")
    args = parser.parse_args(argv)
    try:
        engine = load(args.file)
    except PolicyFileError as exc:
        print(exc, file=sys.stderr)
        return 1
    if args.command == "check":
        print(f"{args.file}: {len(engine.rules)} rules, ok")
        return 0
    changed = differences(default_engine(), engine)
    for line in changed:
        print(line)
    print(f"{len(changed)} situations decided differently from the shipped policy", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
