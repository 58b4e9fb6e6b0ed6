"""Periodic schedules: cron maths, the Schedule model, and the loop in the worker.

Pure: `cron` (expressions), `timing` (next runs), `entries` (what runs, validated).
Database: `models`, `sources`. Redis: `notify`. The loop: `scheduler`.
"""
