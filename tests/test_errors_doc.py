"""docs/errors.md cannot rot: every message it lists (the backticked text of each table's first
column, ``<...>`` standing for values) is still written by the source of the engine or the
protocols."""
import ast
import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOC = os.path.join(ROOT, "docs", "errors.md")
# Texts the operating system writes (strerror), not the project.
SYSTEM = {"Permission denied", "Read-only file system", "No space left on device", "File too large",
          "Disk quota exceeded"}


def _strings():
    """Every string literal of flexplugin/ and protocols/ (adjacent literals joined, as Python
    joins them)."""
    out = []
    for folder in ("flexplugin", "protocols"):
        for base, _, names in os.walk(os.path.join(ROOT, folder)):
            for name in names:
                if name.endswith(".py"):
                    with open(os.path.join(base, name), encoding="utf-8") as f:
                        tree = ast.parse(f.read())
                    out += [n.value for n in ast.walk(tree)
                            if isinstance(n, ast.Constant) and isinstance(n.value, str)]
    return "\n".join(out)


def documented_messages():
    messages = []
    with open(DOC, encoding="utf-8") as f:
        for line in f:
            cells = line.split(" | ")
            if not line.startswith("| ") or len(cells) < 2 or set(cells[0]) <= set("|- "):
                continue
            messages += re.findall(r"`([^`]+)`", cells[0])
    return messages


def test_every_documented_message_is_in_the_source():
    corpus = _strings()
    messages = documented_messages()
    assert len(messages) > 80
    missing = []
    for message in messages:
        if message.startswith("error: ") or message in SYSTEM or message == "Message":
            continue
        for piece in re.split(r"<[^>]*>|: ", message):
            piece = piece.strip(" .,/")
            if len(piece) >= 4 and piece not in corpus:
                missing.append("%r (from %r)" % (piece, message))
    assert not missing, "docs/errors.md lists messages the source no longer writes:\n" + "\n".join(missing)

