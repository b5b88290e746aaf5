"""Branchwork: persistent, branch-scoped sessions for AI coding agents on real git projects.

The public API is this module: `Workspace` (every use-case), the domain models, the event
types and the error tree. Everything else is private to the package.
"""

from branchwork.domain.errors import (
    AlreadyExists,
    ApprovalRequired,
    BranchworkError,
    Cancelled,
    Conflict,
    ControlSignal,
    GitError,
    InfrastructureError,
    InvalidInput,
    InvalidPath,
    NotAGitRepository,
    NotFound,
    PolicyRefused,
    ProviderError,
    SandboxError,
    StoreError,
    TurnInProgress,
    UserError,
)
from branchwork.domain.events import (
    EVENT_KINDS,
    SCHEMA_VERSION,
    Event,
    Payload,
    parse_event,
)
from branchwork.domain.models import ActionMode, CheckpointInfo, Project, ProjectConfig, Session
from branchwork.domain.replay import SessionState, replay
from branchwork.service import Workspace
from branchwork.settings import Settings, load_settings

__version__ = "0.1.0"

__all__ = [
    "EVENT_KINDS",
    "SCHEMA_VERSION",
    "ActionMode",
    "AlreadyExists",
    "ApprovalRequired",
    "BranchworkError",
    "Cancelled",
    "CheckpointInfo",
    "Conflict",
    "ControlSignal",
    "Event",
    "GitError",
    "InfrastructureError",
    "InvalidInput",
    "InvalidPath",
    "NotAGitRepository",
    "NotFound",
    "Payload",
    "PolicyRefused",
    "Project",
    "ProjectConfig",
    "ProviderError",
    "SandboxError",
    "Session",
    "SessionState",
    "Settings",
    "StoreError",
    "TurnInProgress",
    "UserError",
    "Workspace",
    "__version__",
    "load_settings",
    "parse_event",
    "replay",
]
