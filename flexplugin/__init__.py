"""flexplugin: heterogeneous cryo-EM reconstruction for Scipion.

The Scipion side (``Plugin``, protocols, viewers) needs pyworkflow/pwem; the engine
(``flexplugin.engine``) needs torch and never imports Scipion. ``Plugin`` is therefore
resolved lazily so that the engine environment can import this package without pwem.
"""
__version__ = "0.1.0"


def __getattr__(name):
    if name == "Plugin":
        from .plugin import Plugin
        return Plugin
    raise AttributeError("module 'flexplugin' has no attribute %r" % name)
