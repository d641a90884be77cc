"""What agents read: the server's instructions, tool-description excerpts and the play prompt, from the envs' docs."""

import json

from gymenv.envdocs import excerpt, section

# Excerpt budgets, shared by the allowed envs so that tools/list grows by a few hundred bytes per env
# however many there are: past a handful of envs each one is its id, spaces and a pointer to get_env_info.
SUMMARY_CHARS = 400  # at most, one env's "what is it" line
SUMMARY_BUDGET_CHARS = 2400  # all the envs' summary lines
DOC_BUDGET_CHARS = 2800  # per section of a tool description; full docs: get_env_info
SEE_ENV_INFO = "see get_env_info for the env's docs."  # when no whole sentence of the docs fits


class EnvDocs:
    """Descriptions of the allowed envs, cut from their own docs, for tool descriptions and prompts."""

    def __init__(self, entries: dict[str, dict], default: str, runs: bool):
        self.entries = entries
        self.default = default
        self.runs = runs
        self.budget = DOC_BUDGET_CHARS // len(entries)  # per env: many envs, shorter excerpts
        self.summary_chars = min(SUMMARY_CHARS, SUMMARY_BUDGET_CHARS // len(entries))

    def action_schema(self) -> dict:
        schemas = list({json.dumps(e["action_schema"], sort_keys=True): e["action_schema"]
                        for e in self.entries.values()}.values())
        return schemas[0] if len(schemas) == 1 else {"anyOf": schemas}

    def summary(self, env_id: str) -> str:
        entry = self.entries[env_id]
        text = section(entry["description"], "description") or entry["description"]
        return f"{env_id}: {excerpt(text, self.summary_chars) or SEE_ENV_INFO}"

    def summaries(self) -> str:
        return "\n".join(f"- {self.summary(env_id)}" for env_id in self.entries)

    def actions(self) -> str:
        return "Actions, per env:\n" + "\n".join(
            self._space(env_id, "action_space", "action space", f"schema {json.dumps(e['action_schema'])}")
            for env_id, e in self.entries.items())

    def observations(self) -> str:
        return "Observations, per env:\n" + "\n".join(
            self._space(env_id, "observation_space", "observation space") for env_id in self.entries)

    def _space(self, env_id: str, key: str, name: str, *extra: str) -> str:
        e = self.entries[env_id]
        about = "; ".join([e[key].get("repr") or e[key].get("type", "?"), *extra])
        return f"- {env_id} ({about}): {excerpt(section(e['description'], name), self.budget) or SEE_ENV_INFO}"

    def instructions(self) -> str:
        return (
            "gymsite serves Gymnasium reinforcement-learning environments. The instance \"default\" runs "
            f"{self.default} and is shared with REST clients; call create_env to get an instance of your own and "
            "pass its instance_id to every tool. Loop: get_env_info, reset_env, then step_env with an action "
            "until the answer says done: true, then reset_env again. render_env shows the current frame. "
            + ("Every step is recorded in a run of several episodes (get_run_status, get_run_statistics). "
               if self.runs else "")
            + "Errors come back as tool errors saying what was wrong and what is expected.\n\nEnvs:\n"
            + self.summaries()
        )

    def play_prompt(self, env_id: str, instance_id: str | None) -> str:
        e = self.entries[env_id]
        if instance_id:
            where = f'Use the instance "{instance_id}": pass instance_id="{instance_id}" to every tool.'
        else:
            where = (f'First call create_env(env_id="{env_id}") to get an instance of your own, and pass its '
                     "instance_id to every tool.")
        goal = (f"An episode return of {e['reward_threshold']} or more counts as solved."
                if e.get("reward_threshold") is not None else "Aim for the highest episode return.")
        limit = (f" Episodes end after at most {e['max_episode_steps']} steps."
                 if e.get("max_episode_steps") else "")
        return (
            f"You are playing the Gymnasium environment {env_id} through this server's MCP tools. {where}\n\n"
            f"About the env (its own docs):\n{e['description']}\n\n"
            f"Actions must match this JSON Schema: {json.dumps(e['action_schema'])} "
            f"(action space {e['action_space'].get('repr', '')}).\n"
            f"{goal}{limit}\n\n"
            "How to play:\n"
            "1. Call reset_env (a seed makes the episode repeatable) and read the observation.\n"
            "2. Work out what each part of the observation means using the docs above, choose the action that "
            "moves you toward the goal, and call step_env with it. Keep a short note of your reasoning.\n"
            "3. Read the reward and the new observation; repeat until done is true, then reset_env for the next "
            "episode.\n"
            "4. Use render_env to look at the frame when the numbers are unclear, and get_run_status or "
            "get_run_statistics to see how the run is going.\n"
            "If a call fails, the error says what was expected: fix the call rather than retrying it unchanged."
        )
