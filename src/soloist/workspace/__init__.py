"""The composition root (:mod:`soloist.workspace.core`) and the services beside it that
every interface calls: access (tokens, sessions), ... One ``Workspace`` holds them."""

from soloist.workspace.core import PendingApproval, RunDetail, Workspace

__all__ = ["PendingApproval", "RunDetail", "Workspace"]
