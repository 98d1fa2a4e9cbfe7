"""Small demonstration datasets shipped inside the package (compressed ``.npz``).

Each ``<namespace>__<name>-vN.npz`` is installed into the Minari root on first use by
:func:`lnmdn_datasets.minari_io.install_embedded` (``lnmdn_agents.data.load_episodes`` does it
automatically), so a fresh clone trains without building data first.
"""
