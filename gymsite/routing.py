"""REST routing shared by the apps' routers: each instance route exists for `default` and per instance."""

import inspect
from collections.abc import Callable

from ninja import Router

from gymenv.engine import DEFAULT_INSTANCE


def for_default_and_each_instance(router: Router, method: str, path: str, *, response, errors: dict, summary: str,
                                  instance_path: str | None = None):
    """Registers `view(request, instance_id, ...)` at `path` (the default instance) and at its
    `/envs/{instance_id}` twin, so the two routes can never drift apart. Sync and async views alike."""

    def decorator(view: Callable) -> Callable:
        if inspect.iscoroutinefunction(view):
            async def default_view(request, **kwargs):
                return await view(request, DEFAULT_INSTANCE, **kwargs)
        else:
            def default_view(request, **kwargs):
                return view(request, DEFAULT_INSTANCE, **kwargs)

        signature = inspect.signature(view)
        # inspect.signature (so Ninja) reads __signature__; typeshed declares no such attribute on functions.
        default_view.__signature__ = signature.replace(  # type: ignore[attr-defined]
            parameters=[p for p in signature.parameters.values() if p.name != "instance_id"])
        default_view.__name__, default_view.__doc__ = view.__name__, view.__doc__
        responses = {200: response, **errors}
        router.add_api_operation(path, [method], default_view, response=responses, summary=summary,
                                 operation_id=view.__name__)
        router.add_api_operation(instance_path or f"/envs/{{instance_id}}{path}", [method], view,
                                 response=responses, summary=f"{summary} (one instance)",
                                 operation_id=f"{view.__name__}_instance")
        return view

    return decorator
