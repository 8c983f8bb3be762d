"""Configuration discovery and checks (§5)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pfsync.config import DEFAULT_API_URL, ConfigInvalid, check_api_url, load_config
from pfsync.errors import ConfigError


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_defaults_without_a_file(tmp_path: Path) -> None:
    config = load_config(cwd=tmp_path, environ={})
    assert (config.path, config.root, config.business) == (None, tmp_path, None)
    assert config.api_url == DEFAULT_API_URL
    assert config.manifests == ("triggers/**/*.yaml",)
    assert config.lockfile == tmp_path / "pfsync.lock"
    assert config.journal == tmp_path / "pfsync.lock.journal"


def test_nearest_file_at_or_above_cwd(tmp_path: Path) -> None:
    _write(tmp_path / "pfsync.yaml", "business: outer\n")
    _write(tmp_path / "a" / "pfsync.yaml", "business: inner\nlockfile: state/x.lock\n")
    (tmp_path / "a" / "b" / "c").mkdir(parents=True)
    config = load_config(cwd=tmp_path / "a" / "b" / "c", environ={})
    assert config.business == "inner"
    assert config.lockfile == tmp_path / "a" / "state" / "x.lock"


def test_explicit_config_beats_directory_and_search(tmp_path: Path) -> None:
    _write(tmp_path / "pfsync.yaml", "business: here\n")
    other = _write(tmp_path / "elsewhere" / "conf.yaml", "business: there\n")
    assert load_config(str(other), "x", cwd=tmp_path, environ={}).business == "there"


def test_directory_option(tmp_path: Path) -> None:
    _write(tmp_path / "pfsync.yaml", "business: here\n")
    _write(tmp_path / "repo" / "pfsync.yaml", "business: repo\n")
    assert load_config(None, "repo", cwd=tmp_path, environ={}).business == "repo"
    (tmp_path / "empty").mkdir()
    # -C DIR without a pfsync.yaml there: defaults rooted at DIR, not a search upwards.
    config = load_config(None, "empty", cwd=tmp_path, environ={})
    assert (config.business, config.root) == (None, tmp_path / "empty")


def test_search_above_given_paths_when_cwd_has_none(tmp_path: Path) -> None:
    _write(tmp_path / "repo" / "pfsync.yaml", "business: repo\n")
    _write(tmp_path / "repo" / "triggers" / "a.yaml", "")
    (tmp_path / "cwd").mkdir()
    config = load_config(cwd=tmp_path / "cwd", paths=["../repo/triggers/a.yaml"], environ={})
    assert config.business == "repo"


def test_environment_overrides_api_url_only(tmp_path: Path) -> None:
    _write(tmp_path / "pfsync.yaml", "business: b\napi_url: https://a.example/\n")
    assert load_config(cwd=tmp_path, environ={}).api_url == "https://a.example"
    env = {"PFSYNC_API_URL": "http://127.0.0.1:9", "PFSYNC_BUSINESS": "other"}
    config = load_config(cwd=tmp_path, environ=env)
    assert (config.api_url, config.business) == ("http://127.0.0.1:9", "b")


def test_missing_explicit_config(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config("nope.yaml", cwd=tmp_path, environ={})


def test_invalid_config_is_located(tmp_path: Path) -> None:
    _write(tmp_path / "pfsync.yaml", "business: b\nmanifests: triggers\n")
    with pytest.raises(ConfigInvalid) as info:
        load_config(cwd=tmp_path, environ={})
    [problem] = info.value.diagnostics
    assert (problem.file, problem.line, problem.col, problem.path) == (
        "pfsync.yaml",
        2,
        12,
        "$.manifests",
    )


@pytest.mark.parametrize(
    "url",
    [
        "https://api.pocketflows.com",
        "http://127.0.0.1:8787",
        "http://localhost:1",
        "http://[::1]:2",
    ],
)
def test_acceptable_api_urls(url: str) -> None:
    assert check_api_url(url + "/") == url


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://api.pocketflows.com", "refusing plain http://"),
        ("ftp://x", "must start with https://"),
        ("https://", "must start with https://"),
        ("https://x/?a=b", "query or fragment"),
    ],
)
def test_refused_api_urls(url: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        check_api_url(url)


def test_credentials_in_url_are_refused_without_echo() -> None:
    with pytest.raises(ConfigError) as info:
        check_api_url("https://user:s3cr3t-pw@api.pocketflows.com")
    assert "s3cr3t-pw" not in str(info.value)
    assert "user" not in str(info.value).replace("user name", "")
