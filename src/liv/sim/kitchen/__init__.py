"""The paper's FrankaKitchen tasks (Table 4) on Gymnasium-Robotics' FrankaKitchen-v1 scene.

``tasks.py``: the task table (standard library only); ``env.py``: the environment; ``expert.py``: the
scripted experts."""
