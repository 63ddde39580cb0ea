"""What every long-running interop peer does: die with the test process.

The test harness keeps a peer's stdin open and sets INTEROP_EXIT_ON_STDIN_EOF=1,
so that the peer exits when that pipe closes, even when the test process is
killed before it can clean up.
"""

import os
import sys
import threading


def exit_on_stdin_eof():
    """Exits the process once stdin closes, when the harness asks for it."""
    if os.environ.get("INTEROP_EXIT_ON_STDIN_EOF") != "1":
        return

    def watch():
        try:
            while sys.stdin.buffer.read(4096):
                pass
        finally:
            os._exit(0)

    threading.Thread(target=watch, daemon=True).start()
