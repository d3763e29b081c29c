"""Hub-managed services end with the hub that started them.

JupyterHub starts each managed service in a session of its own (so signals sent to the hub are
not forwarded). If the hub process dies without stopping them (killed, out of memory, a host
supervisor restarting it), the services would live on as orphans holding their ports and the
old hub's state, and the restarted hub's services could not bind. So every service asks Linux
to send it SIGTERM when its parent dies (``PR_SET_PDEATHSIG``) and, if the parent is already gone
by then, stops at once. SIGTERM runs the service's normal shutdown (uvicorn's, the watchdog's).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import sys

PR_SET_PDEATHSIG = 1


def end_with_hub() -> bool:
    """When started by the hub (``JUPYTERHUB_SERVICE_NAME`` set), get SIGTERM when it dies.

    Returns whether the death signal was set up. Exits if the hub died before it was."""
    if not os.environ.get("JUPYTERHUB_SERVICE_NAME") or not sys.platform.startswith("linux"):
        return False
    parent = os.getppid()
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    if os.getppid() != parent or parent == 1:  # the hub died before we asked
        sys.exit("the hub that started this service is gone")
    return True
