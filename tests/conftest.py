"""Fixtures shared by every test directory (the DB fixtures: tests/dbfixtures.py)."""

pytest_plugins = ["tests.dbfixtures"]
