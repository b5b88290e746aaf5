"""The one exception tree of Branchwork.

Every message ends with the remedy: what the user should do next.

```
BranchworkError
├── UserError                    (exit code 2 in the CLI, HTTP 4xx in the API)
│   ├── NotFound                 unknown project, session, checkpoint, path …
│   ├── AlreadyExists            a name or id that is taken
│   ├── InvalidInput             a value that cannot be used as given
│   │   ├── InvalidPath          a path that leaves the worktree, or enters .git
│   │   └── NotAGitRepository    not a repo, an empty repo, a dubious-ownership repo
│   ├── Conflict                 the state forbids it now (active sessions, archived session …)
│   │   └── TurnInProgress       another turn of the session holds the lease
│   ├── PolicyRefused            the action policy or the user said no
│   ├── Unauthenticated          no token, or one that is unknown, expired or revoked (HTTP 401)
│   ├── Forbidden                the token's role in the project is too low for it (HTTP 403)
│   └── RateLimited              too many requests with one token (HTTP 429)
├── InfrastructureError          (exit code 3 in the CLI, HTTP 5xx/502 in the API)
│   ├── GitError                 a git command failed (keeps the command and stderr)
│   ├── SandboxError             a command could not be started or supervised
│   ├── StoreError               the database could not be read or written
│   └── ProviderError            an LLM provider failed (keeps status and `retryable`)
└── ControlSignal                (not failures: the caller decides)
    ├── ApprovalRequired         the action waits for a yes/no from a person
    └── Cancelled                the user stopped the turn
```
"""

from __future__ import annotations

from collections.abc import Sequence


class BranchworkError(Exception):
    """Base of every error Branchwork raises on purpose."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class UserError(BranchworkError):
    """The request cannot be done as asked; the message says what to do instead."""


class NotFound(UserError):
    pass


class AlreadyExists(UserError):
    pass


class InvalidInput(UserError):
    pass


class InvalidPath(InvalidInput):
    pass


class NotAGitRepository(InvalidInput):
    pass


class Conflict(UserError):
    pass


class TurnInProgress(Conflict):
    pass


class PolicyRefused(UserError):
    pass


class Unauthenticated(UserError):
    pass


class Forbidden(UserError):
    pass


class RateLimited(UserError):
    def __init__(self, message: str, *, retry_after: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class InfrastructureError(BranchworkError):
    """Something below us (git, a process, the database, a model) failed."""


class GitError(InfrastructureError):
    def __init__(self, message: str, *, command: Sequence[str] = (), stderr: str = "") -> None:
        super().__init__(message)
        self.command = list(command)
        self.stderr = stderr


class SandboxError(InfrastructureError):
    pass


class StoreError(InfrastructureError):
    pass


class ProviderError(InfrastructureError):
    def __init__(self, message: str, *, status: int | None = None, retryable: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.retryable = retryable


class ControlSignal(BranchworkError):
    """Not a failure: the flow stops here and the caller decides what follows."""


class ApprovalRequired(ControlSignal):
    def __init__(self, message: str, *, request_id: str = "") -> None:
        super().__init__(message)
        self.request_id = request_id


class Cancelled(ControlSignal):
    pass
