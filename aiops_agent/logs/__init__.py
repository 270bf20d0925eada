"""Proactive log analysis: template mining, per-template baselines, anomalies, proactive alerts."""

from aiops_agent.logs.analyzer import AnalyzerConfig, LogAnalyzer
from aiops_agent.logs.demo import demo_log_spike

__all__ = ["AnalyzerConfig", "LogAnalyzer", "demo_log_spike"]
