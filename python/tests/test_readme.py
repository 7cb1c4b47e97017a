"""The README's Python quick start runs as written."""

from __future__ import annotations

import pathlib

REPOSITORY = pathlib.Path(__file__).resolve().parents[2]
HEADING = "## Quick start with Python"


def quick_start_lines():
    """The indented code block under HEADING that starts with `import`."""
    lines = (REPOSITORY / "README.md").read_text().splitlines()
    start = lines.index(HEADING)
    code = []
    for line in lines[start + 1:]:
        if line.startswith("## "):
            break
        if line.startswith("    ") and (code or line.strip().startswith("import")):
            code.append(line[4:])
        elif code:
            break
    return code


def test_readme_quick_start_runs_verbatim(server, client, monkeypatch):
    code = quick_start_lines()
    assert len(code) == 5, code
    # It connects to $PEAKKNN_SERVER (default 127.0.0.1:50051): point it
    # at the test server.
    monkeypatch.setenv("PEAKKNN_SERVER", server.address)
    namespace = {}
    try:
        exec(compile("\n".join(code), "README.md quick start", "exec"),
             namespace)
        assert namespace["D"].shape == namespace["I"].shape == (5, 10)
        assert client.describe("docs").live_rows == 10000
    finally:
        namespace["client"].close()
        client.drop("docs")
