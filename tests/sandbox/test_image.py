"""The sandbox image as built: who runs in it, what is installed, what can be written.

Each test looks inside a real container of the image started with the hub's hardening flags
(``idle_sandbox``), or inspects the image itself.
"""

from __future__ import annotations

import json
import shutil
import uuid

import pytest

from sandbox_image.build import IMAGE, SRC, ensure_image
from sandbox_image.builder import dockercli
from sandbox_image.builder.base import BASE_REF
from sandbox_image.builder.context import HASH_LABEL, context_hash
from tests.sandbox.conftest import HARDENED, HOME, WORK, docker, start_container, stop_container

pytestmark = [pytest.mark.docker, pytest.mark.timeout(1800)]

# Root-owned places the analyst must not change: the environment and every config dir.
PROTECTED = (
    "/opt/shuyu/venv",
    "/opt/shuyu/venv/bin",
    "/opt/shuyu/venv/lib/python3.11/site-packages",
    "/opt/shuyu/venv/lib/python3.11/site-packages/jupyter_server",
    "/opt/shuyu/venv/etc/jupyter",
    "/opt/shuyu/venv/etc/jupyter/jupyter_server_config.d",
    "/opt/shuyu/venv/share/jupyter/lab",
    "/opt/shuyu/venv/share/jupyter/labextensions",
    "/opt/shuyu/venv/share/jupyter/kernels/python3",
    "/opt/shuyu/lib/shuyu_sandbox",
    "/etc/shuyu/jupyter",
    "/etc/shuyu/jupyter/labconfig",
    "/etc/shuyu/jupyter-user",
    "/opt/shuyu/share/jupyter-user",
    "/usr/local/etc",
    "/etc",
)

WRITE_ATTEMPT = """
import errno, json, os, sys
results = {}
for directory in sys.argv[1:]:
    target = os.path.join(directory, "analyst-was-here")
    try:
        with open(target, "w") as handle:
            handle.write("x")
    except OSError as exc:
        results[directory] = {"written": False, "errno": errno.errorcode.get(exc.errno)}
    else:
        results[directory] = {"written": True, "errno": None}
print(json.dumps(results))
"""


def test_image_is_reused_while_its_inputs_are_unchanged(sandbox_image):
    base_id = dockercli.inspect_image(BASE_REF)["Id"]
    assert dockercli.image_label(IMAGE, HASH_LABEL) == context_hash(SRC, BASE_REF, base_id)
    again = ensure_image()
    assert again.reused is True
    assert again.image_id == sandbox_image.image_id


