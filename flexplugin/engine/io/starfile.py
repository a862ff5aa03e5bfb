"""A small STAR file parser and writer (no dependency): data blocks, key-value pairs, loops.

:func:`read_star` returns every data block (its key-value pairs and its ``loop_`` table, values
kept as strings); :func:`write_star_blocks` writes blocks back.

Grammar handled: ``data_NAME`` (the name may be empty), ``loop_`` followed by ``_label [#N]`` lines
and one row per line, ``_label value`` pairs, ``#`` comments, blank lines, and values quoted with
``'`` or ``"`` (a quote closes when followed by whitespace or the end of the line).
"""
import os
import re
from dataclasses import dataclass, field
from typing import Dict, List, Optional

from ..errors import InputError
from .mrc import atomic_path

@dataclass
class StarBlock:
    """One ``data_`` block: ordered key-value pairs and an optional loop (label -> string values)."""
    name: str
    pairs: Dict[str, str] = field(default_factory=dict)
    loop: Optional[Dict[str, List[str]]] = None

    @property
    def nrows(self):
        return len(next(iter(self.loop.values()))) if self.loop else 0


# ----------------------------------------------------------------------------------- parsing


def _tokens(line, path, lineno):
    """Split one line into values (quotes removed, ``#`` comment dropped)."""
    if "'" not in line and '"' not in line and "#" not in line:
        return line.split()
    out, i, n = [], 0, len(line)
    while i < n:
        c = line[i]
        if c.isspace():
            i += 1
        elif c == "#":
            break
        elif c in "'\"":
            j = i + 1
            while True:
                j = line.find(c, j)
                if j < 0:
                    raise InputError(path, "line %d: unterminated quoted value" % lineno)
                if j + 1 == n or line[j + 1].isspace():
                    break
                j += 1
            out.append(line[i + 1:j])
            i = j + 1
        else:
            j = i
            while j < n and not line[j].isspace():
                j += 1
            out.append(line[i:j])
            i = j
    return out


def read_star(path):
    """All data blocks of a STAR file, in file order (list of :class:`StarBlock`)."""
    path = os.path.abspath(str(path))
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        raise InputError(path, "file not found")
    except UnicodeDecodeError:
        raise InputError(path, "not a STAR file (not UTF-8 text)")
    except OSError as e:
        raise InputError(path, "cannot read (%s)" % e.strerror)
    blocks, block, state, labels, rows = [], None, None, [], []

    def close_loop():
        if block is not None and state in ("labels", "rows"):
            block.loop = {lab: list(col) for lab, col in zip(labels, zip(*rows))} if rows \
                else {lab: [] for lab in labels}

    for lineno, line in enumerate(lines, 1):
        s = line.strip()
        if not s or s[0] == "#":
            continue
        if s.startswith("data_"):
            close_loop()
            block, state = StarBlock(_tokens(s, path, lineno)[0][5:]), "pairs"
            blocks.append(block)
        elif block is None:
            raise InputError(path, "line %d: %r before any data_ block" % (lineno, s[:40]))
        elif s.split()[0] == "loop_":
            if block.loop is not None or state in ("labels", "rows"):
                raise InputError(path, "line %d: second loop_ in block data_%s" % (lineno, block.name))
            state, labels, rows = "labels", [], []
        elif s[0] == "_":
            tok = _tokens(s, path, lineno)
            if state == "labels":
                if tok[0][1:] in labels:
                    raise InputError(path, "line %d: column %s defined twice" % (lineno, tok[0]))
                labels.append(tok[0][1:])
                continue
            close_loop()
            state = "pairs"
            if len(tok) != 2:
                raise InputError(path, "line %d: expected '%s value'" % (lineno, tok[0]))
            block.pairs[tok[0][1:]] = tok[1]
        elif state in ("labels", "rows"):
            tok = _tokens(s, path, lineno)
            if len(tok) != len(labels):
                raise InputError(path, "line %d: %d values for %d columns in data_%s"
                                 % (lineno, len(tok), len(labels), block.name))
            rows.append(tok)
            state = "rows"
        else:
            raise InputError(path, "line %d: unexpected text %r" % (lineno, s[:40]))
    close_loop()
    return blocks


# ----------------------------------------------------------------------------------- writing


_PLAIN = re.compile(r"(?!data_|loop_)[^\s'\"#_]\S*\Z")   # needs no quotes (\s covers line breaks)


def _quote(v):
    """A value as written in a STAR row (quoted when it has spaces or could read as a keyword)."""
    if _PLAIN.match(v):
        return v
    if len(("x" + v + "x").splitlines()) != 1:
        raise ValueError("STAR values cannot contain line breaks: %r" % v)
    for q in ("'", '"'):
        if not v.endswith(q) and not any(a == q and b.isspace() for a, b in zip(v, v[1:])):
            return q + v + q
    raise ValueError("cannot quote STAR value %r" % v)


def write_star_blocks(path, blocks, version=30001):
    """Write :class:`StarBlock` s (atomically), each preceded by ``# version N`` as RELION does."""
    parts = []
    for b in blocks:
        parts.append("\n# version %d\n\ndata_%s\n\n" % (version, b.name))
        parts.extend("_%s %s\n" % (k, _quote(v)) for k, v in b.pairs.items())
        if b.loop is not None:
            labels = list(b.loop)
            parts.append("loop_\n")
            parts.extend("_%s #%d\n" % (lab, i + 1) for i, lab in enumerate(labels))
            cols = [[_quote(str(v)) for v in b.loop[lab]] for lab in labels]
            parts.extend(" ".join(row) + "\n" for row in zip(*cols))
        parts.append("\n")
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        f.write("".join(parts))
