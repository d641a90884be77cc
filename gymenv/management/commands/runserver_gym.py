"""`manage.py runserver_gym`: serve REST, MCP, the admin and the ledger for one or more envs."""

from django.core.management.base import BaseCommand, CommandError

from gymsite import serving

# Flags left unset fall back to the environment's settings (GYMSITE_*), then to ServerConfig's defaults.
UNSET = None


class Command(BaseCommand):
    help = "Serve Gymnasium environments over REST and MCP (at /mcp) on one port, with a ledger of every step."
    requires_system_checks: list[str] = []  # checked in handle(), once the configuration is known to be sound

    def add_arguments(self, parser):
        parser.add_argument("--env", required=True, metavar="ID",
                            help="Gymnasium id of the default instance (module:EnvId imports module first)")
        parser.add_argument("--import", dest="imports", action="append", default=UNSET, metavar="MODULE",
                            help="import a package that registers envs (ale_py, minigrid, your own); repeatable")
        parser.add_argument("--env-kwargs", default=UNSET, metavar="JSON", help="keyword arguments for gymnasium.make")
        parser.add_argument("--render-mode", default=UNSET, metavar="MODE",
                            help="render mode (default: rgb_array if supported, else ansi, else none)")
        parser.add_argument("--host", default=UNSET, help="bind address (default 127.0.0.1)")
        parser.add_argument("--port", type=int, default=UNSET, help="port (default 8000)")
        parser.add_argument("--allow-env", action="append", default=UNSET, metavar="ID",
                            help="a further env id clients may open as instances; repeatable")
        parser.add_argument("--allow-env-kwargs", nargs="?", const="", default=UNSET, metavar="KEY,...",
                            help="let clients pass env_kwargs (plain JSON naming no file or module) when "
                                 "opening instances; the keys listed may name files or modules too")
        parser.add_argument("--num-episodes", type=int, default=UNSET, metavar="N",
                            help="episodes per run; 0: no limit (10)")
        parser.add_argument("--max-steps-per-episode", type=int, default=UNSET, metavar="N",
                            help="step limit per episode, enforced by the run manager (1000)")
        parser.add_argument("--no-run-manager", action="store_false", dest="run_manager", default=UNSET,
                            help="no run tracking, nothing recorded")
        parser.add_argument("--token", default=UNSET,
                            help="require 'Authorization: Bearer TOKEN' everywhere but /health (env: GYM_API_TOKEN)")
        parser.add_argument("--max-instances", type=int, default=UNSET, metavar="N", help="live instances at once (64)")
        parser.add_argument("--evict-idle", action="store_true", default=UNSET,
                            help="at --max-instances, close the least recently used idle instance instead of 429")
        parser.add_argument("--idle-timeout", type=float, default=UNSET, metavar="SECONDS",
                            help="close client instances unused this long (3600)")
        parser.add_argument("--insecure", action="store_true", default=UNSET,
                            help="allow a non-loopback bind without a token")
        parser.add_argument("--success-threshold", type=float, default=UNSET, metavar="X",
                            help="episode return that counts as success (default: the spec's reward_threshold)")
        parser.add_argument("--max-batch", type=int, default=UNSET, metavar="K",
                            help="actions in one batched step (1024)")
        parser.add_argument("--max-num-envs", type=int, default=UNSET, metavar="N",
                            help="sub-envs of one vector instance (256)")
        parser.add_argument("--backend", choices=serving.BACKENDS, default=UNSET,
                            help="where instances live: local (this process) or ray (Ray actors shared by every "
                                 "gymsite process on the cluster); default local")
        parser.add_argument("--ray-address", default=UNSET, metavar="ADDR",
                            help="the Ray cluster to join with --backend ray (host:port, or auto; default: "
                                 "RAY_ADDRESS, else a private local Ray)")

    def handle(self, *args, **opts):
        try:
            config = self.config_from(opts)
            config.check()
            self.check(display_num_errors=False)
            serving.run(config, say=self.stdout.write)
        except serving.ConfigError as err:
            raise CommandError(str(err)) from None

    @staticmethod
    def config_from(opts: dict) -> serving.ServerConfig:
        """The environment's settings, overridden by the flags given."""
        given = {
            "env_id": opts["env"], "imports": opts["imports"], "render_mode": opts["render_mode"],
            "host": opts["host"], "port": opts["port"], "allow_env": opts["allow_env"],
            "allow_env_kwargs": None if opts["allow_env_kwargs"] is None else True,
            "env_kwargs_keys": None if not opts["allow_env_kwargs"] else serving.items(opts["allow_env_kwargs"]),
            "evict_idle": opts["evict_idle"], "num_episodes": opts["num_episodes"],
            "max_steps_per_episode": opts["max_steps_per_episode"], "run_manager": opts["run_manager"],
            "token": opts["token"], "max_instances": opts["max_instances"], "idle_timeout": opts["idle_timeout"],
            "insecure": opts["insecure"], "success_threshold": opts["success_threshold"],
            "max_batch": opts["max_batch"], "max_num_envs": opts["max_num_envs"],
            "backend": opts["backend"], "ray_address": opts["ray_address"],
            "env_kwargs": None if opts["env_kwargs"] is None else serving.parse_env_kwargs(opts["env_kwargs"]),
        }
        for name in ("imports", "allow_env"):
            if given[name] is not None:
                given[name] = tuple(given[name])
        return serving.ServerConfig(**{**serving.environ_settings(), **{k: v for k, v in given.items()
                                                                        if v is not UNSET}})
