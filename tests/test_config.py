"""Configuration discovery and checks."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pfsync.config import DEFAULT_API_URL, check_api_url, load_config
from pfsync.errors import ConfigError, ConfigInvalid


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_defaults_of_an_empty_file(tmp_path: Path) -> None:
    _write(tmp_path / "pfsync.yaml", "")
    config = load_config(cwd=tmp_path, environ={})
    assert (config.path, config.root, config.business) == (
        tmp_path / "pfsync.yaml",
        tmp_path,
        None,
    )
    assert config.api_url == DEFAULT_API_URL
    assert config.manifests == ("triggers/**/*.yaml",)
    assert config.lockfile == tmp_path / "pfsync.lock"
    assert config.journal == tmp_path / "pfsync.lock.journal"


def test_no_file_is_an_error_saying_where_it_looked(tmp_path: Path) -> None:
    # Was: defaults, so an empty plan in the wrong directory looked like success in CI.
    with pytest.raises(ConfigError) as caught:
        load_config(cwd=tmp_path, environ={})
    assert str(caught.value) == (
        f"no pfsync.yaml found in {tmp_path} or any directory above it. Run pfsync in the "
        "repository that holds it, point to it with -C DIR or --config PATH, or create one "
        "with `pfsync init`"
    )


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
    # -C DIR without a pfsync.yaml there: an error, not a search upwards, not defaults.
    with pytest.raises(ConfigError) as caught:
        load_config(None, "empty", cwd=tmp_path, environ={})
    assert str(caught.value).startswith(f"no pfsync.yaml found in {tmp_path / 'empty'} (given ")
    with pytest.raises(ConfigError) as missing:
        load_config(None, "no/such/dir", cwd=tmp_path, environ={})
    assert str(missing.value) == "-C no/such/dir: no such directory"


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


# Issue #12: a URL the HTTP client cannot send to was accepted, then every create became
# "uncertain: unexpected error: InvalidURL" although nothing was sent.
@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://localhost:80a", "has an invalid port '80a': a port is a number from 1 to 65535"),
        ("http://127.0.0.1:99999", "invalid port '99999'"),
        ("http://127.0.0.1:0", "invalid port '0'"),
        ("http://127.0.0.1:-1", "invalid port '-1'"),
        ("http://127.0.0.1:+80", "invalid port '\\+80'"),
        ("http://127.0.0.1:\u0668\u0660", "invalid port"),  # Arabic-Indic digits
        ("http://127.0.0.1:80:81", "invalid port '80:81'"),
        ("http://[::1]x:80", "invalid host"),
        ("http://[::1]:8a", "invalid port '8a'"),
        ("https://[zz]", "not a valid URL"),
        ("https://[::1", "not a valid URL"),
        ("https://exa_mple..com", "invalid host 'exa_mple..com'"),
        ("https://.example.com", "invalid host"),
        ("https://ex<ample.com", "invalid host"),
        ("https://ex%41mple.com", "invalid host"),
        ("https://ex\\ample.com", "invalid host"),
        ("https://exämple.com", "invalid host 'exämple.com'.*xn--"),
        ("https://" + "a" * 64 + ".com", "invalid host"),
        ("https://999.1.1.1", "invalid host '999.1.1.1'"),
        ("http://local host:8080", "contains a space or control character"),
        ("https://api.example.com/v1 ", "contains a space or control character"),
        ("https://api.exa\nmple.com", "contains a space or control character"),
        ("https://api.example.com\t", "contains a space or control character"),
        ("https://api.example.com/\x1b[31m", "contains a space or control character"),
        ("https://api.example\u202e.com", "contains a space or control character"),
    ],
)
def test_urls_the_client_cannot_send_to_are_refused(url: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        check_api_url(url)
    assert str(info.value).startswith(("the API URL ", "refusing"))
    assert str(info.value).isprintable()  # control characters are never shown as they are


def test_a_bad_port_next_to_credentials_never_shows_them() -> None:
    for url in ("https://user:s3cr3t-pw@api.example.com:80a", "https://user:s3cr3t-pw@h:99999"):
        with pytest.raises(ConfigError) as info:
            check_api_url(url)
        assert "s3cr3t-pw" not in str(info.value) and "contains a user name" in str(info.value)
    with pytest.raises(ConfigError) as info:
        check_api_url("https://user:s3cr3t\n-pw@api.example.com")
    assert "s3cr3t" not in str(info.value)


@pytest.mark.parametrize(
    "url",
    [
        "https://api.example.com:443/v1",
        "https://api.example.com:/v1",
        "https://api.example.com./v1",
        "https://API.Example.COM",
        "https://my_host.internal:8443",
        "https://xn--exmple-cua.com",
        "https://10.0.0.1:65535",
        "http://127.0.0.1:00080",
        "http://[::1]",
        "https://[2001:db8::1]:8443/api",
    ],
)
def test_more_acceptable_api_urls(url: str) -> None:
    assert check_api_url(url) == url
    httpx.URL(url)  # the client can send to it


_URL_PIECES = st.sampled_from(
    ["http://", "https://", "localhost", "127.0.0.1", "[::1]", "api.example.com", "a_b", "x",
     ":", ":8080", ":80a", ":0", ":65536", "/", "/v1", ".", "..", "-", "[", "]", "%41", "ä",
     "999", "1.2.3", "@", "?q", "#f", " ", "\\", "\t", "\x00", "\u202e", "xn--"]
)  # fmt: skip


@settings(max_examples=500, deadline=None)
@given(st.lists(_URL_PIECES, min_size=1, max_size=8).map("".join))
def test_every_accepted_url_is_one_the_client_can_send_to(url: str) -> None:
    try:
        accepted = check_api_url(url)
    except ConfigError as exc:
        assert "\n" not in str(exc) and "\x00" not in str(exc)
        return
    parsed = httpx.URL(accepted)  # raises InvalidURL for what it cannot send
    assert parsed.scheme in ("http", "https") and parsed.host
    assert parsed.port is None or 1 <= parsed.port <= 65535
