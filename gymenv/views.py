"""The latest frame of an instance as a PNG, and the error pages every route falls back to."""

import base64

from django.http import HttpResponse

from gymsite.api import REMEDIES, status_of
from gymsite.errors import GymsiteError
from gymsite.responses import error_response


async def frame(request, instance_id: str):
    """The instance's current frame as a PNG (rgb_array instances with an episode in progress)."""
    try:
        inst = request.engine.get(instance_id)
        frame = await inst.call(inst.op_render, "rgb_array")
    except GymsiteError as err:
        return error_response(err.worded(REMEDIES), err.code, status_of(err))
    return HttpResponse(base64.b64decode(frame.render), content_type="image/png",
                        headers={"Cache-Control": "no-store"})


def not_found(request, exception=None):
    return error_response(f"no route {request.path[:100]!r}; see /docs for the API", "not_found", 404)


def server_error(request):
    """Any unhandled exception, REST or page (Ninja re-raises what no handler maps): the traceback
    goes to the log, the client gets the one error shape."""
    return error_response("internal server error: the server log has the details", "internal_error", 500)
