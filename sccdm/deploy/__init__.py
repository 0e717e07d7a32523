"""Deployment helpers beside the library core: the container stack (``sccdm stack up --docker``).

Kept out of the core so that importing :mod:`sccdm` never needs the Docker SDK, and so the
process stack (:mod:`sccdm.stack`) and the container stack depend on the client (:mod:`sccdm.send`)
rather than on each other.
"""
