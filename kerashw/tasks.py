"""The registry of homework parts: name -> Task (kerashw/task.py). Light: no TF, no OpenCV."""
from __future__ import annotations

from kerashw.captcha.definition import TASK as CAPTCHA
from kerashw.mnist.definition import TASK as MNIST
from kerashw.task import Task

TASKS: dict[str, Task] = {task.name: task for task in (MNIST, CAPTCHA)}


def get(name: str) -> Task:
    try:
        return TASKS[name]
    except KeyError:
        raise ValueError(f"Unknown task {name!r}. Known: {sorted(TASKS)}") from None
