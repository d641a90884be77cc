"""An env module whose physics engine is not installed: it fails on import, as Box2D's envs do without box2d."""

from gymnasium.error import DependencyNotInstalled

raise DependencyNotInstalled('no_such_physics is not installed, run `pip install "gymsite[no_such_physics]"`')
