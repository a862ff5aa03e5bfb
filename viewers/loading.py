"""The first window of the window program (``app``): "Loading ..." with a status line naming the
step under way and a busy cursor. It is up a moment after the click, while the project, the data
and the plotting modules load, and goes when the window with the content is shown. Qt only."""
import time

from PyQt5 import QtCore, QtWidgets

__all__ = ["LoadingWindow"]


class LoadingWindow(QtWidgets.QWidget):
    """A small window titled "Loading <what>"; :meth:`step` shows the step under way (kept in
    ``steps`` as ``(seconds since the window was made, text)``), :meth:`finish` closes it and
    gives the cursor back."""

    def __init__(self, what, parent=None):
        super().__init__(parent)
        self.t0 = time.perf_counter()
        self.steps = []
        self.setWindowTitle("Loading %s \u2014 flexplugin" % what)
        self.heading = QtWidgets.QLabel("Loading %s\u2026" % what)
        font = self.heading.font()
        font.setPointSizeF(font.pointSizeF() * 1.3)
        self.heading.setFont(font)
        self.status = QtWidgets.QLabel("")
        self.status.setStyleSheet("color: #555")
        self.bar = QtWidgets.QProgressBar()
        self.bar.setRange(0, 0)                           # busy: no known end
        self.bar.setTextVisible(False)
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(24, 20, 24, 20)
        for widget in (self.heading, self.bar, self.status):
            layout.addWidget(widget)
        self.resize(460, 120)
        self._busy = False

    def start(self):
        """Show the window and the busy cursor; returns self."""
        if not self._busy:
            QtWidgets.QApplication.setOverrideCursor(QtCore.Qt.WaitCursor)
            self._busy = True
        self.show()
        self.raise_()
        self._repaint()
        return self

    def step(self, text):
        """Say what is being done (e.g. "Reading 5,000 particles ...")."""
        self.steps.append((time.perf_counter() - self.t0, text))
        self.status.setText(text)
        self._repaint()

    def finish(self):
        """Close the window and give the cursor back (again: nothing)."""
        if self._busy:
            QtWidgets.QApplication.restoreOverrideCursor()
            self._busy = False
        self.close()

    def _repaint(self):
        app = QtWidgets.QApplication.instance()
        if app is not None and self.isVisible():
            app.processEvents(QtCore.QEventLoop.ExcludeUserInputEvents)
