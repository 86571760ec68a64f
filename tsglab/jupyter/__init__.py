"""Notebook integration: the ``%tsg`` magics."""
