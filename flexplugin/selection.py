"""Selection files: the particle ids a user picked, shared by the protocols, the viewers and the
command line. Plain text: optional comment lines starting with ``#`` (the first names the
selection), then the ids, one per line (spaces or commas also separate them on reading).
Needs neither torch nor pyworkflow."""


def write_ids(path, ids, name=None):
    """Write ``ids`` (integers) to ``path``, after a ``# name`` line when ``name`` is given."""
    with open(path, "w") as f:
        if name:
            f.write("# %s\n" % name)
        f.write("".join("%d\n" % int(i) for i in ids))


def read_ids(path):
    """The ids of a selection file, in file order (list of int). A token that is not an integer
    raises ValueError naming the file and the line."""
    ids = []
    with open(path) as f:
        for number, line in enumerate(f, 1):
            for token in line.split("#", 1)[0].replace(",", " ").split():
                try:
                    ids.append(int(token))
                except ValueError:
                    raise ValueError("%s, line %d: %r is not a particle id" % (path, number, token))
    return ids
