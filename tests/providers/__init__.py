"""Tests of branchwork.providers and branchwork.domain.messages."""
