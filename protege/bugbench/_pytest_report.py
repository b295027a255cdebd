"""pytest plugin used only while building the benchmark: records, for every failed test,
the failing line of the test itself and pytest's crash message, as JSON.

Loaded with ``-p protege_failure_report`` (copied under that name next to the run)."""

import json
import os

_FAILURES = {}


def pytest_runtest_logreport(report):
    if not report.failed or report.when != "call":
        return
    longrepr = report.longrepr
    crash = getattr(getattr(longrepr, "reprcrash", None), "message", str(longrepr))
    line, lineno = "", None
    entries = getattr(getattr(longrepr, "reprtraceback", None), "reprentries", [])
    test_file = report.nodeid.split("::")[0]
    for entry in entries:
        loc = getattr(entry, "reprfileloc", None)
        if loc is not None and loc.path.replace(os.sep, "/").endswith(test_file):
            marked = [ln[1:].strip() for ln in getattr(entry, "lines", []) if ln.startswith(">")]
            if marked:
                line, lineno = marked[0], loc.lineno
    _FAILURES[report.nodeid] = {"crash": crash, "line": line, "lineno": lineno}


def pytest_sessionfinish(session):
    path = os.environ.get("PROTEGE_FAILURE_REPORT")
    if path:
        with open(path, "w") as fh:
            json.dump(_FAILURES, fh, indent=1, sort_keys=True)
