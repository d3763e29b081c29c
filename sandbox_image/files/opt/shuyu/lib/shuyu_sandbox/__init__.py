"""Server-side hardening of the Shuyu analyst sandbox (runs inside the container, root-owned).

``authorizer`` holds the rules that close the routes a notebook server would otherwise use to
hand files to the browser in bulk. The system-level Jupyter config in ``/etc/shuyu/jupyter``
turns them on; the analyst can neither edit these files nor put config of their own ahead of it.
"""
