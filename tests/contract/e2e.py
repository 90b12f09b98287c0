"""`make e2e`: the contract suite against a deployed stack.

    API_URL=https://<id>.execute-api.<region>.amazonaws.com [AUTH=iam|jwt] \\
        python -m tests.contract.e2e [pytest arguments]

Checks the input (URL, auth mode, credentials) and makes one probe request before any
test runs; a problem there is one line on stderr and exit status 2, not a traceback.
The suite only reads, and writes only sessions it creates (random ids) and then ends.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from tests.contract import target as targets

SUITE = os.path.join(os.path.dirname(os.path.abspath(__file__)))


def main(argv: Sequence[str] = ()) -> int:
    try:
        target = targets.deployed(os.environ)
        targets.probe(target)
    except targets.TargetError as error:
        print(f"make e2e: {error}", file=sys.stderr)
        return 2
    targets.DEPLOYED = target
    print(f"contract suite against {target.base_url} (AUTH={target.auth})", flush=True)
    import pytest

    # One process, no cache in the tree: the target above lives in this interpreter.
    return int(pytest.main(["-p", "no:cacheprovider", "-p", "no:xdist", SUITE, *argv]))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
