"""The composition root: a server's whole configuration (every default written here, once) and the
functions that build and run it. `runserver_gym`, `gymsite.asgi:application`, GymService,
GymHTTPServer, the benchmarks and the test fixtures all assemble a server through this module.
"""

from __future__ import annotations

import contextlib
import dataclasses
import ipaddress
import json
import os
import socket
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from starlette.types import ASGIApp

    from gymenv.engine import Engine, EngineConfig

DEFAULT_SETTINGS = "gymsite.settings"
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
WILDCARD_HOSTS = ("0.0.0.0", "::", "")
BACKENDS = ("local", "ray")
# The front's environment that its Ray actors take on: the same database and Django settings.
ACTOR_ENVIRON = ("DATABASE_URL", "DJANGO_SECRET_KEY", "DJANGO_SETTINGS_MODULE", "MUJOCO_GL", "PYOPENGL_PLATFORM",
                 "SDL_VIDEODRIVER")
ACTOR_ENVIRON_PREFIX = "GYMSITE_"


class ConfigError(Exception):
    """A mistake in the server's configuration, said in one line (the command prints it as is)."""


@dataclass(frozen=True)
class ServerConfig:
    env_id: str
    imports: tuple[str, ...] = ()
    env_kwargs: Mapping[str, Any] = field(default_factory=dict)
    render_mode: str | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    allow_env: tuple[str, ...] = ()
    allow_env_kwargs: bool = False
    env_kwargs_keys: tuple[str, ...] = ()  # with allow_env_kwargs: keys that may name files or modules
    num_episodes: int = 10
    max_steps_per_episode: int = 1000
    run_manager: bool = True
    token: str | None = None
    max_instances: int = 64
    evict_idle: bool = False
    idle_timeout: float = 3600.0
    insecure: bool = False
    success_threshold: float | None = None
    max_env_kwargs_bytes: int = 4096
    # Bound on any wait for an env's thread: a hung env answers env_timeout instead of hanging clients.
    call_timeout: float = 300.0
    max_batch: int = 1024  # actions in one batched step (SPEC 11)
    max_num_envs: int = 256  # sub-envs of one vector instance (SPEC 12)
    # Where instances live (SPEC 16): "local" (this process, each on its own thread) or "ray" (each in
    # a Ray actor, shared by every gymsite process on the cluster); ray_address None: ray.init's choice.
    backend: str = "local"
    ray_address: str | None = None

    def check(self) -> None:
        """Refuse what cannot be served, before anything is imported, bound or made."""
        for name in ("max_steps_per_episode", "max_instances", "max_batch"):
            if getattr(self, name) < 1:
                raise ConfigError(f"--{name.replace('_', '-')} must be at least 1")
        if self.num_episodes < 0:
            raise ConfigError("--num-episodes must be 0 (no limit) or more")
        if self.max_num_envs < 2:
            raise ConfigError("--max-num-envs must be at least 2 (a vector instance has 2 or more sub-envs)")
        if not 0 < self.port < 65536:
            raise ConfigError("--port must be between 1 and 65535")
        if self.idle_timeout <= 0 or self.call_timeout <= 0:
            raise ConfigError("--idle-timeout and the call timeout must be positive numbers of seconds")
        if not isinstance(self.env_kwargs, Mapping):
            raise ConfigError("--env-kwargs must be a JSON object, e.g. '{\"map_name\": \"8x8\"}'")
        if self.env_kwargs_keys and not self.allow_env_kwargs:
            raise ConfigError("env_kwargs keys were listed but client env_kwargs are off: pass --allow-env-kwargs")
        if self.backend not in BACKENDS:
            raise ConfigError(f"--backend must be one of {', '.join(BACKENDS)}, not {self.backend[:40]!r}")
        if self.ray_address is not None and self.backend != "ray":
            raise ConfigError("--ray-address needs --backend ray")
        if not is_loopback(self.host) and not self.token and not self.insecure:
            raise ConfigError(f"refusing to serve on {self.host} without a token: pass --token (or GYM_API_TOKEN), "
                              "or --insecure if this network is trusted")


# -- the environment's settings (gymsite.asgi:application, and the defaults under the command's flags) --

