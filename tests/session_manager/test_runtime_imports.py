"""The boto3 type stubs (mypy_boto3_*) are for mypy only: the layer and the functions name
them under `if TYPE_CHECKING:`, so a cold start never imports them (the Lambda runtime does
not even have them). Checked in a fresh interpreter, where nothing else imported them first.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LAYER = ROOT / "layers" / "session_manager"

# Every module of the layer, then every function's app.py as Lambda's INIT imports it
# (its own directory first on sys.path); prints the stubs this Python could import, and
# the mypy_boto3 modules it did import.
STUBS = ["mypy_boto3_dynamodb", "mypy_boto3_secretsmanager"]
COLD_START = """
import importlib, importlib.util, json, pathlib, pkgutil, runpy, sys

import session_manager

for module in pkgutil.walk_packages(session_manager.__path__, "session_manager."):
    importlib.import_module(module.name)
for app in sorted(pathlib.Path(sys.argv[1]).glob("*/app.py")):
    sys.path.insert(0, str(app.parent))
    runpy.run_path(str(app), run_name=app.parent.name)
    sys.path.pop(0)
print(json.dumps({
    "importable": [name for name in sys.argv[2:] if importlib.util.find_spec(name)],
    "imported": sorted(name for name in sys.modules if name.startswith("mypy_boto3")),
}))
"""


def test_no_type_stub_is_imported_at_run_time():
    env = {
        "PYTHONPATH": str(LAYER),
        "SESSIONS_TABLE": "sessions",
        "SIGNING_SECRET_ID": "signing-key",
        "AWS_DEFAULT_REGION": "us-east-1",
        "POWERTOOLS_METRICS_NAMESPACE": "Test",
    }
    result = subprocess.run(  # noqa: S603 - fixed arguments
        [sys.executable, "-c", COLD_START, str(ROOT / "functions"), *STUBS],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    # Importable (the test extra installs them), so not imported means nothing asked.
    assert json.loads(result.stdout.splitlines()[-1]) == {"importable": STUBS, "imported": []}
