"""Modules, one per file or package, named as in OpenSIPS 1.6."""
