"""Run reports: a self-contained ``report.html`` and a plain-text run summary."""

from gdo.report.html import build_report, render, thumbnail_strip
from gdo.report.summary import run_summary

__all__ = ["build_report", "render", "thumbnail_strip", "run_summary"]