def test_a_changed_input_is_rebuilt_then_reused(sandbox_image, tmp_path):
    """A copy of sandbox_image/ with one client line more builds a new image beside the real
    one, carrying the edit; asked again, the builder reuses it."""
    src = tmp_path / "sandbox_image"
    shutil.copytree(SRC, src, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    init = src / "client" / "shuyu" / "__init__.py"
    edit = f"\nREBUILD_PROBE = {uuid.uuid4().hex!r}\n"
    init.write_text(init.read_text() + edit)
    repository = f"shuyu-sandbox-test-{uuid.uuid4().hex[:8]}"
    version = (src / "VERSION").read_text().strip()
    try:
        first = ensure_image(src=src, repository=repository)
        second = ensure_image(src=src, repository=repository)
        carried = docker("run", "--rm", *HARDENED, first.ref, "python", "-c",
                         "import shuyu; print(shuyu.REBUILD_PROBE)").stdout.strip()
    finally:
        for ref in (f"{repository}:{version}", f"{repository}:latest"):
            docker("rmi", ref, check=False)
    assert first.reused is False
    assert first.context_hash != sandbox_image.context_hash
    assert first.image_id != sandbox_image.image_id
    assert (second.reused, second.image_id) == (True, first.image_id)
    assert repr(carried) in edit


def test_image_runs_as_the_analyst_not_root(sandbox_image, idle_sandbox):
    config = dockercli.inspect_image(sandbox_image.ref)["Config"]
    assert config["User"] == "1000:1000"
    identity = idle_sandbox.run("id").stdout
    assert identity.startswith("uid=1000(analyst) gid=1000(analyst)"), identity
    ids = idle_sandbox.python("import os; print(os.geteuid(), os.getegid())").split()
    assert ids == ["1000", "1000"]


def test_analyst_has_no_capabilities_and_cannot_gain_privileges(idle_sandbox):
    status = idle_sandbox.run("cat", "/proc/self/status").stdout
    fields = dict(line.split(":\t", 1) for line in status.splitlines() if ":\t" in line)
    for cap in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
        assert int(fields[cap].strip(), 16) == 0, f"{cap} = {fields[cap].strip()}"
    assert fields["NoNewPrivs"].strip() == "1"
    setuid = idle_sandbox.run("find", "/", "-xdev", "-type", "f", "-perm", "/6000")
    assert setuid.stdout.strip() == "", f"setuid/setgid programs left: {setuid.stdout}"


@pytest.mark.parametrize("read_only_root", [True, False], ids=["read-only-root", "writable-root"])
def test_environment_and_config_dirs_are_not_writable(sandbox_image, read_only_root):
    """Root owns them; even without --read-only the analyst gets EACCES, with it EROFS."""
    flags = HARDENED if read_only_root else tuple(f for f in HARDENED if f != "--read-only")
    sandbox = start_container(sandbox_image.ref, ["sleep", "infinity"], flags=flags)
    try:
        results = json.loads(sandbox.run("python", "-c", WRITE_ATTEMPT, *PROTECTED).stdout)
        owners = sandbox.run("stat", "-c", "%n %u %a", *PROTECTED).stdout.splitlines()
    finally:
        stop_container(sandbox)
    expected = "EROFS" if read_only_root else "EACCES"
    for directory in PROTECTED:
        assert results[directory] == {"written": False, "errno": expected}, directory
    for line in owners:
        name, uid, mode = line.split()
        assert uid == "0", f"{name} is owned by uid {uid}"
        assert int(mode, 8) & 0o022 == 0, f"{name} is group/other writable ({mode})"


def test_nothing_under_the_environment_is_writable_or_owned_by_the_analyst(idle_sandbox):
    found = idle_sandbox.run(
        "find", "/opt/shuyu", "/etc/shuyu", "(", "-user", "analyst", "-o", "-writable", ")",
        "-print",
    )
    assert found.returncode == 0, found.stderr
    assert found.stdout.strip() == ""


def test_home_and_tmp_are_the_only_writable_places(idle_sandbox):
    results = json.loads(
        idle_sandbox.run("python", "-c", WRITE_ATTEMPT, WORK, HOME, "/tmp", "/", "/var/tmp",
                         "/opt", "/usr/local/bin").stdout
    )
    assert {d for d, r in results.items() if r["written"]} == {WORK, HOME, "/tmp"}


def test_pinned_packages_and_the_client_are_installed(idle_sandbox):
    versions = json.loads(idle_sandbox.python(
        "import json, importlib.metadata as m; print(json.dumps({n: m.version(n) for n in "
        "['jupyterhub', 'jupyterlab', 'polars', 'duckdb', 'pandas', 'pyarrow', 'matplotlib', "
        "'httpx', 'rich', 'shuyu-client']}))"
    ))
    assert versions["jupyterhub"] == "6.1.1"
    assert versions["polars"] == "1.36.1"
    lock = (SRC / "requirements.lock").read_text()
    for name in ("jupyterlab", "duckdb", "pandas", "pyarrow", "matplotlib", "httpx", "rich"):
        assert f"\n{name}=={versions[name]} " in lock, f"{name} {versions[name]} is not locked"
    client = idle_sandbox.python("import shuyu; print(shuyu.__version__)").strip()
    assert client == versions["shuyu-client"]


@pytest.mark.parametrize("module", ["terminado", "jupyter_server_terminals",
                                    "jupyter_server_proxy", "pip", "setuptools"])
def test_no_terminal_proxy_or_installer_in_the_environment(idle_sandbox, module):
    proc = idle_sandbox.run("python", "-c", f"import {module}")
    assert proc.returncode != 0
    assert "ModuleNotFoundError" in proc.stderr


def test_jupyter_config_path_is_root_owned_and_leaves_out_the_home(idle_sandbox):
    paths = json.loads(idle_sandbox.run("jupyter", "--paths", "--json").stdout)
    assert paths["config"][0] == "/etc/shuyu/jupyter"
    for kind in ("config", "data"):
        assert not [p for p in paths[kind] if p.startswith(HOME)], paths[kind]
    user_site = idle_sandbox.python("import site; print(site.ENABLE_USER_SITE)").strip()
    assert user_site == "False"


def test_welcome_notebook_shows_the_whole_flow(idle_sandbox):
    raw = idle_sandbox.run("cat", f"{WORK}/Welcome.ipynb").stdout
    idle_sandbox.python(
        "import nbformat; nbformat.validate(nbformat.read("
        f"'{WORK}/Welcome.ipynb', as_version=4))"
    )
    code = "".join(
        "".join(cell["source"]) for cell in json.loads(raw)["cells"] if cell["cell_type"] == "code"
    )
    steps = ["shuyu.datasets()", "shuyu.describe(name)", "shuyu.query(",
             "shuyu.release.submit(", "title=", "purpose=", "context=", "shuyu.release.status()"]
    positions = [code.index(step) for step in steps]
    assert positions == sorted(positions), "the notebook's steps are out of order"


def test_entry_point_refuses_to_start_without_a_writable_home(sandbox_image):
    flags = list(HARDENED)
    home_tmpfs = flags.index(next(f for f in flags if f.startswith(f"{HOME}:")))
    del flags[home_tmpfs - 1:home_tmpfs + 1]  # "--tmpfs", "/home/analyst:..."
    assert "--read-only" in flags and not any(f.startswith(HOME) for f in flags)
    proc = docker("run", "--rm", *flags, sandbox_image.ref, "true", check=False)
    assert proc.returncode == 64
    assert f"{HOME} is not writable" in proc.stderr