ENVIRON_FIELDS: dict[str, tuple[str, Callable[[str], Any]]] = {
    "GYMSITE_ENV": ("env_id", str),
    "GYMSITE_IMPORT": ("imports", lambda v: items(v)),
    "GYMSITE_ENV_KWARGS": ("env_kwargs", lambda v: parse_env_kwargs(v)),
    "GYMSITE_RENDER_MODE": ("render_mode", str),
    "GYMSITE_ALLOW_ENV": ("allow_env", lambda v: items(v)),
    "GYMSITE_ALLOW_ENV_KWARGS": ("allow_env_kwargs", lambda v: _bool(v)),
    "GYMSITE_ENV_KWARGS_KEYS": ("env_kwargs_keys", lambda v: items(v)),
    "GYMSITE_EVICT_IDLE": ("evict_idle", lambda v: _bool(v)),
    "GYMSITE_NUM_EPISODES": ("num_episodes", int),
    "GYMSITE_MAX_STEPS_PER_EPISODE": ("max_steps_per_episode", int),
    "GYMSITE_RUN_MANAGER": ("run_manager", lambda v: _bool(v)),
    "GYM_API_TOKEN": ("token", str),
    "GYMSITE_MAX_INSTANCES": ("max_instances", int),
    "GYMSITE_IDLE_TIMEOUT": ("idle_timeout", float),
    "GYMSITE_SUCCESS_THRESHOLD": ("success_threshold", float),
    "GYMSITE_MAX_ENV_KWARGS_BYTES": ("max_env_kwargs_bytes", int),
    "GYMSITE_CALL_TIMEOUT": ("call_timeout", float),
    "GYMSITE_MAX_BATCH": ("max_batch", int),
    "GYMSITE_MAX_NUM_ENVS": ("max_num_envs", int),
    "GYMSITE_BACKEND": ("backend", str),
    "GYMSITE_RAY_ADDRESS": ("ray_address", str),
}


def environ_settings(environ: Mapping[str, str] = os.environ) -> dict[str, Any]:
    """The ServerConfig fields the environment sets (empty variables count as unset)."""
    found = {}
    for name, (attr, parse) in ENVIRON_FIELDS.items():
        value = environ.get(name, "")
        if value == "":
            continue
        try:
            found[attr] = parse(value)
        except (ValueError, ConfigError) as exc:
            raise ConfigError(f"{name}={value[:60]!r}: {exc}") from None
    return found


def config_from_environ(environ: Mapping[str, str] = os.environ) -> ServerConfig:
    found = environ_settings(environ)
    if "env_id" not in found:
        raise ConfigError("GYMSITE_ENV is not set: name the default env, e.g. GYMSITE_ENV=CartPole-v1")
    return ServerConfig(**found)


def parse_env_kwargs(text: str) -> dict:
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise ConfigError(f"--env-kwargs is not valid JSON ({exc})") from None
    if not isinstance(value, dict):
        raise ConfigError("--env-kwargs must be a JSON object, e.g. '{\"map_name\": \"8x8\"}'")
    return value


def items(text: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in text.split(",") if item.strip())


def _bool(text: str) -> bool:
    if text.lower() in ("1", "true", "yes", "on"):
        return True
    if text.lower() in ("0", "false", "no", "off"):
        return False
    raise ValueError("expected a boolean (1/0, true/false)")


# -- building ---------------------------------------------------------------------------------------

def setup_django() -> None:
    """Configure Django, unless the host program did."""
    from django.apps import apps

    if not apps.ready:
        import django

        os.environ.setdefault("DJANGO_SETTINGS_MODULE", DEFAULT_SETTINGS)
        django.setup(set_prefix=False)


def ensure_database() -> None:
    """Bring the database's tables up to date (a fresh DATABASE_URL needs no other step)."""
    setup_django()
    from django.core.management import call_command
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(connection)
    if executor.migration_plan(executor.loader.graph.leaf_nodes()):
        call_command("migrate", interactive=False, verbosity=0)
    connection.close()  # this thread serves no requests: hold no connection for it


# Ids that exist only once a module registers them (gymnasium.register_envs), and the extra installing it.
REGISTERING_MODULES = {"ALE/": ("ale_py", "atari"), "MiniGrid-": ("minigrid", "minigrid"),
                       "BabyAI-": ("minigrid", "minigrid")}


def resolve(config: ServerConfig) -> ServerConfig:
    """Import the operator's modules and check that every env id is registered, before anything is
    made; ids come back in gymnasium's form (a `module:EnvId` id has imported its module)."""
    import importlib.util

    import gymnasium as gym

    from gymenv.catalogue import operator_env_id

    extras = dict(REGISTERING_MODULES.values())
    for module in config.imports:
        try:
            __import__(module)
        except ImportError as exc:
            fix = f' (pip install -e ".[{extras[module]}]")' if module in extras else ""
            raise ConfigError(f"--import {module}: {one_line(exc)}{fix}") from None
    resolved = []
    for flag, given in [("--env", config.env_id), *(("--allow-env", a) for a in config.allow_env)]:
        try:
            env_id = operator_env_id(given)
            gym.spec(env_id)
        except ImportError as exc:
            raise ConfigError(f"{flag} {given}: cannot import {exc.name or exc}") from None
        except gym.error.Error as exc:
            hint = next((m for prefix, m in REGISTERING_MODULES.items() if given.startswith(prefix)), None)
            if hint is None or hint[0] in config.imports:
                raise ConfigError(f"{flag} {given}: unknown env id ({one_line(exc)})") from None
            module, extra = hint
            install = "" if importlib.util.find_spec(module) else f' after pip install -e ".[{extra}]"'
            raise ConfigError(f"{flag} {given}: {given} is not registered: pass --import {module}{install}") from None
        resolved.append(env_id)
    # The modules of `module:EnvId` ids join the imports: a Ray actor making the env imports them too.
    modules = tuple(dict.fromkeys(given.split(":", 1)[0] for given in (config.env_id, *config.allow_env)
                                  if ":" in given and given.split(":", 1)[0] not in config.imports))
    return dataclasses.replace(config, env_id=resolved[0], allow_env=tuple(resolved[1:]),
                               imports=(*config.imports, *modules))


