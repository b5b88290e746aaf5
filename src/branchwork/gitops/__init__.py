"""The git CLI driven by subprocess: repositories, session branches, worktrees, checkpoints."""

from branchwork.gitops.git import COMMITTER_EMAIL, COMMITTER_NAME, run_git, run_git_bytes
from branchwork.gitops.repo import (
    RepoInfo,
    branch_exists,
    clone,
    commit_exists,
    detect_main_branch,
    inspect_repo,
    is_url,
    repo_lock,
    resolve_commit,
)
from branchwork.gitops.worktree import (
    CommitInfo,
    add_worktree,
    checkpoint,
    count_ignored,
    delete_branch,
    diff,
    head_commit,
    remove_worktree,
    restore_worktree,
    revert_to,
    snapshot_tree,
)

__all__ = [
    "COMMITTER_EMAIL",
    "COMMITTER_NAME",
    "CommitInfo",
    "RepoInfo",
    "add_worktree",
    "branch_exists",
    "checkpoint",
    "clone",
    "commit_exists",
    "count_ignored",
    "delete_branch",
    "detect_main_branch",
    "diff",
    "head_commit",
    "inspect_repo",
    "is_url",
    "remove_worktree",
    "repo_lock",
    "resolve_commit",
    "restore_worktree",
    "revert_to",
    "run_git",
    "run_git_bytes",
    "snapshot_tree",
]
