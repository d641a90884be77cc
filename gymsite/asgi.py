"""`gymsite.asgi:application` (settings.ASGI_APPLICATION): the server the environment describes,
for `uvicorn gymsite.asgi:application` and any ASGI server or process manager."""

from __future__ import annotations

import asyncio
import os
from typing import TYPE_CHECKING

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gymsite.settings")

from gymsite import serving

if TYPE_CHECKING:
    from starlette.types import ASGIApp


class EnvironmentApp:
    """Built from GYMSITE_ENV, ... (the README lists them) when the ASGI server starts its lifespan,
    in each worker process."""

    def __init__(self):
        self._app: ASGIApp | None = None

    async def __call__(self, scope, receive, send):
        if self._app is None:
            if scope["type"] != "lifespan":
                raise RuntimeError("gymsite.asgi:application needs an ASGI server that runs the lifespan "
                                   "protocol (uvicorn, hypercorn, daphne)")
            try:
                self._app = await asyncio.to_thread(self._build)
            except Exception as exc:  # noqa: BLE001 - the ASGI server prints it and exits
                await receive()  # lifespan.startup
                await send({"type": "lifespan.startup.failed", "message": f"gymsite: {serving.one_line(exc)}"})
                return
        await self._app(scope, receive, send)

    @staticmethod
    def _build() -> ASGIApp:
        config = serving.resolve(serving.config_from_environ())
        config.check()
        return serving.build_app(serving.build_engine(config), config)


application = EnvironmentApp()
