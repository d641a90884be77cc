"""The peer bench/versus.py measures gymsite's REST door against: the obvious FastAPI + gymnasium
app a user writes instead (one env, no ledger, no checks beyond FastAPI's), kept as that user would
write it. Served by bench/versus.py through gymsite.serving.serve: the same uvicorn set-up
(uvloop, httptools) as gymsite.
"""

import gymnasium as gym
from fastapi import FastAPI
from pydantic import BaseModel

app = FastAPI()
env = gym.make("CartPole-v1")


class ResetIn(BaseModel):
    seed: int | None = None


class StepIn(BaseModel):
    action: int


@app.post("/reset")
def reset(body: ResetIn):
    obs, info = env.reset(seed=body.seed)
    return {"observation": obs.tolist(), "info": info}


@app.post("/step")
def step(body: StepIn):
    obs, reward, terminated, truncated, info = env.step(body.action)
    return {"observation": obs.tolist(), "reward": float(reward), "terminated": terminated,
            "truncated": truncated, "done": terminated or truncated, "info": info}
