"""The receiver service: received symbols -> equalised -> decoded -> refined image (``python -m receiver``)."""
