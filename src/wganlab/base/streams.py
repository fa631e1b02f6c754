"""A closed stdout ends printing, never the work.

`wganlab train ... | head -1` closes the pipe after one line; the next print raised
BrokenPipeError and the run stopped without its final checkpoint. While `guarded_streams()` is
active, a write to a closed stdout or stderr (EPIPE) points that stream at /dev/null and
goes on: the run continues, logs to its files and saves as it would have. It also prints
wganlab's own warnings as one line each ("wganlab: warning: ..."), not Python's two.
"""

from __future__ import annotations

import contextlib
import errno
import os
import sys
import warnings


class _Guarded:
    """A text stream whose writes survive the reader going away."""

    def __init__(self, stream):
        self._stream, self.closed_by_reader = stream, False

    def _silence(self) -> None:
        # Point the file descriptor at /dev/null: later writes (and the flush at exit, which
        # would print "Exception ignored ... BrokenPipeError") succeed and go nowhere.
        self.closed_by_reader = True
        with contextlib.suppress(OSError, ValueError, AttributeError):
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, self._stream.fileno())
            os.close(null)

    def _call(self, name: str, *args):
        if self.closed_by_reader:
            return None
        try:
            return getattr(self._stream, name)(*args)
        except OSError as e:
            if isinstance(e, BrokenPipeError) or e.errno == errno.EPIPE:
                self._silence()
                return None
            raise

    def write(self, text: str):
        """Write, or drop the text once the reader has gone."""
        result = self._call("write", text)
        return len(text) if result is None else result

    def flush(self) -> None:
        """Flush, or do nothing once the reader has gone."""
        self._call("flush")

    def __getattr__(self, name):
        return getattr(self._stream, name)


def _one_line(message, category, filename, lineno, file=None, line=None) -> None:
    text = f"wganlab: warning: {message}\n"
    try:
        (file or sys.stderr).write(text)
    except OSError:
        pass


@contextlib.contextmanager
def guarded_streams():
    """While active: stdout and stderr survive a closed reader; warnings are one line."""
    saved = sys.stdout, sys.stderr, warnings.showwarning
    sys.stdout, sys.stderr = _Guarded(sys.stdout), _Guarded(sys.stderr)
    warnings.showwarning = _one_line
    try:
        yield
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(OSError, ValueError):
                stream.flush()
        sys.stdout, sys.stderr, warnings.showwarning = saved
