"""The notebook server in the sandbox refuses the bulk-download routes and still does its work.

A token-protected ``jupyter server`` runs as the container's main process with the image's
system config (``server_sandbox``, ``--network none``); requests come from inside the same
container. A file with a marker string stands for data the analyst would like to take out.
"""

from __future__ import annotations

import json

import pytest

from tests.sandbox.conftest import HOME, WORK

pytestmark = [pytest.mark.docker, pytest.mark.timeout(1800)]

MARKER = "MARKER-7c1e0b5d"
CSV = f"id,name\n1,{MARKER}\n"
BINARY = bytes(range(256)) * 8 + MARKER.encode()

# (path, status): absent routes answer 404, routes the authorizer closes answer 403.
REFUSED = [
    ("/files/secret.csv", 404),
    ("/files/secret.csv?download=1", 404),
    ("/files/Welcome.ipynb", 404),
    ("/view/secret.csv", 403),
    ("/view/Welcome.ipynb", 403),
    ("/nbconvert/html/Welcome.ipynb", 403),
    ("/nbconvert/html/Welcome.ipynb?download=true", 403),
    ("/nbconvert/script/Welcome.ipynb?download=true", 403),
    ("/api/nbconvert", 403),
    ("/terminals/1", 404),
    ("/api/terminals", 404),
    ("/api/contents/secret.csv?type=file&format=base64", 403),
    ("/api/contents/secret.csv", 403),
    ("/api/contents/blob.bin", 403),
    ("/api/contents/blob.bin?type=file&format=base64", 403),
]

LOCKED_PLUGINS = [
    "@jupyterlab/docmanager-extension:download",
    "@jupyterlab/filebrowser-extension:download",
    "@jupyterlab/docmanager-extension:open-browser-tab",
    "@jupyterlab/filebrowser-extension:open-browser-tab",
    "@jupyterlab/filebrowser-extension:share-file",
    "@jupyterlab/notebook-extension:export",
    "@jupyterlab/notebook-extension:copy-output",
]

HOSTILE_PY = """\
c.ServerApp.authorizer_class = "jupyter_server.auth.authorizer.AllowAllAuthorizer"
c.ContentsManager.files_handler_class = "jupyter_server.files.handlers.FilesHandler"
c.FileContentsManager.files_handler_class = "jupyter_server.files.handlers.FilesHandler"
c.ServerApp.terminals_enabled = True
c.ContentsManager.allow_hidden = True
"""
HOSTILE_JSON = json.dumps({
    "ServerApp": {"authorizer_class": "jupyter_server.auth.authorizer.AllowAllAuthorizer"},
    "ContentsManager": {"files_handler_class": "jupyter_server.files.handlers.FilesHandler"},
    "FileContentsManager": {"files_handler_class": "jupyter_server.files.handlers.FilesHandler"},
})
HOSTILE_PAGE = json.dumps({"disabledExtensions": {plugin: False for plugin in LOCKED_PLUGINS}})
# Every place a stock Jupyter would read user config from.
USER_CONFIG_DIRS = (f"{HOME}/.jupyter", f"{HOME}/.local/etc/jupyter")


@pytest.fixture(scope="module")
def data_files(server_sandbox):
    server_sandbox.write(f"{WORK}/secret.csv", CSV)
    proc = server_sandbox.run(
        "python", "-c", f"open('{WORK}/blob.bin', 'wb').write({BINARY!r})"
    )
    assert proc.returncode == 0, proc.stderr
    return server_sandbox


@pytest.mark.parametrize(("path", "status"), REFUSED, ids=[p for p, _ in REFUSED])
def test_download_route_is_refused(data_files, path, status):
    answer = data_files.get(path)
    assert answer["status"] == status, answer["body"][:300]
    assert MARKER not in answer["body"]


def test_terminal_cannot_be_created(data_files):
    answer = data_files.probe("http", requests=[{"method": "POST", "path": "/api/terminals"}])[0]
    assert answer["status"] == 404


