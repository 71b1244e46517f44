"""Bridges to other tools' model loaders. Nothing here is imported by serpentir itself, and nothing is
registered anywhere until asked: see serpentir.integrations.spandrel.install()."""
