"""Plot window: pictures a run saved (PNG), one tab each, at their own size (scroll bars when
larger than the window); the status bar says where the file shown is."""
import os

from PyQt5 import QtCore, QtGui, QtWidgets

__all__ = ["PlotWindow"]


class PlotWindow(QtWidgets.QMainWindow):
    """Pictures in tabs.

    :param files: picture files (PNG).
    :param names: one tab name per file (default: the file names).
    :param title: window title.
    """

    def __init__(self, files, names=None, title=None, parent=None):
        super().__init__(parent)
        self.files = [str(f) for f in files]
        names = list(names or [os.path.basename(f) for f in self.files])
        self.tabs = QtWidgets.QTabWidget()
        self.pixmaps = []
        for path, name in zip(self.files, names):
            pixmap = QtGui.QPixmap(path)
            label = QtWidgets.QLabel()
            label.setAlignment(QtCore.Qt.AlignCenter)
            if pixmap.isNull():
                label.setText("Cannot read the picture %s" % path)
            else:
                label.setPixmap(pixmap)
            scroll = QtWidgets.QScrollArea()
            scroll.setWidget(label)
            scroll.setWidgetResizable(True)
            scroll.setStyleSheet("background: white;")
            self.tabs.addTab(scroll, name)
            self.pixmaps.append(pixmap)
        self.tabs.currentChanged.connect(self._say_file)
        self.setCentralWidget(self.tabs)
        self.setWindowTitle(title or "flexplugin \u2014 plots")
        menu = self.menuBar().addMenu("&File")
        menu.addAction("Close", self.close).setShortcut(QtGui.QKeySequence.Close)
        sizes = [p.size() for p in self.pixmaps if not p.isNull()] or [QtCore.QSize(600, 400)]
        self.resize(min(max(s.width() for s in sizes) + 40, 1500),
                    min(max(s.height() for s in sizes) + 110, 1000))
        self._say_file(0)

    def _say_file(self, index):
        if 0 <= index < len(self.files):
            self.statusBar().showMessage(os.path.abspath(self.files[index]))
