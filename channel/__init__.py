"""The channel service: symbols -> received symbols + CSI through a backend (``python -m channel``)."""
