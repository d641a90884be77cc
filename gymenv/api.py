"""REST operations for env instances: thin adapters that call the engine and send its answer."""

from ninja import Router

from gymenv.schemas import (
    DOOR_ERRORS,
    BatchStepOut,
    CloseOut,
    DeletedOut,
    EnvInfoOut,
    ErrorOut,
    HealthOut,
    InstanceIn,
    InstanceListOut,
    InstanceOut,
    RenderIn,
    RenderOut,
    ResetIn,
    ResetOut,
    SampleOut,
    StepIn,
    StepOut,
    VectorResetOut,
    VectorStepOut,
)
from gymsite import routing
from gymsite.responses import answer

router = Router(tags=["envs"])

# 504: the env did not answer within the server's call timeout.
ERRORS = {**DOOR_ERRORS, 404: ErrorOut, 409: ErrorOut, 415: ErrorOut, 422: ErrorOut, 500: ErrorOut, 504: ErrorOut}


def for_default_and_each_instance(method: str, path: str, **kwargs):
    return routing.for_default_and_each_instance(router, method, path, errors=ERRORS, **kwargs)


# /health needs no token (gymenv.middleware.OPEN_PATHS): no 401.
@router.get("/health", response={200: HealthOut, 400: ErrorOut, 413: ErrorOut}, auth=None,
            summary="Liveness: the server answers and names its env")
async def health(request):
    engine = request.engine
    return answer(HealthOut(env_id=engine.config.default_env_id, instances=len(engine.instances())))


@for_default_and_each_instance("POST", "/reset", response=ResetOut | VectorResetOut, summary="Start an episode")
async def reset(request, instance_id: str, body: ResetIn | None = None):
    """Resets the env (a new episode of the current run) and returns the first observation."""
    body = body or ResetIn()
    return answer(await request.engine.reset(instance_id, seed=body.seed, options=body.options,
                                             obs_format=body.obs_format, expected_episode=body.expected_episode))


@for_default_and_each_instance("POST", "/step", response=StepOut | BatchStepOut | VectorStepOut,
                               summary="Take one action, or a batch of actions")
async def step(request, instance_id: str, body: StepIn):
    """Validates the action against the action space, steps the env and records the step. With `actions`,
    a batch: all are validated first, then taken in order until the list or the episode ends, and every
    step is recorded before the answer. A vector instance's action is a list of one action per sub-env."""
    engine = request.engine
    if body.actions is not None:
        return answer(await engine.step_batch(instance_id, body.actions, obs_format=body.obs_format,
                                              last_only=body.return_ == "last", expected_step=body.expected_step))
    return answer(await engine.step(instance_id, body.action, obs_format=body.obs_format,
                                    expected_step=body.expected_step))


@for_default_and_each_instance("POST", "/render", response=RenderOut, summary="Render the current frame")
async def render(request, instance_id: str, body: RenderIn | None = None):
    """rgb_array instances answer a base64 PNG; ansi instances answer text."""
    return answer(await request.engine.render(instance_id, mode=body.mode if body else None))


@for_default_and_each_instance("POST", "/close", response=CloseOut, summary="Close the env (a reset re-creates it)")
async def close(request, instance_id: str):
    return answer(await request.engine.close(instance_id))


@for_default_and_each_instance("GET", "/info", response=EnvInfoOut, summary="Describe the env and its spaces",
                               instance_path="/envs/{instance_id}")
async def info(request, instance_id: str):
    return answer(await request.engine.info(instance_id))


@for_default_and_each_instance("GET", "/sample", response=SampleOut, summary="A random valid action")
async def sample(request, instance_id: str):
    return answer(await request.engine.sample(instance_id))


@router.get("/envs", response={200: InstanceListOut, **DOOR_ERRORS}, summary="List live instances")
async def list_instances(request):
    return answer(request.engine.list())


@router.post("/envs", response={201: InstanceOut, **ERRORS, 403: ErrorOut, 429: ErrorOut},
             summary="Open an instance of an allowed env")
async def create_instance(request, body: InstanceIn):
    """Each agent should open its own instance so that no two share an episode."""
    return answer(await request.engine.create(**body.model_dump()), status=201)


@router.delete("/envs/{instance_id}", response={200: DeletedOut, **ERRORS}, summary="Close and forget an instance")
async def delete_instance(request, instance_id: str):
    return answer(await request.engine.delete(instance_id))
