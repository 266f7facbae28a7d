"""Training: ``fit(cfg)`` the loop (:mod:`~ibntrack.training.train`), the parts it is built from
(:mod:`~ibntrack.training.build`), callbacks (:mod:`~ibntrack.training.hooks`), the resumable checkpoint
state (:mod:`~ibntrack.training.train_checkpoint`), torchrun/DDP (:mod:`~ibntrack.training.distributed`)
and loss curves (:mod:`~ibntrack.training.plot`). Inference lives in :mod:`ibntrack.engine`; neither
imports the other.
"""
