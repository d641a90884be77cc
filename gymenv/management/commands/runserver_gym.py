"""`manage.py runserver_gym`: serve REST, MCP, the admin and the ledger for one or more envs."""

import ipaddress
import json
import os
import socket

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")


class Command(BaseCommand):
    help = "Serve Gymnasium environments over REST and MCP (at /mcp) on one port, with a ledger of every step."
    requires_system_checks = []  # checked in handle(), after the flags have configured settings

    def add_arguments(self, parser):
        parser.add_argument("--env", required=True, metavar="ID",
                            help="Gymnasium id of the default instance (module:EnvId imports module first)")
        parser.add_argument("--import", dest="imports", action="append", default=[], metavar="MODULE",
                            help="import a package that registers envs (ale_py, minigrid, your own); repeatable")
        parser.add_argument("--env-kwargs", default="{}", metavar="JSON", help="keyword arguments for gymnasium.make")
        parser.add_argument("--render-mode", default=None, metavar="MODE",
                            help="render mode (default: rgb_array if supported, else ansi, else none)")
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--allow-env", action="append", default=[], metavar="ID",
                            help="a further env id clients may open as instances; repeatable")
        parser.add_argument("--allow-env-kwargs", action="store_true",
                            help="let clients pass env_kwargs when opening instances")
        parser.add_argument("--num-episodes", type=int, default=10, metavar="N", help="episodes per run")
        parser.add_argument("--max-steps-per-episode", type=int, default=1000, metavar="N",
                            help="step limit per episode, enforced by the run manager")
        parser.add_argument("--no-run-manager", action="store_true", help="no run tracking, nothing recorded")
        parser.add_argument("--token", default=os.environ.get("GYM_API_TOKEN") or None,
                            help="require 'Authorization: Bearer TOKEN' everywhere but /health (env: GYM_API_TOKEN)")
        parser.add_argument("--max-instances", type=int, default=settings.GYMSITE_MAX_INSTANCES, metavar="N")
        parser.add_argument("--idle-timeout", type=float, default=settings.GYMSITE_IDLE_TIMEOUT, metavar="SECONDS",
                            help="close client instances unused this long")
        parser.add_argument("--insecure", action="store_true", help="allow a non-loopback bind without a token")
        parser.add_argument("--success-threshold", type=float, default=None, metavar="X",
                            help="episode return that counts as success (default: the spec's reward_threshold)")

    def handle(self, *args, **opts):
        env_kwargs = self.parse_env_kwargs(opts["env_kwargs"])
        self.check_numbers(opts)
        self.check_exposure(opts["host"], opts["token"], opts["insecure"])
        self.configure(opts["host"], opts["token"])
        self.check(display_num_errors=False)
        env_id, allowed = self.resolve_env_ids(opts["imports"], opts["env"], opts["allow_env"])
        sock = self.bind(opts["host"], opts["port"])
        self.stdout.write("Bringing the database up to date...")
        call_command("migrate", interactive=False, verbosity=0)
        engine = self.start_engine(opts, env_id, allowed, env_kwargs)
        self.serve(engine, sock, opts)

    # -- steps, each testable without handle() ----------------------------------------------------

    @staticmethod
    def parse_env_kwargs(text: str) -> dict:
        try:
            value = json.loads(text)
        except ValueError as exc:
            raise CommandError(f"--env-kwargs is not valid JSON ({exc})") from None
        if not isinstance(value, dict):
            raise CommandError("--env-kwargs must be a JSON object, e.g. '{\"map_name\": \"8x8\"}'")
        return value

    @staticmethod
    def check_numbers(opts: dict) -> None:
        for flag in ("num_episodes", "max_steps_per_episode", "max_instances"):
            if opts[flag] < 1:
                raise CommandError(f"--{flag.replace('_', '-')} must be at least 1")
        if not 0 < opts["port"] < 65536:
            raise CommandError("--port must be between 1 and 65535")

    @staticmethod
    def check_exposure(host: str, token: str | None, insecure: bool) -> None:
        if not is_loopback(host) and not token and not insecure:
            raise CommandError(f"refusing to serve on {host} without a token: pass --token (or GYM_API_TOKEN), "
                               "or --insecure if this network is trusted")

    @staticmethod
    def configure(host: str, token: str | None) -> None:
        settings.GYMSITE_TOKEN = token
        if host in ("0.0.0.0", "::", ""):
            # Bound to every interface: the names clients use are unknowable; the token guards instead.
            if "GYMSITE_ALLOWED_HOSTS" not in os.environ:
                settings.ALLOWED_HOSTS = ["*"]
        elif host not in settings.ALLOWED_HOSTS:
            settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, f"[{host}]" if ":" in host else host]

    @staticmethod
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
            raise CommandError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
        sock.listen(2048)
        sock.set_inheritable(True)
        return sock

    @staticmethod
    def resolve_env_ids(imports: list[str], env: str, allow_env: list[str]) -> tuple[str, tuple[str, ...]]:
        """Imports the operator's modules and checks every id is registered, before anything is made."""
        import gymnasium as gym

        from gymenv.catalogue import operator_env_id

        for module in imports:
            try:
                __import__(module)
            except ImportError as exc:
                raise CommandError(f"--import {module}: {one_line(exc)}") from None
        resolved = []
        for flag, given in [("--env", env), *(("--allow-env", a) for a in allow_env)]:
            try:
                env_id = operator_env_id(given)
                gym.spec(env_id)
            except ImportError as exc:
                raise CommandError(f"{flag} {given}: cannot import {exc.name or exc}") from None
            except gym.error.Error as exc:
                raise CommandError(f"{flag} {given}: unknown env id ({one_line(exc)})") from None
            resolved.append(env_id)
        return resolved[0], tuple(resolved[1:])

    def start_engine(self, opts: dict, env_id: str, allowed: tuple[str, ...], env_kwargs: dict):
        from gymenv.engine import Engine, set_engine
        from gymenv.programmatic import engine_config

        engine = Engine(engine_config(
            env_id, render_mode=opts["render_mode"], env_kwargs=env_kwargs, allow_env=allowed,
            enable_run_manager=not opts["no_run_manager"], num_episodes=opts["num_episodes"],
            max_steps_per_episode=opts["max_steps_per_episode"], success_threshold=opts["success_threshold"],
            allow_env_kwargs=opts["allow_env_kwargs"], max_instances=opts["max_instances"],
            idle_timeout=opts["idle_timeout"], max_env_kwargs_bytes=settings.GYMSITE_MAX_ENV_KWARGS_BYTES))
        try:
            engine.start()
        except ImportError as exc:
            raise CommandError(f"cannot make {env_id}: missing {exc.name or exc}; install it "
                               "(see README: optional env families)") from None
        except Exception as exc:  # noqa: BLE001 - gymnasium's errors (missing dependency, bad kwargs) end here
            raise CommandError(f"cannot make {env_id}: {one_line(exc)}") from None
        set_engine(engine)
        return engine

    def serve(self, engine, sock: socket.socket, opts: dict) -> None:
        from gymenv.programmatic import serve
        from gymsite.asgi import create_app

        app = create_app(engine=engine)
        host = f"[{opts['host']}]" if ":" in opts["host"] else opts["host"]
        self.stdout.write(
            f"gymsite: {engine.config.default_env_id} on http://{host}:{opts['port']}/ "
            f"(REST docs /docs, MCP /mcp, admin /admin/){' with a bearer token' if opts['token'] else ''}. "
            "Ctrl-C stops it.")
        serve(app, sock)


def is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def one_line(exc: Exception) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:300]
