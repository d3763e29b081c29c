"""Small pure parts of the console: message catalogs, language choice, cookies, names, types."""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

import pyarrow as pa
import pytest

from hub.console import cookies, i18n
from hub.console.config import ConfigError, load_console_config
from hub.console.tables import refine
from hub.console.volumes import work_volume_name

TEMPLATES = Path(__file__).resolve().parents[2] / "hub" / "console" / "templates"


def test_both_languages_have_the_same_messages() -> None:
    zh = {k for k in i18n.ZH if not k.startswith(i18n.ENGLISH_ONLY_PREFIXES)}
    en = {k for k in i18n.EN if not k.startswith(i18n.ENGLISH_ONLY_PREFIXES)}
    assert zh ^ en == set()


def test_every_message_the_templates_use_exists() -> None:
    used: set[str] = set()
    prefixes: set[str] = set()
    for template in TEMPLATES.glob("*.html"):
        text = template.read_text(encoding="utf-8")
        used |= set(re.findall(r"\bt\('([a-z_.0-9]+)'[,)]", text))
        prefixes |= set(re.findall(r"\bt\('([a-z_.]+\.)' \+", text))
    assert used and prefixes
    missing = sorted(k for k in used if k not in i18n.ZH or k not in i18n.EN)
    assert missing == []
    for prefix in prefixes:
        assert any(k.startswith(prefix) for k in i18n.ZH), prefix


def test_language_choice() -> None:
    assert i18n.choose("en", "zh", "zh-CN") == "en"
    assert i18n.choose(None, "en", "zh-CN") == "en"
    assert i18n.choose("xx", None, "en-US,en;q=0.9") == "en"
    assert i18n.choose(None, None, "fr-FR") == "zh"
    t = i18n.Translator("en")
    assert t("upload.received", received="5", expected="10", percent=50) == \
        "Received 5 of 10 bytes (50%)"
    assert t("no.such.key") == "no.such.key"


def test_signed_cookies_refuse_tampering() -> None:
    key = cookies.derive_key("secret-token-0123456789", "cookies")
    value = cookies.sign(key, "a", "hub-token")
    assert cookies.unsign(key, "a", value) == "hub-token"
    assert cookies.unsign(key, "b", value) is None  # bound to the cookie's name
    assert cookies.unsign(key, "a", value[:-2] + "xx") is None
    assert cookies.unsign(cookies.derive_key("other-token-0123456789", "cookies"), "a",
                          value) is None
    token = cookies.csrf_token(key, "session")
    assert cookies.csrf_ok(key, "session", token)
    assert not cookies.csrf_ok(key, "another session", token)
    assert not cookies.csrf_ok(key, "session", None)


def test_volume_names_follow_the_spawner(tmp_path: Path) -> None:
    """The name the console destroys is the one the spawner's config mounts."""
    from traitlets.config import Config

    from hub.jupyterhub_config import hub_options
    from hub.spawner import ShuyuSpawner, configure_spawner

    c = Config()
    configure_spawner(c, hub_options({"SHUYU_DATA_DIR": str(tmp_path)}),
                      env={"SHUYU_SANDBOX_PREFIX": "shuyu-x"})
    template = next(iter(c.ShuyuSpawner.volumes))
    for user in ("alice", "zhang.wei", "li-na@example"):
        spawner = SimpleNamespace(escaped_name=ShuyuSpawner._escape(user))
        assert template.format(username=spawner.escaped_name) == work_volume_name("shuyu-x", user)


@pytest.mark.parametrize("values,name,expected", [
    (["1", "22", None], "count", pa.int64()),
    (["15809293505", "13900000000"], "contact", pa.string()),  # mobile numbers stay text
    (["0871", "0872"], "area", pa.string()),  # leading zeros stay
    (["530102", "530103"], "district_code", pa.string()),  # named codes stay text
    (["12.50", "3.10"], "amount", pa.decimal128(18, 2)),
    (["2025-01-31", "2025-02-01"], "day", pa.date32()),
    (["2025-01-31 08:00:00"], "at", pa.timestamp("s")),
    (["2025-02-30"], "day", pa.string()),  # not a real date
    (["true", "False"], "flag", pa.bool_()),
    (["11010519491231002X"], "who", pa.string()),
])
def test_csv_column_types(values: list, name: str, expected: pa.DataType) -> None:
    assert refine(pa.chunked_array([pa.array(values, pa.string())]), name).type == expected


def test_config_refuses_a_missing_hub(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("JUPYTERHUB_API_URL", "JUPYTERHUB_API_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(ConfigError, match="hub_api_url is not set"):
        load_console_config()
    with pytest.raises(ConfigError, match="too short"):
        load_console_config(hub_api_url="http://127.0.0.1:8081/hub/api", api_token="x")