def engine_config(config: ServerConfig) -> EngineConfig:
    from gymenv.engine import EngineConfig, RunPolicy

    recorder_factory = run_origins = None
    if config.run_manager:
        from runs.replay import run_origin
        from runs.vector import recorder_for

        recorder_factory, run_origins = recorder_for, run_origin
    return EngineConfig(
        default_env_id=config.env_id, allowed_env_ids=config.allow_env, env_kwargs=dict(config.env_kwargs),
        render_mode=config.render_mode, allow_env_kwargs=config.allow_env_kwargs,
        env_kwargs_keys=frozenset(config.env_kwargs_keys), max_instances=config.max_instances,
        evict_idle=config.evict_idle, idle_timeout=config.idle_timeout,
        max_env_kwargs_bytes=config.max_env_kwargs_bytes, call_timeout=config.call_timeout,
        max_batch=config.max_batch, max_num_envs=config.max_num_envs,
        run=RunPolicy(num_episodes=config.num_episodes, max_steps_per_episode=config.max_steps_per_episode,
                      success_threshold=config.success_threshold),
        recorder_factory=recorder_factory, run_origins=run_origins,
        **({"backend": ray_backend(config)} if config.backend == "ray" else {}))


def ray_backend(config: ServerConfig) -> Any:
    """The Ray backend for `config`: its actors get this process's database and settings, Django's
    set-up and the run manager by name, and lost instances' runs are closed here."""
    try:
        from gymenv.ray_backend import RayBackend, RaySettings
    except ImportError as exc:
        raise ConfigError(f'--backend ray: cannot import {exc.name or "ray"}: pip install -e ".[ray]"') from None
    on_lost = None
    if config.run_manager:
        from django.db import connection

        from runs.services import runs_close_lost

        def on_lost(run_id: str, reason: str) -> bool:
            try:
                return runs_close_lost(run_id=run_id, reason=reason)
            finally:
                connection.close()  # called from a worker thread of the loop's: hold no connection there

    environ = {k: v for k, v in os.environ.items() if k in ACTOR_ENVIRON or k.startswith(ACTOR_ENVIRON_PREFIX)}
    return RayBackend(RaySettings(
        address=config.ray_address, call_timeout=config.call_timeout, environ=environ,
        setup="gymsite.serving:setup_django" if config.run_manager else None,
        recorder="runs.vector:recorder_for" if config.run_manager else None,
        imports=config.imports, on_lost=on_lost))


def build_engine(config: ServerConfig) -> Engine:
    """The started engine: the default instance is open. With the run manager on, the database is
    brought up to date first and runs left open by dead processes are closed."""
    from gymenv.engine import Engine
    from gymenv.engine.describe import catalogue_entry

    if config.run_manager:
        ensure_database()
        from runs.services import runs_interrupt_stale

        runs_interrupt_stale()
    try:
        engine = Engine(engine_config(config))
    except ConnectionError as exc:  # ray.init found no cluster there
        where = config.ray_address or "its default address"
        raise ConfigError(f"--backend ray: cannot join the Ray cluster at {where}: {one_line(exc)}") from None
    with cannot_make("--env", config.env_id):
        engine.start()
    try:
        for env_id in config.allow_env:
            with cannot_make("--allow-env", env_id):
                catalogue_entry(env_id)  # one throwaway make: what clients would hit, found now
    except ConfigError:
        engine.shutdown("failed to start")
        raise
    return engine


# What the optional families' errors name (a module, or gymnasium's own extra), and the extra of ours
# that installs it.
FAMILY_EXTRAS = {"box2d": "box2d", "mujoco": "mujoco", "ale_py": "atari", "ale-py": "atari", "minigrid": "minigrid"}
# MUJOCO_GL's headless backends: the library each loads and the Debian package shipping it. PyOpenGL
# fails on a missing one with "'NoneType' object has no attribute 'glGetError'", which names neither.
GL_LIBRARIES = {"osmesa": ("OSMesa", "libosmesa6"), "egl": ("EGL", "libegl1")}


