"""Errors the engine reports to its users.

Every problem with the user's input (a missing file, a malformed STAR table, a truncated stack, ...)
raises :class:`InputError`, which names the file and says what is wrong with it, so that the
command line and Scipion can show one readable line instead of a traceback.
"""


class InputError(Exception):
    """Bad user input: ``str(e) == "<path>: <problem>"``."""

    def __init__(self, path, problem):
        self.path = str(path)
        self.problem = str(problem)
        super().__init__(self.path, self.problem)

    def __str__(self):
        return "%s: %s" % (self.path, self.problem)
