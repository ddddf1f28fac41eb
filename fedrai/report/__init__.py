"""Reports that compare runs: a markdown table in the paper's shape and per-round PNG curves."""

from fedrai.report.build import build_report, paper_comparison
from fedrai.report.runs import ReportError, Run, load_run

__all__ = ["ReportError", "Run", "build_report", "load_run", "paper_comparison"]
