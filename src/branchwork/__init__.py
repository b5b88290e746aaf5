"""Branchwork: persistent, branch-scoped sessions for AI coding agents on real git projects.

The public API is this module: `Workspace` (every use-case), what its methods take and return,
the domain models, the event types and the error tree. Everything else is private to the
package.

Names are loaded on first use (PEP 562), so that `import branchwork` (and every CLI command)
pays only for what it touches: reading a session list does not load the agent or the index.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS: dict[str, tuple[str, ...]] = {
    "branchwork.domain.errors": (
        "AlreadyExists",
        "ApprovalRequired",
        "BranchworkError",
        "Cancelled",
        "Conflict",
        "ControlSignal",
        "GitError",
        "InfrastructureError",
        "InvalidInput",
        "InvalidPath",
        "NotAGitRepository",
        "NotFound",
        "PolicyRefused",
        "ProviderError",
        "SandboxError",
        "StoreError",
        "Forbidden",
        "RateLimited",
        "TurnInProgress",
        "Unauthenticated",
        "UserError",
    ),
    "branchwork.domain.access": ("ROLES", "IssuedToken", "Principal", "Role", "User"),
    "branchwork.domain.events": (
        "EVENT_KINDS",
        "SCHEMA_VERSION",
        "ApprovalRequested",
        "Checkpoint",
        "CommandFinished",
        "Compacted",
        "Event",
        "FileWritten",
        "ModelCall",
        "Payload",
        "Reverted",
        "TerminalClosed",
        "parse_event",
    ),
    "branchwork.domain.messages": ("Usage",),
    "branchwork.domain.models": (
        "ActionMode",
        "CheckpointInfo",
        "Project",
        "ProjectConfig",
        "Session",
        "SessionStatus",
    ),
    "branchwork.domain.replay": ("Budget", "SessionState", "Spent", "TodoItem", "replay"),
    "branchwork.settings": ("Settings", "load_settings"),
    "branchwork.service.workspace": ("Workspace", "SessionRef", "ProjectRef"),
    "branchwork.service.commands": ("CommandOutcome",),
    "branchwork.service.doctor": ("Check",),
    "branchwork.service.files": ("WriteOutcome",),
    "branchwork.service.projects": ("EnvEntry",),
    "branchwork.service.rebuild": ("RebuildReport",),
    "branchwork.service.results": ("SessionDetails", "SessionListing", "SessionSummary"),
    "branchwork.service.turns": ("LiveUpdate", "TurnTicket"),
    "branchwork.service.watch": ("SessionMark",),
    "branchwork.service.terminal": ("Terminal",),
    "branchwork.agent.approvals": ("Answer", "Approver"),
    "branchwork.agent.turn": ("TurnHooks", "TurnResult"),
    "branchwork.providers.base": ("Model",),
    "branchwork.index._models": ("Document", "IndexReport", "Reference", "SearchHit", "Symbol"),
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = sorted([*_MODULE_OF, "__version__"])


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'branchwork' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__


if TYPE_CHECKING:  # for type checkers: the same names, imported eagerly
    from branchwork.agent.approvals import (
        Answer as Answer,
        Approver as Approver,
    )
    from branchwork.agent.turn import (
        TurnHooks as TurnHooks,
        TurnResult as TurnResult,
    )
    from branchwork.domain.access import (
        ROLES as ROLES,
        IssuedToken as IssuedToken,
        Principal as Principal,
        Role as Role,
        User as User,
    )
    from branchwork.domain.errors import (
        AlreadyExists as AlreadyExists,
        ApprovalRequired as ApprovalRequired,
        BranchworkError as BranchworkError,
        Cancelled as Cancelled,
        Conflict as Conflict,
        ControlSignal as ControlSignal,
        Forbidden as Forbidden,
        GitError as GitError,
        InfrastructureError as InfrastructureError,
        InvalidInput as InvalidInput,
        InvalidPath as InvalidPath,
        NotAGitRepository as NotAGitRepository,
        NotFound as NotFound,
        PolicyRefused as PolicyRefused,
        ProviderError as ProviderError,
        RateLimited as RateLimited,
        SandboxError as SandboxError,
        StoreError as StoreError,
        TurnInProgress as TurnInProgress,
        Unauthenticated as Unauthenticated,
        UserError as UserError,
    )
    from branchwork.domain.events import (
        EVENT_KINDS as EVENT_KINDS,
        SCHEMA_VERSION as SCHEMA_VERSION,
        ApprovalRequested as ApprovalRequested,
        Checkpoint as Checkpoint,
        CommandFinished as CommandFinished,
        Compacted as Compacted,
        Event as Event,
        FileWritten as FileWritten,
        ModelCall as ModelCall,
        Payload as Payload,
        Reverted as Reverted,
        TerminalClosed as TerminalClosed,
        parse_event as parse_event,
    )
    from branchwork.domain.messages import (
        Usage as Usage,
    )
    from branchwork.domain.models import (
        ActionMode as ActionMode,
        CheckpointInfo as CheckpointInfo,
        Project as Project,
        ProjectConfig as ProjectConfig,
        Session as Session,
        SessionStatus as SessionStatus,
    )
    from branchwork.domain.replay import (
        Budget as Budget,
        SessionState as SessionState,
        Spent as Spent,
        TodoItem as TodoItem,
        replay as replay,
    )
    from branchwork.index._models import (
        Document as Document,
        IndexReport as IndexReport,
        Reference as Reference,
        SearchHit as SearchHit,
        Symbol as Symbol,
    )
    from branchwork.providers.base import (
        Model as Model,
    )
    from branchwork.service.commands import (
        CommandOutcome as CommandOutcome,
    )
    from branchwork.service.doctor import (
        Check as Check,
    )
    from branchwork.service.files import (
        WriteOutcome as WriteOutcome,
    )
    from branchwork.service.projects import (
        EnvEntry as EnvEntry,
    )
    from branchwork.service.rebuild import (
        RebuildReport as RebuildReport,
    )
    from branchwork.service.results import (
        SessionDetails as SessionDetails,
        SessionListing as SessionListing,
        SessionSummary as SessionSummary,
    )
    from branchwork.service.terminal import (
        Terminal as Terminal,
    )
    from branchwork.service.turns import (
        LiveUpdate as LiveUpdate,
        TurnTicket as TurnTicket,
    )
    from branchwork.service.watch import (
        SessionMark as SessionMark,
    )
    from branchwork.service.workspace import (
        ProjectRef as ProjectRef,
        SessionRef as SessionRef,
        Workspace as Workspace,
    )
    from branchwork.settings import (
        Settings as Settings,
        load_settings as load_settings,
    )
