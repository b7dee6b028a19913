"""Shared evaluation statistics (correlations, ROC/PR areas) used by every `eval` command."""
from .stats import correlation_row, krcc, plcc, pr_auc, roc_auc, srcc

__all__ = ["correlation_row", "krcc", "plcc", "pr_auc", "roc_auc", "srcc"]
