"""The use-cases every front-end calls; `Workspace` is their facade."""

from branchwork.service.workspace import Workspace

__all__ = ["Workspace"]
