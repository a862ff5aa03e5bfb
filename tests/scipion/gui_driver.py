"""Drives the Scipion project window under an X server (run by test_gui.py as a subprocess).

    python gui_driver.py PROJECT_NAME OUT_DIR

Opens the project window, expands the "flexplugin" section of the protocol tree, opens the form of
each protocol listed there through the tree's own double-click handler, screenshots each step
(``import -window root``) and writes OUT_DIR/gui.json: {"section": [labels], "forms": [titles]}.
"""
import json
import os
import subprocess
import sys
import tkinter as tk
from types import SimpleNamespace

from pyworkflow.gui.project import ProjectWindow
from pyworkflow.project import Manager

DELAY_MS = 2500


def main(name, out):
    win = ProjectWindow(Manager().getProjectPath(name))
    view = win.getViewWidget()
    result = {"section": [], "forms": []}

    def shot(tag):
        subprocess.run(["import", "-window", "root", os.path.join(out, "gui_%s.png" % tag)], check=True)

    def finish():
        with open(os.path.join(out, "gui.json"), "w") as f:
            json.dump(result, f)
        os._exit(0)

    def open_form(keys, i):
        if i == len(keys):
            finish()
        tree = view.protTree
        tree.selection_set(keys[i])
        tree.focus(keys[i])

        def capture():
            titles = [w.title() for w in win.root.winfo_children() if isinstance(w, tk.Toplevel)]
            result["forms"].append(titles[-1] if titles else "")
            shot("form_%d" % i)
            for w in win.root.winfo_children():
                if isinstance(w, tk.Toplevel):
                    w.destroy()
            win.root.after(200, lambda: open_form(keys, i + 1))

        win.root.after(DELAY_MS, capture)   # registered first: the form enters a nested mainloop
        view._protocolItemClick(SimpleNamespace(widget=tree))

    def show_section():
        tree = view.protTree
        section = next(k for k, obj in view.protTreeItems.items() if obj.text == "flexplugin")
        tree.item(section, open=True)
        tree.see(section)
        keys = list(tree.get_children(section))
        result["section"] = [tree.item(k, "text") for k in keys]
        tree.update_idletasks()
        win.root.after(500, lambda: (shot("project"), open_form(keys, 0)))

    win.root.after(DELAY_MS, show_section)
    win.root.after(120000, finish)          # never hang the test
    win.show()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
