"""The `wganlab` command: a thin layer that parses flags and calls the library."""

from .main import main

__all__ = ["main"]
