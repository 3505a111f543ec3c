"""Tests, a package (as each stage folder is) so that several folders can hold a test_cli.py or test_report.py."""
