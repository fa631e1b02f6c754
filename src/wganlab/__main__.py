"""`python -m wganlab` and the `wganlab` command.

Importing PyTorch takes seconds. A KeyboardInterrupt raised in the middle of it ends in a long
traceback from the import machinery, or is swallowed by some library's catch-all and the
command runs on as if nothing had happened (the fault pass saw both). So while the CLI is
imported, a Ctrl-C is only noted; once the import is done the command ends with 130. The
package imports nothing heavy until a name is used, so this guard runs first; from then on
`main()` guards itself.
"""

import signal
import sys


def run() -> int:
    """Run the command line with sys.argv; exit status 130 for a Ctrl-C while starting."""
    interrupts = []

    def note(signum, frame):
        interrupts.append(signum)
        if len(interrupts) > 1:  # asked twice: stop at once
            raise KeyboardInterrupt

    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        note = signal.SIG_IGN  # started with SIGINT ignored: it stays so (see StopSignals)
    previous = signal.signal(signal.SIGINT, note)
    try:
        from .cli.main import main
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGINT, previous)
    if interrupts:
        print("\nwganlab: interrupted", file=sys.stderr)
        return 130
    return main()


if __name__ == "__main__":
    sys.exit(run())
