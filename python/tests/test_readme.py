"""The README's Python quick start and python/README.md's examples run as
written and print what they say."""

from __future__ import annotations

import contextlib
import io
import pathlib
import re

import peakknn

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


def readme_examples():
    """python/README.md's ```python blocks, and the output each `print`
    line promises in its trailing comment ("..." ends a prefix)."""
    text = (REPOSITORY / "python" / "README.md").read_text()
    blocks = re.findall(r"^```python\n(.*?)^```$", text, re.M | re.S)
    promised = re.findall(r"^\s*print\(.*\)\s+# (.*)$", "".join(blocks),
                          re.M)
    return blocks, promised


def test_python_readme_examples_print_what_they_say(server, client,
                                                     monkeypatch):
    blocks, promised = readme_examples()
    assert len(blocks) >= 8 and len(promised) >= 10
    monkeypatch.setenv("PEAKKNN_SERVER", server.address)
    namespace, out = {}, io.StringIO()
    try:
        with contextlib.redirect_stdout(out):
            for number, block in enumerate(blocks):
                exec(compile(block, f"python/README.md block {number}", "exec"),
                     namespace)
    finally:
        if "client" in namespace:
            namespace["client"].close()
        try:
            client.drop("quickstart")
        except peakknn.NotFound:
            pass
    printed = out.getvalue().splitlines()
    assert len(printed) == len(promised), printed
    for line, promise in zip(printed, promised):
        if promise.endswith("..."):
            assert line.startswith(promise[:-3].rstrip()), (line, promise)
        else:
            assert line == promise
