"""The transmitter service: images -> power-normalised channel symbols (``python -m transmitter``)."""
