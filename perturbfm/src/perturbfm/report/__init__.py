"""Run reports: ``report.html`` (tables and embedded plots) and the plot functions behind it."""

from perturbfm.report.html import render_run_report

__all__ = ["render_run_report"]
