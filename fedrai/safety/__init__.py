"""Responsible-AI guards on client data: safety filters, the screening guard, and CAI (``cai/``).

Public entry points: :func:`fedrai.safety.filters.build_filter`,
:func:`fedrai.safety.guard.screen_rows`, :class:`fedrai.safety.audit.AuditLog`,
:func:`fedrai.safety.score.score_file`, :func:`fedrai.safety.train_head.train_filter`.
Imports are lazy so that importing the package loads no model.
"""
