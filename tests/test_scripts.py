"""The script table of dispatcher/scripts.py against the Lua: every script is listed, each names the libraries
it calls (no more: a script carries no code it never runs), and every script Redis is sent compiles."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from dispatcher import scripts

LUA = Path(scripts.__file__).with_name("lua")


def _code(path: Path) -> str:
    """The Lua without its comments, where a library's name in a sentence is no call."""
    return re.sub(r"--[^\n]*", "", path.read_text())


def _defined(library: str) -> set[str]:
    return set(re.findall(r"^local (?:function )?(\w+)", _code(LUA / "lib" / f"{library}.lua"), re.MULTILINE))


def _called(code: str) -> set[str]:
    """The libraries whose definitions `code` uses."""
    return {library for library in scripts.LIBRARIES if any(re.search(rf"\b{n}\b", code) for n in _defined(library))}


def test_every_script_and_library_is_listed():
    assert {p.stem for p in LUA.glob("*.lua")} == set(scripts.SCRIPTS)
    assert {p.stem for p in (LUA / "lib").glob("*.lua")} == set(scripts.LIBRARIES)


def test_a_library_comes_after_those_it_calls():
    order = list(scripts.LIBRARIES)
    for library, calls in scripts.LIBRARIES.items():
        assert all(order.index(called) < order.index(library) for called in calls), library


@pytest.mark.parametrize("library", scripts.LIBRARIES)
def test_a_library_names_what_it_calls(library):
    code = _code(LUA / "lib" / f"{library}.lua")
    assert _called(code) - {library} == set(scripts.LIBRARIES[library])


@pytest.mark.parametrize("name", scripts.SCRIPTS)
def test_a_script_names_what_it_calls(name):
    assert _called(_code(LUA / f"{name}.lua")) == set(scripts.SCRIPTS[name])


def test_no_two_libraries_define_one_name():
    seen: dict[str, str] = {}
    for library in scripts.LIBRARIES:
        for name in _defined(library):
            assert name not in seen, f"{name} is defined by {seen[name]} and {library}"
            seen[name] = library


@pytest.mark.parametrize("name", scripts.SCRIPTS)
def test_every_script_compiles(redis_client, name):
    assert redis_client.script_load(scripts.source(name, 86400))
