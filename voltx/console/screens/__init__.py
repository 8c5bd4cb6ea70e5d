"""Screens of voltx-console, one per concern: runs, run detail, help, system, plugins, compare, launch."""
