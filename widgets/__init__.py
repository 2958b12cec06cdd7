"""Panel apps built on metacadi: ``explorer.py`` is served with ``panel serve widgets/explorer.py``."""
