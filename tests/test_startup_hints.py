"""Start-up errors for the optional env families point at the README's fix: the --import that registers
an id, the extra that installs a physics engine, the Debian package a headless GL backend needs."""

import ctypes.util

import pytest


def start_up_error(spawn, args: list[str]) -> str:
    """The one line a runserver_gym that cannot start ends with."""
    server = spawn(args, wait=False)
    assert server.proc.wait(timeout=90) != 0, server.log()
    assert "Traceback" not in server.log(), server.log()
    return [line for line in server.log().splitlines() if line.strip()][-1]


@pytest.mark.parametrize("env_id, module", [("ALE/Pong-v5", "ale_py"), ("MiniGrid-Empty-5x5-v0", "minigrid")])
def test_an_id_that_a_module_registers_says_which_module_to_import(spawn, env_id, module):
    line = start_up_error(spawn, ["--env", env_id])
    assert f"--env {env_id}: {env_id} is not registered: pass --import {module}" in line, line


def test_a_missing_box2d_names_the_box2d_extra(spawn):
    line = start_up_error(spawn, ["--import", "tests.startup_toys", "--env", "NeedsBox2DToy-v0"])
    assert 'box2d is not installed: pip install -e ".[box2d]"' in line, line
    assert "swig" not in line, "the box2d extra installs a wheel: no swig step"


def test_mujoco_gl_osmesa_without_the_library_names_the_debian_package(spawn, monkeypatch):
    if ctypes.util.find_library("OSMesa"):
        pytest.skip("the OSMesa library is installed here")
    monkeypatch.setenv("MUJOCO_GL", "osmesa")  # the spawned server inherits it
    line = start_up_error(spawn, ["--import", "tests.startup_toys", "--env", "NeedsOSMesaToy-v0"])
    assert "MUJOCO_GL=osmesa needs the OSMesa library" in line and "apt-get install libosmesa6" in line, line


def test_a_missing_box2d_is_not_blamed_on_the_gl_library(spawn, monkeypatch):
    monkeypatch.setenv("MUJOCO_GL", "osmesa")
    line = start_up_error(spawn, ["--import", "tests.startup_toys", "--env", "NeedsBox2DToy-v0"])
    assert 'pip install -e ".[box2d]"' in line and "OSMesa" not in line, line