def test_contents_listing_and_text_reads_work(data_files):
    listing = data_files.get("/api/contents")
    assert listing["status"] == 200
    names = {entry["name"] for entry in json.loads(listing["body"])["content"]}
    assert {"Welcome.ipynb", "secret.csv", "blob.bin"} <= names
    notebook = data_files.get("/api/contents/Welcome.ipynb")
    assert notebook["status"] == 200
    assert json.loads(notebook["body"])["content"]["cells"]
    text = data_files.get("/api/contents/secret.csv?type=file&format=text")
    assert text["status"] == 200
    assert json.loads(text["body"])["content"] == CSV
    metadata = data_files.get("/api/contents/blob.bin?content=0")
    assert metadata["status"] == 200
    assert json.loads(metadata["body"])["size"] == len(BINARY)


def test_hidden_files_are_not_listed(data_files):
    data_files.write(f"{WORK}/.hidden.txt", MARKER)
    listing = json.loads(data_files.get("/api/contents")["body"])
    assert ".hidden.txt" not in {entry["name"] for entry in listing["content"]}
    assert data_files.get("/api/contents/.hidden.txt?type=file&format=text")["status"] == 404


def test_kernel_runs_code_as_the_analyst(data_files):
    answer = data_files.probe(
        "execute", code="import os, polars\nprint(os.getuid(), polars.__version__)\n6 * 7"
    )
    assert answer["status"] == "ok", answer["error"]
    assert answer["stdout"].split() == ["1000", "1.36.1"]
    assert answer["result"] == "42"


def test_lab_download_and_export_plugins_are_disabled_and_locked(data_files):
    page = data_files.probe("page_config")
    assert page["status"] == 200
    config = page["config"]
    assert set(LOCKED_PLUGINS) <= set(config["disabledExtensions"])
    assert config["terminalsAvailable"] is False
    plugins = json.loads(data_files.get("/lab/api/plugins")["body"])
    assert plugins["allLocked"] is True
    assert set(LOCKED_PLUGINS) <= set(plugins["lockRules"])
    answer = data_files.probe("http", requests=[
        {"method": "POST", "path": "/lab/api/plugins",
         "json": {"cmd": "enable", "plugin_name": LOCKED_PLUGINS[0]}}])[0]
    assert not 200 <= answer["status"] < 300
    assert "locked" in answer["body"]
    assert LOCKED_PLUGINS[0] in data_files.probe("page_config")["config"]["disabledExtensions"]


def test_config_in_the_home_cannot_reopen_routes(data_files):
    """Hostile config in every user config dir; a new server started like the first ignores it.

    The control run starts a server the way stock Jupyter would (config dir in the home, the
    system path dropped from the environment): there the same files do reopen /files, which
    shows they are valid config and that the image's paths are what keeps them out.
    """
    for directory in USER_CONFIG_DIRS:
        data_files.write(f"{directory}/jupyter_server_config.py", HOSTILE_PY)
        data_files.write(f"{directory}/jupyter_server_config.json", HOSTILE_JSON)
        data_files.write(f"{directory}/labconfig/page_config.json", HOSTILE_PAGE)

    data_files.start_server(8899)
    assert data_files.get("/files/secret.csv", port=8899)["status"] == 404
    assert data_files.get("/view/secret.csv", port=8899)["status"] == 403
    assert data_files.get("/api/terminals", port=8899)["status"] == 404
    page = data_files.probe("page_config", port=8899)["config"]
    assert set(LOCKED_PLUGINS) <= set(page["disabledExtensions"])

    data_files.start_server(8898, env={"JUPYTER_CONFIG_PATH": "",
                                       "JUPYTER_CONFIG_DIR": f"{HOME}/.jupyter",
                                       "JUPYTER_RUNTIME_DIR": "/tmp/control-runtime"})
    control = data_files.get("/files/secret.csv", port=8898)
    assert control["status"] == 200
    assert MARKER in control["body"]
    control_page = data_files.probe("page_config", port=8898)["config"]
    assert LOCKED_PLUGINS[0] not in control_page["disabledExtensions"]