@contextlib.contextmanager
def cannot_make(flag: str, env_id: str) -> Iterator[None]:
    """gymnasium's errors on making an env (a missing dependency, bad kwargs) as one ConfigError line,
    with the README's fix when it is a missing optional family or GL library."""
    import ctypes.util

    from gymnasium.error import DependencyNotInstalled

    try:
        yield
    except Exception as exc:  # noqa: BLE001 - whatever the env's constructor raises ends start-up in one line
        said = f"{flag} {env_id}: cannot make it"
        family = None
        if isinstance(exc, ImportError | DependencyNotInstalled):
            missing = (exc.name if isinstance(exc, ImportError) else None) or one_line(exc)
            family = next((name for name in FAMILY_EXTRAS if name in missing.lower()), None)
        backend = os.environ.get("MUJOCO_GL", "").strip().lower()
        # Only MuJoCo's failures can be the GL library's: a missing Box2D is a missing Box2D whatever MUJOCO_GL says.
        if (family in (None, "mujoco") and backend in GL_LIBRARIES
                and ctypes.util.find_library(GL_LIBRARIES[backend][0]) is None):
            library, package = GL_LIBRARIES[backend]
            raise ConfigError(f"{said}: MUJOCO_GL={backend} needs the {library} library, which is not installed: "
                              f"apt-get install {package} (see README: optional env families); the error was: "
                              f"{one_line(exc)}") from None
        if family:
            raise ConfigError(f'{said}: {family} is not installed: pip install -e ".[{FAMILY_EXTRAS[family]}]" '
                              "(see README: optional env families)") from None
        if isinstance(exc, ImportError):
            raise ConfigError(f"{said}: missing {exc.name or one_line(exc)}; install it "
                              "(see README: optional env families)") from None
        raise ConfigError(f"{said}: {one_line(exc)}") from None


def allowed_hosts(config: ServerConfig) -> list[str]:
    """The Host names this server answers to: settings.ALLOWED_HOSTS plus the bind address.
    Bound to every interface, the names clients use are unknowable: any (the token guards instead),
    unless the operator listed them (GYMSITE_ALLOWED_HOSTS)."""
    setup_django()
    from django.conf import settings

    hosts = list(settings.ALLOWED_HOSTS)
    if config.host in WILDCARD_HOSTS:
        return hosts if "GYMSITE_ALLOWED_HOSTS" in os.environ else ["*"]
    bind_name = f"[{config.host}]" if ":" in config.host else config.host
    return hosts if bind_name in hosts else [*hosts, bind_name]


def build_app(engine: Engine, config: ServerConfig) -> ASGIApp:
    """The one ASGI app for `engine`: /mcp to MCP, the rest to Django, one lifespan (gymsite/app.py)."""
    setup_django()
    from gymsite.app import create_app

    return create_app(engine=engine, config=config, allowed_hosts=allowed_hosts(config))


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY only on sockets that say so, and
    # without it every answer written as headers-then-body waits ~40 ms for a delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def serve(app: ASGIApp, sock: socket.socket) -> None:
    """Run the ASGI app under uvicorn on an already-bound socket until SIGINT/SIGTERM."""
    import signal
    import threading

    import uvicorn

    config = uvicorn.Config(app, lifespan="on", log_level="warning", access_log=False, timeout_graceful_shutdown=10)
    # uvicorn shuts down gracefully, restores the previous handlers, then re-raises the signal
    # into them: make that re-raise a clean exit instead of a -15 or a KeyboardInterrupt traceback.
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _exit_cleanly)
    try:
        uvicorn.Server(config).run(sockets=[sock])
    except KeyboardInterrupt:
        pass


def run(config: ServerConfig, *, say: Callable[[str], None] = print) -> None:
    """Check, bind, build and serve `config` until stopped: what runserver_gym and GymHTTPServer do.
    Mistakes raise ConfigError before the port is held or an env is made, where that can be told."""
    config.check()
    config = resolve(config)
    sock = bind(config.host, config.port)
    try:
        say("Bringing the database up to date..." if config.run_manager else "Opening the env...")
        engine = build_engine(config)
        app = build_app(engine, config)
    except BaseException:
        sock.close()
        raise
    host = f"[{config.host}]" if ":" in config.host else config.host
    say(f"gymsite: {config.env_id} on http://{host}:{config.port}/ (REST docs /docs, MCP /mcp, admin /admin/)"
        f"{' with a bearer token' if config.token else ''}. Ctrl-C stops it.")
    serve(app, sock)


def is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:300]


def _exit_cleanly(signum, frame) -> None:
    raise SystemExit(0)
