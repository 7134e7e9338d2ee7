"""The verl (GPU, Ray) training backend.

* :mod:`judgeforge.train.verl.overrides` turns a :class:`~judgeforge.train.config.TrainConfig`
  into verl 0.9.1 Hydra overrides (pure Python).
* :mod:`judgeforge.train.verl.launch` builds the ``python -m verl.trainer.main_ppo`` command,
  runs it locally or submits it to a Ray cluster (Jobs API), and merges the latest checkpoint.
* :mod:`judgeforge.train.verl.servable` turns a verl checkpoint into a servable HF folder.
* :mod:`judgeforge.train.verl.dataset` is the ``data.custom_cls`` dataset; it imports verl and
  is only imported inside verl's environment (``.venv-verl`` or the Ray workers).

Nothing here imports verl, ray or torch at import time, except ``dataset``.
"""

__all__: list[str] = []  # a namespace of modules: import them by name
