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
        "CheckRun",
        "ApprovalRequested",
        "Checkpoint",
        "CommandFinished",
        "Compacted",
        "Event",
        "FileWritten",
        "Forked",
        "ModelCall",
        "Payload",
        "Promoted",
        "Reverted",
        "TrialStarted",
        "TrialStatus",
        "TrialUpdated",
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
    "branchwork.domain.tasks": ("Priority", "Task", "TaskComment", "TaskStatus", "Trial"),
    "branchwork.domain.replay": ("Budget", "SessionState", "Spent", "TodoItem", "replay"),
    "branchwork.settings": ("Settings", "load_settings"),
    "branchwork.service.refs": ("ProjectRef", "SessionRef"),
    "branchwork.service.workspace_tasks": ("TaskRef", "TrialRef"),
    "branchwork.service.tasks": ("TaskDetails", "TaskSummary", "TrialFigures"),
    "branchwork.service.trials": ("TrialProgress",),
    "branchwork.service.compare": ("CheckResult", "Comparison", "TrialComparison"),
    "branchwork.service.promote": ("Promotion",),
    "branchwork.service.suggest": ("Suggestion", "Suggestions"),
    "branchwork.gitops.compare": ("FileChange",),
    "branchwork.domain.proposals": (
        "ApprovalPolicy",
        "MergeStrategy",
        "Proposal",
        "ProposalReview",
        "ProposalStatus",
        "ReviewComment",
    ),
    "branchwork.service.workspace": ("Workspace", "ProposalRef"),
    "branchwork.service.address": ("AddressRequest",),
    "branchwork.service.merge": ("MergeOutcome",),
    "branchwork.service.policy": ("MergeGate",),
    "branchwork.service.proposals": ("ProposalDetails",),
    "branchwork.service.radar": (
        "ConflictSpot",
        "MergeStep",
        "Overlap",
        "RadarReport",
        "SessionChanges",
    ),
    "branchwork.service.review": ("ChangeOrigin", "FileReview", "HunkReview", "ReviewView"),
    "branchwork.service.commands": ("CommandOutcome",),
    "branchwork.service.doctor": ("Check",),
    "branchwork.service.files": ("WriteOutcome",),
    "branchwork.service.lifecycle": (
        "DiskUsage",
        "GcAction",
        "GcReport",
        "ProjectDisk",
        "SessionDisk",
    ),
    "branchwork.service.pool": ("PoolSlot", "SetupRun"),
    "branchwork.service.projects": ("EnvEntry",),
    "branchwork.service.rebuild": ("RebuildReport",),
    "branchwork.service.results": ("SessionDetails", "SessionListing", "SessionSummary"),
    "branchwork.service.turns": ("LiveUpdate", "TurnTicket"),
    "branchwork.service.watch": ("SessionMark",),
    "branchwork.service.terminal": ("Terminal",),
    "branchwork.agent.approvals": ("Answer", "Approver"),
    "branchwork.agent.turn": ("TurnHooks", "TurnResult"),
    "branchwork.providers.base": ("Model",),
    "branchwork.index._models": (
        "Document",
        "IndexReport",
        "Reference",
        "ReferenceResults",
        "SearchHit",
        "SearchResults",
        "Symbol",
    ),
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
        CheckRun as CheckRun,
        CommandFinished as CommandFinished,
        Compacted as Compacted,
        Event as Event,
        FileWritten as FileWritten,
        Forked as Forked,
        ModelCall as ModelCall,
        Payload as Payload,
        Promoted as Promoted,
        Reverted as Reverted,
        TerminalClosed as TerminalClosed,
        TrialStarted as TrialStarted,
        TrialStatus as TrialStatus,
        TrialUpdated as TrialUpdated,
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
    from branchwork.domain.proposals import (
        ApprovalPolicy as ApprovalPolicy,
        MergeStrategy as MergeStrategy,
        Proposal as Proposal,
        ProposalReview as ProposalReview,
        ProposalStatus as ProposalStatus,
        ReviewComment as ReviewComment,
    )
    from branchwork.domain.replay import (
        Budget as Budget,
        SessionState as SessionState,
        Spent as Spent,
        TodoItem as TodoItem,
        replay as replay,
    )
    from branchwork.domain.tasks import (
        Priority as Priority,
        Task as Task,
        TaskComment as TaskComment,
        TaskStatus as TaskStatus,
        Trial as Trial,
    )
    from branchwork.gitops.compare import (
        FileChange as FileChange,
    )
    from branchwork.index._models import (
        Document as Document,
        IndexReport as IndexReport,
        Reference as Reference,
        ReferenceResults as ReferenceResults,
        SearchHit as SearchHit,
        SearchResults as SearchResults,
        Symbol as Symbol,
    )
    from branchwork.providers.base import (
        Model as Model,
    )
    from branchwork.service.address import (
        AddressRequest as AddressRequest,
    )
    from branchwork.service.commands import (
        CommandOutcome as CommandOutcome,
    )
    from branchwork.service.compare import (
        CheckResult as CheckResult,
        Comparison as Comparison,
        TrialComparison as TrialComparison,
    )
    from branchwork.service.doctor import (
        Check as Check,
    )
    from branchwork.service.files import (
        WriteOutcome as WriteOutcome,
    )
    from branchwork.service.lifecycle import (
        DiskUsage as DiskUsage,
        GcAction as GcAction,
        GcReport as GcReport,
        ProjectDisk as ProjectDisk,
        SessionDisk as SessionDisk,
    )
    from branchwork.service.merge import (
        MergeOutcome as MergeOutcome,
    )
    from branchwork.service.policy import (
        MergeGate as MergeGate,
    )
    from branchwork.service.pool import (
        PoolSlot as PoolSlot,
        SetupRun as SetupRun,
    )
    from branchwork.service.projects import (
        EnvEntry as EnvEntry,
    )
    from branchwork.service.promote import (
        Promotion as Promotion,
    )
    from branchwork.service.proposals import (
        ProposalDetails as ProposalDetails,
    )
    from branchwork.service.radar import (
        ConflictSpot as ConflictSpot,
        MergeStep as MergeStep,
        Overlap as Overlap,
        RadarReport as RadarReport,
        SessionChanges as SessionChanges,
    )
    from branchwork.service.rebuild import (
        RebuildReport as RebuildReport,
    )
    from branchwork.service.refs import (
        ProjectRef as ProjectRef,
        SessionRef as SessionRef,
    )
    from branchwork.service.results import (
        SessionDetails as SessionDetails,
        SessionListing as SessionListing,
        SessionSummary as SessionSummary,
    )
    from branchwork.service.review import (
        ChangeOrigin as ChangeOrigin,
        FileReview as FileReview,
        HunkReview as HunkReview,
        ReviewView as ReviewView,
    )
    from branchwork.service.suggest import (
        Suggestion as Suggestion,
        Suggestions as Suggestions,
    )
    from branchwork.service.tasks import (
        TaskDetails as TaskDetails,
        TaskSummary as TaskSummary,
        TrialFigures as TrialFigures,
    )
    from branchwork.service.terminal import (
        Terminal as Terminal,
    )
    from branchwork.service.trials import (
        TrialProgress as TrialProgress,
    )
    from branchwork.service.turns import (
        LiveUpdate as LiveUpdate,
        TurnTicket as TurnTicket,
    )
    from branchwork.service.watch import (
        SessionMark as SessionMark,
    )
    from branchwork.service.workspace import (
        ProposalRef as ProposalRef,
        Workspace as Workspace,
    )
    from branchwork.service.workspace_tasks import (
        TaskRef as TaskRef,
        TrialRef as TrialRef,
    )
    from branchwork.settings import (
        Settings as Settings,
        load_settings as load_settings,
    )
