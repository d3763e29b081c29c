"""System-level Jupyter Server config of the Shuyu sandbox (root-owned, read-only).

This directory is $JUPYTER_CONFIG_PATH, the first entry of jupyter_core's config path, so no
other config file outranks what is set here. The user-level config dir ($JUPYTER_CONFIG_DIR)
points at an empty root-owned directory instead of ~/.jupyter, and the venv disables the user
site, so nothing the analyst writes in their home is read as server config. Only the command
line (set by the hub, not the analyst) outranks config files.
"""

c = get_config()  # noqa: F821 (injected by traitlets when it loads this file)

# Routes: refusals for /files, /view, /nbconvert, terminals and contents downloads.
c.ServerApp.authorizer_class = "shuyu_sandbox.authorizer.SandboxAuthorizer"
# No /files route at all (FileContentsManager defaults it to AuthenticatedFileHandler).
c.ContentsManager.files_handler_class = None
c.FileContentsManager.files_handler_class = None
c.ServerApp.terminals_enabled = False
c.ServerApp.jpserver_extensions.update({"jupyter_server_terminals": False})

# Files: the analyst sees their work directory only, never hidden files.
c.ServerApp.root_dir = "/home/analyst/work"
c.ContentsManager.allow_hidden = False
c.FileContentsManager.delete_to_trash = False
# Notebook trust: the signing secret lives in the (tmpfs) home, signatures only in memory, so a
# notebook from elsewhere is never trusted to run its HTML/JS outputs when it is opened.
c.NotebookNotary.data_dir = "/home/analyst/.local/share/jupyter"
c.NotebookNotary.db_file = ":memory:"

# Browser-side defaults kept explicit: same-origin only, XSRF checked.
c.ServerApp.allow_origin = ""
c.ServerApp.disable_check_xsrf = False
# Printed output is throttled (stream messages only; friction, not a control).
c.ZMQChannelsWebsocketConnection.iopub_data_rate_limit = 100_000.0

# JupyterLab: nothing fetched from outside, nothing installed, plugins cannot be toggled from
# the UI (the disabled download/export plugins are listed in labconfig/page_config.json).
c.LabApp.news_url = None
c.LabApp.check_for_updates_class = "jupyterlab.handlers.announcements.NeverCheckForUpdate"
c.LabApp.extension_manager = "readonly"
c.LabApp.lock_all_plugins = True
