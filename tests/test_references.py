"""Citations point where a reader of the repository can follow them: to a work of
docs/references.md, by key and place ("[HetSIREN, Eq. 9]", "[cryoDRGN, Methods "Training
system"]"), or to a page of the repository. None cites a file outside the repository, the line
numbers of a paper's text, or the tags of notes that are not part of it."""
import os
import re
import subprocess


ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REFERENCES = "docs/references.md"
THIS = os.path.relpath(os.path.abspath(__file__), ROOT)

# What a citation of a text outside the repository looks like.
OUTSIDE = [
    (r"\bshared/(?:specs|seeds)\b", "a path outside the repository"),
    (r"\bspecs?\s+\(?[A-C]\.?\d", "a section of notes outside the repository"),
    (r"\bspec\s+part\b|\bthe\s+spec\b", "notes outside the repository"),
    (r"\[[A-Za-z-]+,? l\.\s?\d", "line numbers of a text outside the repository"),
    (r"\[(?:CD|HA|CS|HS|EXT|UNSPEC|DERIVED|LOST|P-inf|P-CS|P-HS|C-CS|C-HS|C-SC)\b",
     "a tag of notes outside the repository"),
    (r"(?<![\w\])])\[(?:P|C|S)(?:\]|[ ,;:])", "a tag of notes outside the repository"),
]

# "[Key, place]": a key of docs/references.md followed by a place in that work.
PLACE = (r"(?:§|Eqs?\.|App\.|Figs?\.|Supp|Supplementary|Tables?|Methods|Results|Discussion|"
         r"Introduction|Abstract|Code availability)")
CITATION = re.compile(r"\[([A-Za-z][\w-]*),\s+%s" % PLACE)
KEY_HEADING = re.compile(r"^#{2,4} \[([A-Za-z][\w-]*)\]\s*$", re.M)

SKIP_DIRS = {".git", ".venv", ".pytest_cache", "demo-output", "out", "__pycache__"}


def tracked_files():
    try:
        out = subprocess.run(["git", "ls-files", "*.py", "*.md"], cwd=ROOT, capture_output=True,
                             text=True, check=True).stdout.splitlines()
    except (OSError, subprocess.CalledProcessError):     # not a git checkout: the source tree
        out = []
        for d, dirs, files in os.walk(ROOT):
            dirs[:] = [x for x in dirs if x not in SKIP_DIRS and not x.endswith(".egg-info")]
            out += [os.path.relpath(os.path.join(d, f), ROOT) for f in files if f.endswith((".py", ".md"))]
    return [p for p in out if p != THIS and os.path.isfile(os.path.join(ROOT, p))]


def read(path):
    with open(os.path.join(ROOT, path), encoding="utf-8") as f:
        return f.read()


def line_of(text, pos):
    return text.count("\n", 0, pos) + 1


def reference_keys():
    return KEY_HEADING.findall(read(REFERENCES))


def test_no_citation_of_texts_outside_the_repository():
    offenders = []
    for path in tracked_files():
        text = read(path)
        for pattern, what in OUTSIDE:
            for m in re.finditer(pattern, text):
                offenders.append("%s:%d: %r (%s)" % (path, line_of(text, m.start()), m.group(0), what))
    assert not offenders, ("cite a work of %s by key and place, or a page of the repository:\n%s"
                           % (REFERENCES, "\n".join(sorted(offenders))))


def test_references_keys_are_unique_and_the_four_methods_are_there():
    keys = reference_keys()
    assert len(keys) == len(set(keys)), keys
    assert {"cryoDRGN", "HetACUMN", "cryoSPHERE", "HetSIREN"} <= set(keys)


def test_every_cited_key_is_in_the_references():
    keys = set(reference_keys())
    unknown = []
    for path in tracked_files():
        text = read(path)
        for m in CITATION.finditer(text):
            if m.group(1) not in keys:
                unknown.append("%s:%d: %s" % (path, line_of(text, m.start()), m.group(0)))
    assert not unknown, ("keys missing from %s:\n%s" % (REFERENCES, "\n".join(unknown)))


def test_the_patterns_catch_what_they_should():
    bad = ["see shared/specs/x.md", "[CD l.317-320]", "[HA §4.4]", "(spec A1)", "spec B.5",
           "[P eq. 1, C]", "[C]", "as in the spec", "the\nspec found", "[EXT, spec A3]",
           "[C-SC, spec B.7]", "[S]", "[C: 5 cycles]"]
    good = ["[HetSIREN, Eq. 9]", "x[C]", "f(a)[S]", "[cryoSPHERE, App. A.1, Eq. 10]",
            "spec = residue_ranges(x)", "[Pa, Pb]"]

    def caught(s):
        return any(re.search(p, s) for p, _ in OUTSIDE)
    assert all(caught(s) for s in bad), [s for s in bad if not caught(s)]
    assert not any(caught(s) for s in good), [s for s in good if caught(s)]
    assert CITATION.search("[HetSIREN, Eq. 9]").group(1) == "HetSIREN"
    assert CITATION.search('[cryoDRGN, Methods "Training system"]').group(1) == "cryoDRGN"
